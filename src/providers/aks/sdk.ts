/**
 * AzureApi over the Azure SDK: @azure/arm-containerservice, @azure/arm-msi, @azure/arm-authorization,
 * signed in with DefaultAzureCredential. ARM's address comes from the caller (the CLI reads
 * AZURE_RESOURCE_MANAGER_ENDPOINT); the sign-in authority from the SDK's own AZURE_AUTHORITY_HOST.
 */
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ManagedServiceIdentityClient, type Identity } from '@azure/arm-msi';
import { DefaultAzureCredential } from '@azure/identity';
import { CloudError } from '../../core/errors.js';
import type { AzureApi, ManagedIdentity } from './client.js';

export interface AzureOptions {
  subscription: string;
  /** ARM's root URL; default https://management.azure.com. */
  endpoint?: string;
  /** The sign-in authority, when not the public cloud's (AZURE_AUTHORITY_HOST). */
  authorityHost?: string;
  /**
   * Per-request time limit (ms) for ARM calls. The SDK retries 429 (honouring Retry-After), 5xx and
   * dropped connections; a request that ran out of time is not retried (it already waited).
   */
  timeoutMs?: number;
}

/** The public clouds' authorities: MSAL knows them, so instance discovery can stay on for these. */
const KNOWN_AUTHORITIES = ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn', 'login.partner.microsoftonline.cn'];

/** The abort signal shape the SDK's pipeline requests carry. */
interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

interface RestErrorLike {
  name: string;
  message: string;
  code?: string;
  statusCode?: number;
  details?: unknown;
}

function isRestError(e: unknown): e is RestErrorLike {
  return e instanceof Error && (e.name === 'RestError' || typeof (e as { statusCode?: unknown }).statusCode === 'number');
}

/** The ARM error code and message: `{"error":{"code","message"}}`, which the SDK exposes as code/message. */
function armError(e: RestErrorLike): { code: string; message: string } {
  const body = (e.details ?? {}) as { error?: { code?: string; message?: string } };
  return { code: e.code ?? body.error?.code ?? `HTTP${e.statusCode ?? ''}`, message: body.error?.message ?? e.message };
}

const PERMISSION: Record<string, string> = {
  'managedClusters.get': 'Microsoft.ContainerService/managedClusters/read',
  'userAssignedIdentities.get': 'Microsoft.ManagedIdentity/userAssignedIdentities/read',
  'userAssignedIdentities.createOrUpdate': 'Microsoft.ManagedIdentity/userAssignedIdentities/write',
  'userAssignedIdentities.delete': 'Microsoft.ManagedIdentity/userAssignedIdentities/delete',
  'federatedIdentityCredentials.list': 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read',
  'federatedIdentityCredentials.createOrUpdate': 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write',
  'federatedIdentityCredentials.delete': 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete',
  'roleDefinitions.list': 'Microsoft.Authorization/roleDefinitions/read',
  'roleAssignments.listForScope': 'Microsoft.Authorization/roleAssignments/read',
  'roleAssignments.create': 'Microsoft.Authorization/roleAssignments/write (Owner, User Access Administrator or Role Based Access Control Administrator)',
  'roleAssignments.deleteById': 'Microsoft.Authorization/roleAssignments/delete',
};

/** @azure/identity's sign-in failures; some carry a statusCode, so they are told apart by name first. */
const SIGN_IN_ERRORS = ['CredentialUnavailableError', 'AggregateAuthenticationError', 'AuthenticationError', 'AuthenticationRequiredError'];

/**
 * Set when the time limit cut a sign-in request (the authority's discovery or token endpoint):
 * @azure/identity then reports a generic authentication failure, which would hide the cause.
 */
let timedOut: { host: string; ms: number } | undefined;

