/**
 * Self-tests of the Azure emulator, driven through the real installed SDKs (@azure/identity 4.13.1 with
 * MSAL, @azure/arm-containerservice 25.3, @azure/arm-msi 2.2, @azure/arm-authorization 9): if they parse
 * every answer here, wid's own calls will parse too. The client construction below is the reference for
 * pointing wid's SDKs at the emulator (see SPEC.md "Calling it from the SDKs").
 *
 * A guard on net.Socket#connect fails any connection to a host other than 127.0.0.1/localhost, so these
 * tests also prove nothing leaves the machine.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClientSecretCredential, DefaultAzureCredential, WorkloadIdentityCredential, type TokenCredential } from '@azure/identity';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { startAzureEmulator, type AzureEmulator } from './server.js';

const SUB = '11111111-2222-3333-4444-555555555555';
const RG = 'rg-wid';
const ISSUER = 'https://eastus.oic.prod-aks.azure.com/aaaabbbb-0000-cccc-1111-dddd2222eeee/7c2f5a3e-9d1b-4e8a-b6c4-1f0e2d3c4b5a/';
const SA_SUBJECT = 'system:serviceaccount:default:app';
const AUDIENCE = 'api://AzureADTokenExchange';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const KV_SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';

// ---------------------------------------------------------------------------------------------
// Network guard: only loopback connections are allowed
// ---------------------------------------------------------------------------------------------

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const outside: string[] = [];
type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
const originalConnect = net.Socket.prototype.connect as unknown as Connect;

/** The host a Socket#connect call targets (normalised internal args, an options object, or port+host); undefined for IPC paths. */
function targetHost(args: unknown[]): string | undefined {
  let first = args[0];
  if (Array.isArray(first)) first = first[0];
  if (typeof first === 'number') return typeof args[1] === 'string' ? args[1] : 'localhost';
  if (typeof first === 'object' && first !== null) {
    const o = first as { host?: unknown; path?: unknown };
    if (typeof o.path === 'string') return undefined;
    return typeof o.host === 'string' ? o.host : 'localhost';
  }
  return undefined;
}

function installGuard(): void {
  (net.Socket.prototype as unknown as { connect: Connect }).connect = function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
    const host = targetHost(args);
    if (host !== undefined && !LOOPBACK.has(host)) {
      outside.push(host);
      process.nextTick(() => this.destroy(new Error(`test guard: connection to ${host} refused (tests stay on 127.0.0.1)`)));
      return this;
    }
    return originalConnect.apply(this, args);
  };
}