function toCloudError(operation: string, e: unknown): never {
  if (e instanceof CloudError) throw e;
  if (e instanceof Error && SIGN_IN_ERRORS.includes(e.name) && timedOut !== undefined) {
    throw new CloudError('azure', operation, 'Timeout', `${timedOut.host} did not answer within ${timedOut.ms} ms`, {
      message: `signing in to Azure timed out: ${timedOut.host} did not answer within ${timedOut.ms} ms`,
      hint: 'check the network or AZURE_AUTHORITY_HOST, or raise WID_TIMEOUT_MS',
      cause: e,
    });
  }
  if (e instanceof Error && SIGN_IN_ERRORS.includes(e.name)) {
    throw new CloudError('azure', operation, e.name, e.message.split('\n')[0] ?? e.message, {
      message: `signing in to Azure failed: ${e.name}: ${e.message.split('\n')[0] ?? e.message}`,
      hint: 'sign in to Azure: az login (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE for a service principal)',
      cause: e,
    });
  }
  // The time limit (widRequestTimeout below) aborts the attempt: the SDK rejects with an AbortError,
  // which is no RestError ("The operation was aborted. Rejecting from abort signal callback while making request.").
  if ((e instanceof Error && e.name === 'AbortError') || (isRestError(e) && e.statusCode === undefined && /timeout|timed out|aborted/i.test(e.message))) {
    throw new CloudError('azure', operation, 'Timeout', e.message, { hint: 'Azure did not answer in time; check the network or endpoint, or raise WID_TIMEOUT_MS' });
  }
  if (isRestError(e)) {
    const { code, message } = armError(e);
    let hint: string | undefined;
    if (code === 'AuthorizationFailed' || e.statusCode === 403) hint = `the identity running wid needs ${PERMISSION[operation] ?? operation}; check who that is with: az account show`;
    else if (code === 'InvalidAuthenticationToken' || code === 'AuthenticationFailed' || e.statusCode === 401) hint = 'the Azure sign-in was refused; sign in again (az login) or check AZURE_CLIENT_ID / AZURE_TENANT_ID';
    else if (code === 'SubscriptionNotFound') hint = 'check --subscription (az account list -o table)';
    else if (e.statusCode === 429) hint = 'Azure throttled the request after retries; wait a minute and run the same command again';
    throw new CloudError('azure', operation, code, message, { ...(e.statusCode === undefined ? {} : { status: e.statusCode }), ...(hint === undefined ? {} : { hint }), cause: e });
  }
  throw e;
}

async function call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return toCloudError(operation, e);
  }
}

async function orAbsent<T>(operation: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (isRestError(e) && e.statusCode === 404) return undefined;
    return toCloudError(operation, e);
  }
}

function toIdentity(i: Identity): ManagedIdentity {
  return {
    id: i.id ?? '',
    name: i.name ?? '',
    location: i.location,
    clientId: i.clientId ?? '',
    principalId: i.principalId ?? '',
    tenantId: i.tenantId ?? '',
    tags: { ...(i.tags ?? {}) },
  };
}

export function createAzureApi(opts: AzureOptions): AzureApi {
  const endpoint = (opts.endpoint ?? 'https://management.azure.com').replace(/\/+$/, '');
  const authority = opts.authorityHost === undefined ? undefined : new URL(opts.authorityHost).hostname;
  // Against any other authority (a sovereign cloud's, Azure Stack's, a test server's), MSAL's instance
  // discovery would ask the public cloud about it first: turn it off there.
  const scopes = [`${endpoint}/.default`];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // Every ARM and sign-in request gets a time limit: the SDK's pipeline has none by default. wid keeps the timer
  // itself rather than setting `request.timeout`: the SDK's HTTP client (@typespec/ts-http-runtime
  // 0.3) clears its own timer only when an answer comes, so after a dropped connection it kept the
  // process alive for the whole limit after wid had finished. Expiry aborts the attempt the same way
  // the SDK's timer does.
  const additionalPolicies = [
    {
      position: 'perRetry' as const,
      policy: {
        name: 'widRequestTimeout',
        sendRequest: async (request: { url: string; timeout: number; abortSignal?: AbortSignalLike }, next: (r: never) => Promise<never>) => {
          const outer = request.abortSignal;
          const attempt = new AbortController();
          const forward = (): void => attempt.abort();
          if (outer?.aborted) attempt.abort();
          outer?.addEventListener('abort', forward);
          const timer = setTimeout(() => {
            // Remembered for a sign-in failure this causes (ARM failures say Timeout themselves).
            timedOut = { host: new URL(request.url).host, ms: timeoutMs };
            attempt.abort();
          }, timeoutMs);
          request.abortSignal = attempt.signal;
          request.timeout = 0;
          try {
            return await next(request as never);
          } finally {
            clearTimeout(timer);
            outer?.removeEventListener('abort', forward);
            request.abortSignal = outer;
          }
        },
      },
    },
  ] as never;
  // The sign-in (the authority's discovery and token requests) runs through the same time limit.
  const credential = new DefaultAzureCredential({
    ...(authority !== undefined && !KNOWN_AUTHORITIES.includes(authority) ? { disableInstanceDiscovery: true } : {}),
    additionalPolicies,
  });
  let aksClient: ContainerServiceClient | undefined;
  let msiClient: ManagedServiceIdentityClient | undefined;
  let authClient: AuthorizationManagementClient | undefined;
  const aks = (): ContainerServiceClient => (aksClient ??= new ContainerServiceClient(credential, opts.subscription, { endpoint, credentials: { scopes }, additionalPolicies }));
  const msi = (): ManagedServiceIdentityClient => (msiClient ??= new ManagedServiceIdentityClient(credential, opts.subscription, { endpoint, credentialScopes: scopes, additionalPolicies }));
  const auth = (): AuthorizationManagementClient => (authClient ??= new AuthorizationManagementClient(credential, opts.subscription, { endpoint, credentialScopes: scopes, additionalPolicies }));

  return {
    getCluster: (resourceGroup, name) =>
      call('managedClusters.get', async () => {
        const c = await aks().managedClusters.get(resourceGroup, name);
        return {
          id: c.id ?? '',
          name: c.name ?? name,
          location: c.location,
          ...(c.oidcIssuerProfile?.issuerURL ? { issuer: c.oidcIssuerProfile.issuerURL } : {}),
          oidcIssuerEnabled: c.oidcIssuerProfile?.enabled === true,
          workloadIdentityEnabled: c.securityProfile?.workloadIdentity?.enabled === true,
        };
      }),
    getIdentity: async (resourceGroup, name) => {
      const i = await orAbsent('userAssignedIdentities.get', () => msi().userAssignedIdentities.get(resourceGroup, name));
      return i === undefined ? undefined : toIdentity(i);
    },
    listIdentities: () =>
      call('userAssignedIdentities.listBySubscription', async () => {
        const out: ManagedIdentity[] = [];
        for await (const i of msi().userAssignedIdentities.listBySubscription()) out.push(toIdentity(i));
        return out;
      }),
    createIdentity: (resourceGroup, name, body) =>
      call('userAssignedIdentities.createOrUpdate', async () => toIdentity(await msi().userAssignedIdentities.createOrUpdate(resourceGroup, name, body))),
    deleteIdentity: (resourceGroup, name) =>
      call('userAssignedIdentities.delete', async () => {
        await orAbsent('userAssignedIdentities.delete', () => msi().userAssignedIdentities.delete(resourceGroup, name));
      }),
    listFederatedCredentials: (resourceGroup, identity) =>
      call('federatedIdentityCredentials.list', async () => {
        const out = [];
        for await (const f of msi().federatedIdentityCredentials.list(resourceGroup, identity)) {
          out.push({ name: f.name ?? '', issuer: f.issuer ?? '', subject: f.subject ?? '', audiences: f.audiences ?? [] });
        }
        return out;
      }),
    putFederatedCredential: (resourceGroup, identity, f) =>
      call('federatedIdentityCredentials.createOrUpdate', async () => {
        await msi().federatedIdentityCredentials.createOrUpdate(resourceGroup, identity, f.name, { issuer: f.issuer, subject: f.subject, audiences: f.audiences });
      }),
    deleteFederatedCredential: (resourceGroup, identity, name) =>
      call('federatedIdentityCredentials.delete', async () => {
        await orAbsent('federatedIdentityCredentials.delete', () => msi().federatedIdentityCredentials.delete(resourceGroup, identity, name));
      }),
    findRoleDefinition: (scope, roleName) =>
      call('roleDefinitions.list', async () => {
        // OData string literal: a quote inside the name is doubled.
        const filter = `roleName eq '${roleName.replace(/'/g, "''")}'`;
        for await (const d of auth().roleDefinitions.list(scope, { filter })) if (d.roleName === roleName && d.id) return d.id;
        return undefined;
      }),
    listRoleAssignments: (scope, principalId) =>
      call('roleAssignments.listForScope', async () => {
        const out = [];
        for await (const a of auth().roleAssignments.listForScope(scope, { filter: `principalId eq '${principalId}'` })) {
          out.push({
            id: a.id ?? '',
            name: a.name ?? '',
            scope: a.scope ?? '',
            roleDefinitionId: a.roleDefinitionId ?? '',
            principalId: a.principalId ?? '',
            ...(a.description === undefined ? {} : { description: a.description }),
          });
        }
        return out;
      }),
    createRoleAssignment: (scope, name, properties) =>
      call('roleAssignments.create', async () => {
        await auth().roleAssignments.create(scope, name, properties);
      }),
    deleteRoleAssignment: (id) =>
      call('roleAssignments.deleteById', async () => {
        await orAbsent('roleAssignments.deleteById', () => auth().roleAssignments.deleteById(id));
      }),
  };
}