function removeGuard(): void {
  (net.Socket.prototype as unknown as { connect: Connect }).connect = originalConnect;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** A plain https request to the emulator, trusting its CA (for what the SDKs cannot send or do not show). */
function raw(method: string, path: string, opts: { headers?: Record<string, string>; body?: string; host?: string } = {}): Promise<RawResponse> {
  const u = new URL(path, emu.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { method, hostname: opts.host ?? u.hostname, port: u.port, path: `${u.pathname}${u.search}`, ca: emu.ca, headers: opts.headers, servername: opts.host ?? 'localhost' },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function bearer(): Record<string, string> {
  return { Authorization: `Bearer ${emu.issueToken()}` };
}

type SdkError = Error & { code?: string; statusCode?: number; details?: unknown };

async function failure(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    return e as SdkError;
  }
  throw new Error('expected the call to fail');
}

function jwtPayload(token: string): any {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

/** An unsigned JWT (the emulator does not verify assertion signatures), shaped like a projected SA token. */
function assertion(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'RS256', kid: 'test' })}.${enc({ iat: now, nbf: now, exp: now + 3600, ...claims })}.c2lnbmF0dXJl`;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Clients, built exactly as SPEC.md documents
// ---------------------------------------------------------------------------------------------

let emu: AzureEmulator;
let credential: TokenCredential;
let aks: ContainerServiceClient;
let msi: ManagedServiceIdentityClient;
let authz: AuthorizationManagementClient;

function secretCredential(extra: { disableInstanceDiscovery?: boolean; retryOptions?: { maxRetries: number } } = {}): ClientSecretCredential {
  return new ClientSecretCredential(emu.tenantId, emu.clientId, emu.clientSecret, {
    authorityHost: emu.url,
    disableInstanceDiscovery: true,
    additionallyAllowedTenants: ['*'],
    // MSAL's requests go through @azure/identity's IdentityClient (a core-client pipeline), so the CA
    // given here is trusted for the discovery and token requests too.
    tlsOptions: { ca: emu.ca },
    ...extra,
  });
}

beforeAll(async () => {
  installGuard();
  emu = await startAzureEmulator();
  credential = secretCredential();
  const scopes = [`${emu.url}/.default`];
  aks = new ContainerServiceClient(credential, SUB, { endpoint: emu.url, credentials: { scopes }, tlsOptions: { ca: emu.ca } });
  msi = new ManagedServiceIdentityClient(credential, SUB, { endpoint: emu.url, credentialScopes: scopes, tlsOptions: { ca: emu.ca } });
  authz = new AuthorizationManagementClient(credential, SUB, { endpoint: emu.url, credentialScopes: scopes, tlsOptions: { ca: emu.ca } });
});

afterAll(async () => {
  await emu?.close();
  removeGuard();
  expect(outside).toEqual([]);
});

beforeEach(() => {
  emu.reset();
  emu.seedResourceGroup({ subscription: SUB, name: RG, location: 'eastus' });
});

// ---------------------------------------------------------------------------------------------
// TLS and the Entra authority
// ---------------------------------------------------------------------------------------------

describe('TLS', () => {
  it('serves a certificate for 127.0.0.1 and localhost that chains to the exposed CA', async () => {
    expect(emu.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(emu.ca).toContain('-----BEGIN CERTIFICATE-----');
    const byIp = await raw('GET', `/${emu.tenantId}/v2.0/.well-known/openid-configuration`);
    expect(byIp.status).toBe(200);
    const byName = await raw('GET', `/${emu.tenantId}/v2.0/.well-known/openid-configuration`, { host: 'localhost' });
    expect(byName.status).toBe(200);
    // Endpoints follow the host the client used, so MSAL's issuer check passes for either spelling.
    expect(byName.json.token_endpoint).toMatch(/^https:\/\/localhost:\d+\//);
  });

  it('a spawned node process trusts the emulator through NODE_EXTRA_CA_CERTS=caPath', async () => {
    const script = `fetch(process.argv[1]).then(async (r) => { console.log(r.status, (await r.json()).issuer); }, (e) => { console.log('ERR', e.cause?.code ?? e.message); process.exit(1); });`;
    const url = `${emu.url}/${emu.tenantId}/v2.0/.well-known/openid-configuration`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script, url], { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: emu.caPath } });
    expect(stdout.trim()).toBe(`200 ${emu.url}/${emu.tenantId}/v2.0`);
  });
});

describe('a spawned process (how e2e tests run wid)', () => {
  it('DefaultAzureCredential + ManagedServiceIdentityClient work from the environment alone, trusting the CA via NODE_EXTRA_CA_CERTS', async () => {
    emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-child', location: 'eastus' });
    const script = [
      "import { DefaultAzureCredential } from '@azure/identity';",
      "import { ManagedServiceIdentityClient } from '@azure/arm-msi';",
      'const endpoint = process.env.AZURE_RESOURCE_MANAGER_ENDPOINT;',
      'const cred = new DefaultAzureCredential({ disableInstanceDiscovery: true });',
      'const msi = new ManagedServiceIdentityClient(cred, process.argv[1], { endpoint, credentialScopes: [`${endpoint}/.default`] });',
      'const id = await msi.userAssignedIdentities.get(process.argv[2], process.argv[3]);',
      'console.log(id.clientId);',
    ].join('\n');
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_EXTRA_CA_CERTS: emu.caPath,
      AZURE_TENANT_ID: emu.tenantId,
      AZURE_CLIENT_ID: emu.clientId,
      AZURE_CLIENT_SECRET: emu.clientSecret,
      AZURE_AUTHORITY_HOST: emu.url,
      AZURE_RESOURCE_MANAGER_ENDPOINT: emu.url,
      AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential',
    };
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, SUB, RG, 'id-child'], { env, cwd: process.cwd() });
    expect(stdout.trim()).toBe(emu.getIdentity(`/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-child`)?.properties.clientId);
    expect(emu.log.map((r) => `${r.kind} ${r.method} ${r.status}`)).toEqual(['metadata GET 200', 'token POST 200', 'arm GET 200']);
  });
});

describe('Entra authority (MSAL in @azure/identity)', () => {
  it('ClientSecretCredential: MSAL fetches the v2.0 discovery document, then POSTs client_credentials to the token endpoint', async () => {
    const cred = secretCredential();
    const token = await cred.getToken(`${emu.url}/.default`);
    expect(token.token.split('.')).toHaveLength(3);
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000_000);
    expect(emu.log.map((r) => `${r.kind} ${r.method} ${r.path} ${r.status}`)).toEqual([
      `metadata GET /${emu.tenantId}/v2.0/.well-known/openid-configuration 200`,
      `token POST /${emu.tenantId}/oauth2/v2.0/token 200`,
    ]);
    const tokenRecord = emu.log[1];
    expect(tokenRecord?.body).toEqual({ tenant: emu.tenantId, grant_type: 'client_credentials', client_id: emu.clientId, scope: `${emu.url}/.default` });
    expect(tokenRecord?.write).toBe(false);
    expect(JSON.stringify(emu.log)).not.toContain(emu.clientSecret);
    // A v1-style ARM access token for the requested resource, as the service principal.
    const claims = jwtPayload(token.token);
    expect(claims).toMatchObject({ aud: emu.url, tid: emu.tenantId, appid: emu.clientId, oid: emu.servicePrincipalObjectId, iss: `https://sts.windows.net/${emu.tenantId}/`, ver: '1.0' });
    // MSAL caches the token: a second getToken makes no request.
    await cred.getToken(`${emu.url}/.default`);
    expect(emu.log).toHaveLength(2);
  });

  it('the raw token answer has exactly the four v2.0 client-credentials fields', async () => {
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: emu.clientId, client_secret: emu.clientSecret, scope: 'https://management.azure.com/.default' }).toString();
    const res = await raw('POST', `/${emu.tenantId}/oauth2/v2.0/token`, { body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(['access_token', 'expires_in', 'ext_expires_in', 'token_type']);
    expect(res.json).toMatchObject({ token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599 });
    expect(res.headers['x-ms-request-id']).toBeTruthy();
  });

  it('a wrong secret is Entra\'s 401 invalid_client AADSTS7000215 (ClientSecretCredential throws AuthenticationRequiredError)', async () => {
    const cred = new ClientSecretCredential(emu.tenantId, emu.clientId, 'not-the-secret', { authorityHost: emu.url, disableInstanceDiscovery: true, tlsOptions: { ca: emu.ca } });
    const e = await failure(cred.getToken(`${emu.url}/.default`));
    // MSAL's ServerError, re-wrapped by @azure/identity's handleMsalError: the message keeps Entra's description.
    expect(e.name).toBe('AuthenticationRequiredError');
    expect(e.message).toMatch(/^invalid_client: Error\(s\): 7000215 - Timestamp: .* - Description: AADSTS7000215: Invalid client secret provided\./);
    expect(e.message).toContain('AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID');
    expect(emu.log.at(-1)).toMatchObject({ kind: 'token', status: 401 });

    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: emu.clientId, client_secret: 'nope', scope: `${emu.url}/.default` }).toString();
    const res = await raw('POST', `/${emu.tenantId}/oauth2/v2.0/token`, { body, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'client-request-id': 'corr-1' } });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ error: 'invalid_client', error_codes: [7000215], correlation_id: 'corr-1' });
    expect(res.json.error_description).toMatch(/^AADSTS7000215: Invalid client secret provided\. .*\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: corr-1\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/s);
  });

  it('an unknown client id is AADSTS700016 and an unknown tenant AADSTS90002', async () => {
    const other = new ClientSecretCredential(emu.tenantId, '99999999-9999-4999-8999-999999999999', emu.clientSecret, { authorityHost: emu.url, disableInstanceDiscovery: true, tlsOptions: { ca: emu.ca } });
    expect((await failure(other.getToken(`${emu.url}/.default`))).message).toContain("AADSTS700016: Application with identifier '99999999-9999-4999-8999-999999999999' was not found in the directory");
    const res = await raw('GET', '/bbbbbbbb-0000-4000-8000-000000000000/v2.0/.well-known/openid-configuration');
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_tenant');
    expect(res.json.error_description).toContain("AADSTS90002: Tenant 'bbbbbbbb-0000-4000-8000-000000000000' not found.");
  });

  it('a scope without /.default is AADSTS1002012', async () => {
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: emu.clientId, client_secret: emu.clientSecret, scope: 'https://management.azure.com/user_impersonation' }).toString();
    const res = await raw('POST', `/${emu.tenantId}/oauth2/v2.0/token`, { body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_scope');
    expect(res.json.error_description).toContain('AADSTS1002012: The provided value for scope https://management.azure.com/user_impersonation is not valid.');
  });

  it('DefaultAzureCredential with AZURE_TOKEN_CREDENTIALS=EnvironmentCredential signs in from the environment', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AZURE_TENANT_ID: emu.tenantId,
      AZURE_CLIENT_ID: emu.clientId,
      AZURE_CLIENT_SECRET: emu.clientSecret,
      AZURE_AUTHORITY_HOST: emu.url,
      AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential',
    });
    try {
      const dac = new DefaultAzureCredential({ disableInstanceDiscovery: true, tlsOptions: { ca: emu.ca } });
      const token = await dac.getToken(`${emu.url}/.default`);
      expect(jwtPayload(token.token).appid).toBe(emu.clientId);
      // It is a token ARM accepts.
      const mc = emu.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'aks-env', location: 'eastus' });
      const client = new ContainerServiceClient(dac, SUB, { endpoint: emu.url, credentials: { scopes: [`${emu.url}/.default`] }, tlsOptions: { ca: emu.ca } });
      expect((await client.managedClusters.get(RG, 'aks-env')).id).toBe(mc.id);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('DefaultAzureCredential with a wrong secret: AuthenticationError (statusCode 400, no code), also out of an ARM call', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AZURE_TENANT_ID: emu.tenantId, AZURE_CLIENT_ID: emu.clientId, AZURE_CLIENT_SECRET: 'wrong', AZURE_AUTHORITY_HOST: emu.url, AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential' });
    try {
      const dac = new DefaultAzureCredential({ disableInstanceDiscovery: true, tlsOptions: { ca: emu.ca } });
      const client = new ManagedServiceIdentityClient(dac, SUB, { endpoint: emu.url, credentialScopes: [`${emu.url}/.default`], tlsOptions: { ca: emu.ca } });
      const e = await failure(client.userAssignedIdentities.get(RG, 'any'));
      expect([e.name, e.statusCode, e.code]).toEqual(['AuthenticationError', 400, undefined]);
      expect(e.message).toMatch(/^EnvironmentCredential authentication failed\. .*AADSTS7000215: Invalid client secret provided\./s);
      expect(emu.log.filter((r) => r.kind === 'arm')).toEqual([]);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('without disableInstanceDiscovery MSAL asks login.microsoftonline.com first (the guard refuses it) and fails', async () => {
    const cred = secretCredential({ disableInstanceDiscovery: false, retryOptions: { maxRetries: 0 } });
    const e = await failure(cred.getToken(`${emu.url}/.default`));
    expect(outside).toContain('login.microsoftonline.com');
    outside.length = 0; // expected: not a leak
    expect(e.name).toBe('CredentialUnavailableError');
    expect(e.message).toContain('endpoints_resolution_error');
    expect(emu.log.filter((r) => r.kind === 'token')).toEqual([]);
  });

  it('WorkloadIdentityCredential exchanges a projected SA token against a matching federated credential', async () => {
    const id = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'wl', location: 'eastus' });
    emu.seedFederatedCredential(id.id, { name: 'kube', issuer: ISSUER, subject: SA_SUBJECT });
    const dir = mkdtempSync(join(tmpdir(), 'azure-emu-test-'));
    try {
      const file = join(dir, 'token');
      const make = (): WorkloadIdentityCredential =>
        new WorkloadIdentityCredential({ tenantId: emu.tenantId, clientId: id.clientId, tokenFilePath: file, authorityHost: emu.url, disableInstanceDiscovery: true, tlsOptions: { ca: emu.ca } });
      writeFileSync(file, assertion({ iss: ISSUER, sub: SA_SUBJECT, aud: [AUDIENCE] }));
      const token = await make().getToken(`${emu.url}/.default`);
      expect(jwtPayload(token.token)).toMatchObject({ appid: id.clientId, oid: id.principalId, appidacr: '2' });
      expect(emu.log.at(-1)?.body).toMatchObject({ client_id: id.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' });
      expect(JSON.stringify(emu.log)).not.toContain(SA_SUBJECT); // the assertion is not logged

      writeFileSync(file, assertion({ iss: ISSUER, sub: 'system:serviceaccount:default:other', aud: [AUDIENCE] }));
      const e = await failure(make().getToken(`${emu.url}/.default`));
      expect(e.message).toContain("AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:default:other'.");
      writeFileSync(file, assertion({ iss: ISSUER.slice(0, -1), sub: SA_SUBJECT, aud: [AUDIENCE] }));
      expect((await failure(make().getToken(`${emu.url}/.default`))).message).toContain('AADSTS700211: No matching federated identity record found for presented assertion issuer');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// ARM: common behaviour
// ---------------------------------------------------------------------------------------------

describe('ARM request checks', () => {
  const clusterPath = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks1?api-version=2025-01-01`;

  it('no Authorization header: 401 AuthenticationFailed with a WWW-Authenticate challenge', async () => {
    const res = await raw('GET', clusterPath);
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: { code: 'AuthenticationFailed', message: "Authentication failed. The 'Authorization' header is missing." } });
    expect(res.headers['www-authenticate']).toBe(`Bearer authorization_uri="${emu.url}/", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`);
  });

  it('a token this server did not issue: 401 InvalidAuthenticationToken; one for another audience: InvalidAuthenticationTokenAudience', async () => {
    const res = await raw('GET', clusterPath, { headers: { Authorization: 'Bearer eyJ0eXAiOiJKV1QifQ.e30.x' } });
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' } });

    const graph = await secretCredential().getToken('https://graph.microsoft.com/.default');
    const wrong = await raw('GET', clusterPath, { headers: { Authorization: `Bearer ${graph.token}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.code).toBe('InvalidAuthenticationTokenAudience');
    expect(wrong.json.error.message).toContain("The access token has been obtained for wrong audience or resource 'https://graph.microsoft.com'.");
    // The public-cloud ARM audience is accepted (the modular AKS client asks for it unless given credentials.scopes).
    const publicArm = await secretCredential().getToken('https://management.azure.com/.default');
    expect((await raw('GET', clusterPath, { headers: { Authorization: `Bearer ${publicArm.token}` } })).status).toBe(404);
  });

  it('no api-version: 400 MissingApiVersionParameter; every answer carries x-ms-request-id and x-ms-correlation-request-id', async () => {
    const res = await raw('GET', clusterPath.replace(/\?.*$/, ''), { headers: { ...bearer(), 'x-ms-correlation-request-id': 'corr-42' } });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: { code: 'MissingApiVersionParameter', message: 'The api-version query parameter (?api-version=) is required for all requests.' } });
    expect(res.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-ms-correlation-request-id']).toBe('corr-42');
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('an unknown subscription is SubscriptionNotFound; an unknown route says the emulator does not implement it', async () => {
    const res = await raw('GET', `/subscriptions/99999999-0000-4000-8000-000000000000/resourceGroups/x/providers/Microsoft.ContainerService/managedClusters/y?api-version=2025-01-01`, { headers: bearer() });
    expect(res.status).toBe(404);
    expect(res.json.error).toEqual({ code: 'SubscriptionNotFound', message: "The subscription '99999999-0000-4000-8000-000000000000' could not be found." });
    const nope = await raw('GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/kv?api-version=2023-07-01`, { headers: bearer() });
    expect(nope.status).toBe(404);
    expect(nope.json.error.code).toBe('NotImplementedInEmulator');
  });
});

// ---------------------------------------------------------------------------------------------
// AKS
// ---------------------------------------------------------------------------------------------

describe('AKS managedClusters.get (modular @azure/arm-containerservice)', () => {
  it('returns the issuer and the workload identity flag', async () => {
    const seeded = emu.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'aks1', location: 'East US', issuer: ISSUER });
    const mc = await aks.managedClusters.get(RG, 'aks1');
    expect(mc.id).toBe(`/subscriptions/${SUB}/resourcegroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks1`);
    expect(mc.id).toBe(seeded.id);
    expect(mc.name).toBe('aks1');
    expect(mc.location).toBe('eastus');
    expect(mc.type).toBe('Microsoft.ContainerService/ManagedClusters');
    expect(mc.provisioningState).toBe('Succeeded');
    expect(mc.oidcIssuerProfile).toEqual({ enabled: true, issuerURL: ISSUER });
    expect(mc.securityProfile?.workloadIdentity?.enabled).toBe(true);
    expect(mc.currentKubernetesVersion).toBe('1.31.5');
    const rec = emu.log.find((r) => r.kind === 'arm');
    expect(rec).toMatchObject({ method: 'GET', path: `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ContainerService/managedClusters/aks1`, status: 200, write: false });
    expect(rec?.query['api-version']).toMatch(/^\d{4}-\d\d-\d\d/);
  });

  it('a cluster without OIDC or workload identity', async () => {
    emu.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'plain', location: 'westeurope', oidcEnabled: false, workloadIdentityEnabled: false });
    const mc = await aks.managedClusters.get(RG, 'plain');
    expect(mc.oidcIssuerProfile).toEqual({ enabled: false });
    expect(mc.securityProfile?.workloadIdentity).toBeUndefined();
  });

  it('missing cluster: RestError 404 ResourceNotFound with ARM\'s text; missing group: ResourceGroupNotFound', async () => {
    const e = await failure(aks.managedClusters.get(RG, 'nope'));
    expect(e.name).toBe('RestError');
    expect(e.statusCode).toBe(404);
    expect(e.code).toBe('ResourceNotFound');
    expect(e.message).toBe(`The Resource 'Microsoft.ContainerService/managedClusters/nope' under resource group '${RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
    const g = await failure(aks.managedClusters.get('rg-missing', 'x'));
    expect(g.statusCode).toBe(404);
    expect(g.code).toBe('ResourceGroupNotFound');
    expect(g.message).toBe("Resource group 'rg-missing' could not be found.");
  });
});

// ---------------------------------------------------------------------------------------------
// User-assigned identities
// ---------------------------------------------------------------------------------------------

describe('user-assigned identities (@azure/arm-msi)', () => {
  it('createOrUpdate: 201 then 200, ids stable, tags replaced wholesale, location normalised', async () => {
    const created = await msi.userAssignedIdentities.createOrUpdate(RG, 'id-app', { location: 'East US', tags: { owner: 'wid', env: 'dev' } });
    expect(created.id).toBe(`/subscriptions/${SUB}/resourcegroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app`);
    expect(created.type).toBe('Microsoft.ManagedIdentity/userAssignedIdentities');
    expect(created.location).toBe('eastus');
    expect(created.tenantId).toBe(emu.tenantId);
    expect(created.clientId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(created.principalId).not.toBe(created.clientId);
    expect(created.isolationScope).toBe('None');

    const replaced = await msi.userAssignedIdentities.createOrUpdate(RG, 'id-app', { location: 'eastus', tags: { owner: 'wid' } });
    expect(replaced.clientId).toBe(created.clientId);
    expect(replaced.principalId).toBe(created.principalId);
    expect(replaced.tags).toEqual({ owner: 'wid' });
    expect(emu.writes().map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 201', 'PUT 200']);
    expect(emu.writes()[0]?.body).toEqual({ location: 'East US', tags: { owner: 'wid', env: 'dev' } });

    const got = await msi.userAssignedIdentities.get(RG, 'ID-APP'); // names are case-insensitive
    expect(got.name).toBe('id-app');
    expect(emu.getIdentity(got.id ?? '')?.properties.clientId).toBe(created.clientId);
  });

  it('update (PATCH) replaces tags; listByResourceGroup lists; delete is 200 then 204 and removes the FICs', async () => {
    const seeded = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-1', location: 'eastus', tags: { a: '1' } });
    emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-2', location: 'eastus' });
    emu.seedFederatedCredential(seeded.id, { name: 'kube', issuer: ISSUER, subject: SA_SUBJECT });
    const patched = await msi.userAssignedIdentities.update(RG, 'id-1', { tags: { b: '2' } });
    expect(patched.tags).toEqual({ b: '2' });
    expect((await collect(msi.userAssignedIdentities.listByResourceGroup(RG))).map((i) => i.name).sort()).toEqual(['id-1', 'id-2']);
    expect((await collect(msi.userAssignedIdentities.listBySubscription())).length).toBe(2);

    await msi.userAssignedIdentities.delete(RG, 'id-1');
    await msi.userAssignedIdentities.delete(RG, 'id-1');
    expect(emu.writes().map((r) => `${r.method} ${r.status}`)).toEqual(['PATCH 200', 'DELETE 200', 'DELETE 204']);
    expect(emu.getIdentity(seeded.id)).toBeUndefined();
    expect(emu.listFederatedCredentials(seeded.id)).toEqual([]);
    // Re-created under the same name it is a new identity (new ids), as in Azure.
    const again = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-1', location: 'eastus' });
    expect(again.clientId).not.toBe(seeded.clientId);
  });

  it('get of a missing identity: 404 ResourceNotFound; PUT without location: LocationRequired', async () => {
    const e = await failure(msi.userAssignedIdentities.get(RG, 'ghost'));
    expect(e.statusCode).toBe(404);
    expect(e.code).toBe('ResourceNotFound');
    expect(e.message).toBe(`The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/ghost' under resource group '${RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
    const res = await raw('PUT', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-x1?api-version=2024-11-30`, {
      headers: { ...bearer(), 'Content-Type': 'application/json' },
      body: '{"tags":{}}',
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toEqual({ code: 'LocationRequired', message: 'The location property is required for this definition.' });
    const moved = await failure(
      (async () => {
        await msi.userAssignedIdentities.createOrUpdate(RG, 'id-x2', { location: 'eastus' });
        await msi.userAssignedIdentities.createOrUpdate(RG, 'id-x2', { location: 'westus' });
      })(),
    );
    expect(moved.code).toBe('InvalidResourceLocation');
  });
});

// ---------------------------------------------------------------------------------------------
// Federated identity credentials
// ---------------------------------------------------------------------------------------------

describe('federated identity credentials (@azure/arm-msi)', () => {
  let identityId: string;
  beforeEach(() => {
    identityId = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-fic', location: 'eastus' }).id;
  });

  const fic = (subject: string, audiences = [AUDIENCE]) => ({ issuer: ISSUER, subject, audiences });

  it('createOrUpdate (201, then 200), get, list and delete', async () => {
    const created = await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'wid-default-app', fic(SA_SUBJECT));
    expect(created).toMatchObject({
      id: `${identityId}/federatedIdentityCredentials/wid-default-app`,
      name: 'wid-default-app',
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
      issuer: ISSUER,
      subject: SA_SUBJECT,
      audiences: [AUDIENCE],
    });
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'wid-default-app', fic(SA_SUBJECT));
    expect(emu.writes().map((r) => r.status)).toEqual([201, 200]);
    expect(emu.writes()[0]?.body).toEqual({ properties: { issuer: ISSUER, subject: SA_SUBJECT, audiences: [AUDIENCE] } });
    expect((await msi.federatedIdentityCredentials.get(RG, 'id-fic', 'wid-default-app')).subject).toBe(SA_SUBJECT);
    expect((await collect(msi.federatedIdentityCredentials.list(RG, 'id-fic'))).map((f) => f.name)).toEqual(['wid-default-app']);
    await msi.federatedIdentityCredentials.delete(RG, 'id-fic', 'wid-default-app');
    await msi.federatedIdentityCredentials.delete(RG, 'id-fic', 'wid-default-app');
    expect(emu.writes().slice(2).map((r) => `${r.method} ${r.status}`)).toEqual(['DELETE 200', 'DELETE 204']);
    const e = await failure(msi.federatedIdentityCredentials.get(RG, 'id-fic', 'wid-default-app'));
    expect(e.statusCode).toBe(404);
  });

  it('list pages with $top/$skiptoken and the SDK follows nextLink', async () => {
    for (let n = 1; n <= 5; n++) emu.seedFederatedCredential(identityId, { name: `fic-${n}`, issuer: ISSUER, subject: `system:serviceaccount:ns:sa-${n}` });
    const all = await collect(msi.federatedIdentityCredentials.list(RG, 'id-fic', { top: 2 }));
    expect(all.map((f) => f.name)).toEqual(['fic-1', 'fic-2', 'fic-3', 'fic-4', 'fic-5']);
    const lists = emu.log.filter((r) => r.kind === 'arm');
    expect(lists.map((r) => [r.query.$top, r.query.$skiptoken === undefined])).toEqual([
      ['2', true],
      ['2', false],
      ['2', false],
    ]);
    expect(lists.every((r) => r.query['api-version'] === '2024-11-30')).toBe(true);
  });

  it('the name pattern: 400 with the documented text (the SDK does not check the pattern itself)', async () => {
    const e = await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', '-bad', fic(SA_SUBJECT)));
    expect([e.statusCode, e.code, e.message]).toEqual([400, 'BadRequest', "Federated Identity Credential name '-bad' is invalid."]);
    expect(emu.writes().map((r) => r.path.split('/').pop())).toEqual(['-bad']);
    const res = await raw('PUT', `${identityId}/federatedIdentityCredentials/ab?api-version=2024-11-30`, {
      headers: { ...bearer(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ properties: fic(SA_SUBJECT) }),
    });
    expect(res.status).toBe(400);
    expect(res.json.error).toEqual({ code: 'BadRequest', message: "Federated Identity Credential name 'ab' is invalid." });
  });

  it('exactly one audience, at most 600 characters, unique (issuer, subject), at most 20', async () => {
    const two = await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'two-aud', fic(SA_SUBJECT, [AUDIENCE, 'api://other'])));
    expect([two.statusCode, two.code, two.message]).toEqual([400, 'InvalidFederatedIdentityCredentialsAudienceLength', 'Federated identity credentials must have exactly 1 audience.']);
    const long = await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'long', fic(`s${'x'.repeat(600)}`)));
    expect([long.statusCode, long.code]).toEqual([400, 'BadRequest']);

    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'first', fic(SA_SUBJECT));
    const dup = await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'second', fic(SA_SUBJECT)));
    expect([dup.statusCode, dup.code, dup.message]).toEqual([400, 'BadRequest', 'Issuer and subject combination already exists for this Managed Identity.']);

    for (let n = 2; n <= 20; n++) emu.seedFederatedCredential(identityId, { name: `fic-${n}`, issuer: ISSUER, subject: `system:serviceaccount:ns:sa-${n}` });
    const full = await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'twenty-one', fic('system:serviceaccount:ns:sa-21')));
    expect(full.statusCode).toBe(400);
    expect(full.message).toContain('at most 20 federated identity credentials');
    // Replacing one of the 20 is still allowed.
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'fic-20', fic('system:serviceaccount:ns:sa-20b'));
  });

  it('parent missing: 404 ParentResourceNotFound "The parent user-assigned identity doesn\'t exist."', async () => {
    const e = await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'no-such-id', 'kube', fic(SA_SUBJECT)));
    expect([e.statusCode, e.code, e.message]).toEqual([404, 'ParentResourceNotFound', "The parent user-assigned identity doesn't exist."]);
  });

  it('concurrent writes to one identity: the second gets 409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', async () => {
    emu.faults.latencyMs = 150;
    const results = await Promise.allSettled([
      msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'one', fic('system:serviceaccount:a:one')),
      msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'two', fic('system:serviceaccount:a:two')),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const e = rejected?.reason as SdkError;
    expect(e.statusCode).toBe(409);
    expect(e.code).toBe('ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity');
    expect(e.message).toBe(
      `Too many Federated Identity Credentials are written concurrently for the managed identity '/subscriptions/${SUB}/resourcegroups/${RG}/providers/microsoft.managedidentity/userassignedidentities/id-fic'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.`,
    );
    expect(emu.listFederatedCredentials(identityId)).toHaveLength(1);
    // Sequential writes are fine.
    emu.faults.latencyMs = 0;
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'three', fic('system:serviceaccount:a:three'));
    // And the fault switch forces one without timing.
    emu.faults.ficConflict();
    expect((await failure(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'four', fic('system:serviceaccount:a:four')))).statusCode).toBe(409);
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'four', fic('system:serviceaccount:a:four'));
  });
});

// ---------------------------------------------------------------------------------------------
// Role definitions and assignments
// ---------------------------------------------------------------------------------------------

describe('role definitions (@azure/arm-authorization)', () => {
  it('list with $filter=roleName eq … returns the built-in; an unknown name returns nothing; get by id', async () => {
    const scope = `/subscriptions/${SUB}`;
    const defs = await collect(authz.roleDefinitions.list(scope, { filter: "roleName eq 'Key Vault Secrets User'" }));
    expect(defs).toHaveLength(1);
    expect(defs[0]).toMatchObject({
      id: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${KV_SECRETS_USER}`,
      name: KV_SECRETS_USER,
      type: 'Microsoft.Authorization/roleDefinitions',
      roleName: 'Key Vault Secrets User',
      roleType: 'BuiltInRole',
      assignableScopes: ['/'],
    });
    expect(emu.log.at(-1)?.query.$filter).toBe("roleName eq 'Key Vault Secrets User'");
    expect(await collect(authz.roleDefinitions.list(scope, { filter: "roleName eq 'No Such Role'" }))).toEqual([]);
    const reader = await authz.roleDefinitions.get(`subscriptions/${SUB}/resourceGroups/${RG}`, READER);
    expect(reader.roleName).toBe('Reader');
    expect(reader.id).toBe(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${READER}`);
  });
});

describe('role assignments (@azure/arm-authorization)', () => {
  let principalId: string;
  const rgScope = `/subscriptions/${SUB}/resourceGroups/${RG}`;
  const roleId = (guid: string): string => `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
  beforeEach(() => {
    principalId = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-ra', location: 'eastus' }).principalId;
  });

  it('create (201), get, listForScope by principal (at, above and below), deleteById (200, then 204)', async () => {
    const name = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
    // A scope with a leading slash makes the SDK send `//subscriptions/…`; the emulator (like ARM) accepts it.
    const created = await authz.roleAssignments.create(rgScope, name, { roleDefinitionId: roleId(KV_SECRETS_USER), principalId, principalType: 'ServicePrincipal' });
    expect(created).toMatchObject({ id: `${rgScope}/providers/Microsoft.Authorization/roleAssignments/${name}`, name, type: 'Microsoft.Authorization/roleAssignments', scope: rgScope, principalId, principalType: 'ServicePrincipal', roleDefinitionId: roleId(KV_SECRETS_USER) });
    expect(created.createdOn).toBeInstanceOf(Date);
    expect(emu.writes()[0]).toMatchObject({ method: 'PUT', status: 201, path: `${rgScope}/providers/Microsoft.Authorization/roleAssignments/${name}` });
    expect(emu.writes()[0]?.body).toEqual({ properties: { roleDefinitionId: roleId(KV_SECRETS_USER), principalId, principalType: 'ServicePrincipal' } });

    expect((await authz.roleAssignments.get(rgScope.slice(1), name)).principalId).toBe(principalId);
    // An assignment above (subscription) and one elsewhere.
    emu.seedRoleAssignment({ scope: `/subscriptions/${SUB}`, roleName: 'Reader', principalId });
    emu.seedRoleAssignment({ scope: `/subscriptions/${SUB}/resourceGroups/other`, roleName: 'Reader', principalId: emu.servicePrincipalObjectId });
    const atSub = await collect(authz.roleAssignments.listForScope(`subscriptions/${SUB}`, { filter: `principalId eq '${principalId}'` }));
    expect(atSub.map((a) => a.scope).sort()).toEqual([`/subscriptions/${SUB}`, rgScope]); // at and below
    const atRgOnly = await collect(authz.roleAssignments.listForScope(rgScope, { filter: 'atScope()' }));
    expect(atRgOnly.map((a) => a.scope).sort()).toEqual([`/subscriptions/${SUB}`, rgScope]); // at and above
    // Scopes compare case-insensitively.
    const lower = await collect(authz.roleAssignments.listForScope(rgScope.toLowerCase(), { filter: `principalId eq '${principalId}'` }));
    expect(lower.map((a) => a.name)).toContain(name);

    const deleted = await authz.roleAssignments.deleteById(created.id ?? '');
    expect(deleted.name).toBe(name);
    await authz.roleAssignments.deleteById(created.id ?? '');
    expect(emu.writes().slice(1).map((r) => `${r.method} ${r.status}`)).toEqual(['DELETE 200', 'DELETE 204']);
    const gone = await failure(authz.roleAssignments.get(rgScope, name));
    expect([gone.statusCode, gone.code, gone.message]).toEqual([404, 'RoleAssignmentNotFound', `The role assignment '${name}' is not found.`]);
  });

  it('the same principal, role and scope under another name: 409 RoleAssignmentExists; an identical re-PUT is fine', async () => {
    const body = { roleDefinitionId: roleId(READER), principalId, principalType: 'ServicePrincipal' };
    await authz.roleAssignments.create(rgScope, '11111111-1111-4111-8111-111111111111', body);
    await authz.roleAssignments.create(rgScope, '11111111-1111-4111-8111-111111111111', body);
    const e = await failure(authz.roleAssignments.create(rgScope, '22222222-2222-4222-8222-222222222222', body));
    expect([e.name, e.statusCode, e.code, e.message]).toEqual(['RestError', 409, 'RoleAssignmentExists', 'The role assignment already exists.']);
    expect(emu.listRoleAssignments()).toHaveLength(1);
  });

  it('an unknown principal without principalType: 400 PrincipalNotFound; with principalType it is accepted; a wrong type is UnmatchedPrincipalType', async () => {
    const stranger = '0f14a80d-42e5-4d57-afe0-46acf9dfae05';
    const e = await failure(authz.roleAssignments.create(rgScope, '33333333-3333-4333-8333-333333333333', { roleDefinitionId: roleId(READER), principalId: stranger }));
    expect([e.statusCode, e.code]).toEqual([400, 'PrincipalNotFound']);
    expect(e.message).toBe(
      `Principal 0f14a80d42e54d57afe046acf9dfae05 does not exist in the directory ${emu.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
    );
    await authz.roleAssignments.create(rgScope, '33333333-3333-4333-8333-333333333333', { roleDefinitionId: roleId(READER), principalId: stranger, principalType: 'ServicePrincipal' });
    // A known identity principal needs no principalType (ARM looks it up) …
    const looked = await authz.roleAssignments.create(rgScope, '44444444-4444-4444-8444-444444444444', { roleDefinitionId: roleId(READER), principalId });
    expect(looked.principalType).toBe('ServicePrincipal');
    // … and a contradicting one is refused.
    const wrong = await failure(authz.roleAssignments.create(rgScope, '55555555-5555-4555-8555-555555555555', { roleDefinitionId: roleId(KV_SECRETS_USER), principalId, principalType: 'User' }));
    expect(wrong.code).toBe('UnmatchedPrincipalType');
    const badRole = await failure(authz.roleAssignments.create(rgScope, '66666666-6666-4666-8666-666666666666', { roleDefinitionId: roleId('00000000-0000-4000-8000-000000000000'), principalId }));
    expect([badRole.statusCode, badRole.code]).toEqual([400, 'RoleDefinitionDoesNotExist']);
  });
});

// ---------------------------------------------------------------------------------------------
// Faults and the log
// ---------------------------------------------------------------------------------------------

describe('fault switches', () => {
  it('throttle: 429 TooManyRequests with Retry-After; the SDK waits and retries', async () => {
    emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-t', location: 'eastus' });
    emu.faults.throttle(/userAssignedIdentities\/id-t$/, 2, 0);
    const got = await msi.userAssignedIdentities.get(RG, 'id-t');
    expect(got.name).toBe('id-t');
    expect(emu.log.filter((r) => r.kind === 'arm').map((r) => r.status)).toEqual([429, 429, 200]);

    emu.faults.throttle(/userAssignedIdentities\/id-t$/, 1);
    const res = await raw('GET', `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-t?api-version=2024-11-30`, { headers: bearer() });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json).toEqual({ error: { code: 'TooManyRequests', message: 'The request is being throttled.' } });
  });

  it('failNext: the next matching request fails with the given error (then things are back to normal)', async () => {
    emu.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'aks-f', location: 'eastus' });
    emu.faults.failNext('GET', /managedClusters\/aks-f$/, 409, 'OperationNotAllowed', 'Operation is not allowed while the cluster is being upgraded.');
    const e = await failure(aks.managedClusters.get(RG, 'aks-f'));
    expect([e.name, e.statusCode, e.code, e.message]).toEqual(['RestError', 409, 'OperationNotAllowed', 'Operation is not allowed while the cluster is being upgraded.']);
    expect((await aks.managedClusters.get(RG, 'aks-f')).name).toBe('aks-f');
  });

  it('a status-0 fault drops the connection before the request is handled; dropAnswerNext loses the answer of a handled one', async () => {
    const identity = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-x', location: 'eastus' });
    const fic = /federatedIdentityCredentials\/fic-x$/;
    const ficPath = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-x/federatedIdentityCredentials/fic-x?api-version=2024-11-30`;
    const body = JSON.stringify({ properties: { issuer: ISSUER, subject: SA_SUBJECT, audiences: [AUDIENCE] } });
    const put = (): Promise<RawResponse> => raw('PUT', ficPath, { headers: { ...bearer(), 'Content-Type': 'application/json' }, body });

    // The request is lost: a network error, nothing stored, logged with status 0.
    emu.faults.failNext('PUT', fic, 0, '', '');
    expect(((await failure(put())) as { code?: string }).code).toBe('ECONNRESET');
    expect(emu.listFederatedCredentials(identity.id)).toEqual([]);
    // The answer is lost: the credential is stored all the same.
    emu.faults.dropAnswerNext('PUT', fic);
    expect(((await failure(put())) as { code?: string }).code).toBe('ECONNRESET');
    expect(emu.listFederatedCredentials(identity.id).map((f) => f.name)).toEqual(['fic-x']);
    expect(emu.log.map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 0', 'PUT 0']);

    // The SDKs' retry policy resends after a dropped connection, whatever the method: a PUT converges, and
    // a DELETE whose answer was lost is answered 204 on the resend (ARM's DELETE of a missing resource).
    emu.faults.failNext('PUT', fic, 0, '', '');
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-x', 'fic-x', { issuer: ISSUER, subject: SA_SUBJECT, audiences: [AUDIENCE] });
    expect(emu.log.filter((r) => r.kind === 'arm').slice(-2).map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 0', 'PUT 200']);
    emu.faults.dropAnswerNext('DELETE', fic);
    await msi.federatedIdentityCredentials.delete(RG, 'id-x', 'fic-x');
    expect(emu.listFederatedCredentials(identity.id)).toEqual([]);
    expect(emu.log.filter((r) => r.kind === 'arm').slice(-2).map((r) => `${r.method} ${r.status}`)).toEqual(['DELETE 0', 'DELETE 204']);

    // clear() drops pending answer drops.
    emu.faults.dropAnswerNext('*', /./);
    emu.faults.clear();
    expect((await put()).status).toBe(201);
  });

  it('deny: 403 AuthorizationFailed naming the action and scope', async () => {
    emu.faults.deny('PUT', /roleAssignments/);
    const principalId = emu.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'id-d', location: 'eastus' }).principalId;
    const e = await failure(
      authz.roleAssignments.create(`/subscriptions/${SUB}`, '77777777-7777-4777-8777-777777777777', { roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId, principalType: 'ServicePrincipal' }),
    );
    expect([e.statusCode, e.code]).toEqual([403, 'AuthorizationFailed']);
    expect(e.message).toBe(
      `The client '${emu.clientId}' with object id '${emu.servicePrincipalObjectId}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/${SUB}/providers/Microsoft.Authorization/roleAssignments/77777777-7777-4777-8777-777777777777' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    );
    emu.faults.clear();
  });
});

describe('stub credential', () => {
  it('tokenCredential() lets in-process clients skip MSAL (no token requests)', async () => {
    const client = new ManagedServiceIdentityClient(emu.tokenCredential(), SUB, { endpoint: emu.url, tlsOptions: { ca: emu.ca } });
    const created = await client.userAssignedIdentities.createOrUpdate(RG, 'id-stub', { location: 'eastus' });
    expect(created.principalId).toBe(emu.getIdentity(created.id ?? '')?.properties.principalId);
    expect(emu.log.map((r) => r.kind)).toEqual(['arm']);
  });
});

describe('log', () => {
  it('records kind, method, path, query, body and status; writes() keeps ARM writes only; reset() empties it', async () => {
    await msi.userAssignedIdentities.createOrUpdate(RG, 'id-log', { location: 'eastus' });
    await msi.userAssignedIdentities.get(RG, 'id-log');
    const arm = emu.log.filter((r) => r.kind === 'arm');
    expect(arm.map((r) => [r.method, r.status, r.write])).toEqual([
      ['PUT', 201, true],
      ['GET', 200, false],
    ]);
    expect(arm[0]?.query).toEqual({ 'api-version': '2024-11-30' });
    expect(emu.writes()).toEqual([arm[0]]);
    emu.reset();
    expect(emu.log).toEqual([]);
    // The shared credential's cached token stays valid across reset().
    emu.seedResourceGroup({ subscription: SUB, name: RG });
    expect((await collect(msi.userAssignedIdentities.listByResourceGroup(RG))).length).toBe(0);
  });
});
