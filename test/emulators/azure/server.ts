/**
 * In-memory emulator of the two Azure services `wid setup aks` talks to, on ONE `node:https` listener
 * on 127.0.0.1 (port 0):
 *
 *  - the Microsoft Entra ID authority (what MSAL inside @azure/identity calls when AZURE_AUTHORITY_HOST
 *    points here): OpenID discovery, the v2.0 token endpoint (client secret and client assertion), JWKS;
 *  - Azure Resource Manager: AKS managedClusters (read), user-assigned managed identities and their
 *    federated identity credentials, role definitions and role assignments, resource groups.
 *
 * TLS: a throw-away CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) are made with the
 * `openssl` CLI at start, because the ARM SDK clients refuse to send a bearer token over http
 * (testing-notes.md, "Azure") and MSAL only talks https. Trust the CA with `tlsOptions: { ca }` in
 * process, or NODE_EXTRA_CA_CERTS=<caPath> for a spawned process. See SPEC.md for the contract.
 *
 * Sources for shapes and texts are cited inline: /work/shared/reference/azure.md §3, the installed SDKs
 * (@azure/arm-msi 2.2.0, @azure/arm-authorization 9.0.0, @azure/arm-containerservice 25.3.0,
 * @azure/identity 4.13.1 with @azure/msal-node 5.6 / msal-common 16.17), the Entra docs' FIC error table
 * (MicrosoftDocs/entra-docs workload-identity-federation-considerations.md), and issue threads that quote
 * real responses. Where no real text was available the comment says "emulator text".
 */
import { execFile } from 'node:child_process';
import { createHash, createSign, generateKeyPair, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export type AzureRequestKind = 'arm' | 'token' | 'metadata';

export interface AzureRequestRecord {
  method: string;
  /**
   * The decoded path, repeated slashes collapsed (the authorization SDK sends `//subscriptions/…` when
   * given a scope that starts with `/`; ARM accepts that, and so does the emulator).
   */
  path: string;
  /** Query parameters, decoded (`api-version`, `$filter`, `$top`, `$skiptoken`, …). */
  query: Record<string, string>;
  /**
   * ARM: the parsed JSON body of a PUT/PATCH/POST (the raw text when it is not JSON).
   * Token: `{ tenant, grant_type, client_id, scope, client_assertion_type? }`: never the secret or the assertion.
   */
  body?: unknown;
  /** The status the emulator answered with (0 while the request is in flight, and when the connection was dropped). */
  status: number;
  /** ARM PUT/PATCH/DELETE/POST, whatever the outcome. */
  write: boolean;
  kind: AzureRequestKind;
}

export interface AzureFaults {
  /**
   * The next `times` (default 1) requests whose method matches (`'*'` for any) and whose `path`
   * matches `pathRegex` fail with `status` and `{"error":{"code","message"}}` (token/metadata
   * requests get Entra's `{"error","error_description",…}` shape instead). Checked after
   * authentication and the api-version check, before any state is touched. Queued faults run in order.
   * Status 0 destroys the socket without an answer (the request was lost: nothing changed; the client
   * sees a network error); `code` and `message` are then ignored.
   */
  failNext(method: string, pathRegex: RegExp, status: number, code: string, message: string, times?: number): void;
  /**
   * The next `times` (default 1) ARM requests with this method (`'*'` for any) and a matching path that
   * get past the injected faults are handled as usual (state changes), then the socket is destroyed
   * instead of answering: the answer was lost. Logged with status 0.
   */
  dropAnswerNext(method: string, pathRegex: RegExp, times?: number): void;
  /**
   * The next `times` ARM requests whose path matches answer 429 `TooManyRequests` with
   * `Retry-After: <retryAfterSeconds>` (default 1; 0 makes the SDK retry at once).
   */
  throttle(pathRegex: RegExp, times: number, retryAfterSeconds?: number): void;
  /** Every ARM request with this method (`'*'` for any) and a matching path answers 403 AuthorizationFailed until clear(). */
  deny(method: string, pathRegex: RegExp): void;
  /** The next `times` (default 1) federated-credential writes answer 409, as if another write to the identity were in flight. */
  ficConflict(times?: number): void;
  /** Milliseconds added before every answer (errors included). Concurrent FIC writes to one identity inside this window get 409. */
  latencyMs: number;
  /** Requests whose path matches get no latency (e.g. the sign-in, to slow ARM alone); clear() unsets it. */
  latencyExcept?: RegExp | undefined;
  /**
   * Holds the next `count` ARM requests with this method (`'*'` for any) and a matching path after
   * their latency, until `count` of them are waiting (or `timeoutMs`, default 5000, has passed since
   * the first arrived), then lets them all go on in arrival order. Two FIC writes gathered this way
   * are in flight together, so the later one gets the 409 of concurrent writes. clear() releases them.
   */
  gather(method: string, pathRegex: RegExp, count: number, timeoutMs?: number): void;
  /** Drops every queued fault and deny, and sets latencyMs back to 0. */
  clear(): void;
}

/** A faults.gather in progress. */
interface Gathering {
  method: string;
  pathRegex: RegExp;
  count: number;
  timeoutMs: number;
  waiting: (() => void)[];
  timer?: ReturnType<typeof setTimeout>;
}

export interface SeedResourceGroupInput {
  subscription: string;
  name: string;
  /** Default `eastus`. */
  location?: string;
}

export interface SeedClusterInput {
  subscription: string;
  resourceGroup: string;
  name: string;
  location: string;
  /** Default `https://{location}.oic.prod-aks.azure.com/{tenantId}/{guid}/` (the AKS format, trailing slash included). */
  issuer?: string;
  /** Default true. False: `oidcIssuerProfile: {enabled: false}` and no issuerURL, whatever `issuer` says. */
  oidcEnabled?: boolean;
  /** Default true. False: `securityProfile: {}` (no workloadIdentity key), as on a cluster where it was never enabled. */
  workloadIdentityEnabled?: boolean;
  /** Default `1.31.5`. */
  kubernetesVersion?: string;
  /** Default `Succeeded`. */
  provisioningState?: string;
}

export interface SeededCluster {
  id: string;
  /** undefined when OIDC is disabled. */
  issuerURL: string | undefined;
}

export interface SeedIdentityInput {
  subscription: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags?: Record<string, string>;
}

export interface SeededIdentity {
  id: string;
  clientId: string;
  principalId: string;
  tenantId: string;
}

export interface SeedFederatedCredentialInput {
  name: string;
  issuer: string;
  subject: string;
  /** Default `['api://AzureADTokenExchange']`. */
  audiences?: string[];
}

export interface SeedRoleAssignmentInput {
  /** `/subscriptions/{s}`, `/subscriptions/{s}/resourceGroups/{rg}` or a full resource id. */
  scope: string;
  /** A full role definition id (`/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}`) … */
  roleDefinitionId?: string;
  /** … or a built-in role name (`Reader`, `Key Vault Secrets User`, …). One of the two is required. */
  roleName?: string;
  principalId: string;
  /** Default `ServicePrincipal`. */
  principalType?: string;
  /** The assignment's GUID name; default a random GUID. */
  name?: string;
  description?: string;
}

/** A user-assigned identity as ARM returns it. */
export interface ArmIdentity {
  id: string;
  name: string;
  type: 'Microsoft.ManagedIdentity/userAssignedIdentities';
  location: string;
  tags: Record<string, string>;
  properties: { isolationScope?: string; tenantId: string; principalId: string; clientId: string };
}

/** A federated identity credential as ARM returns it. */
export interface ArmFederatedCredential {
  id: string;
  name: string;
  type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials';
  properties: { issuer: string; subject: string; audiences: string[] };
}

/** A role assignment as ARM returns it. */
export interface ArmRoleAssignment {
  id: string;
  name: string;
  type: 'Microsoft.Authorization/roleAssignments';
  properties: {
    roleDefinitionId: string;
    principalId: string;
    principalType: string;
    scope: string;
    condition: string | null;
    conditionVersion: string | null;
    createdOn: string;
    updatedOn: string;
    createdBy: string | null;
    updatedBy: string | null;
    delegatedManagedIdentityResourceId: string | null;
    description: string | null;
  };
}

/** Structurally a @azure/core-auth TokenCredential. */
export interface EmulatorTokenCredential {
  getToken(scopes?: string | string[]): Promise<{ token: string; expiresOnTimestamp: number; tokenType: 'Bearer' }>;
}

export interface AzureEmulator {
  /** `https://127.0.0.1:PORT`: use it as AZURE_AUTHORITY_HOST and as the ARM endpoint (AZURE_RESOURCE_MANAGER_ENDPOINT). */
  url: string;
  /** PEM file of the throw-away CA (for NODE_EXTRA_CA_CERTS). */
  caPath: string;
  /** The same CA as PEM text (for `tlsOptions: { ca }`). */
  ca: string;
  tenantId: string;
  /** The service principal tests sign in as (ClientSecretCredential / EnvironmentCredential). */
  clientId: string;
  clientSecret: string;
  /** That service principal's object id (the `oid` of its tokens; a known principal for role assignments). */
  servicePrincipalObjectId: string;
  /** Every request, in arrival order. */
  log: AzureRequestRecord[];
  /** The ARM writes (PUT/PATCH/DELETE/POST) in the log, whatever their status. */
  writes(): AzureRequestRecord[];
  /** Makes the subscription known and creates the resource group (idempotent). */
  seedResourceGroup(g: SeedResourceGroupInput): string;
  /** Creates the resource group too when missing. */
  seedCluster(c: SeedClusterInput): SeededCluster;
  /** Creates the resource group too when missing. Replaces an identity of the same name (keeping its ids). */
  seedIdentity(i: SeedIdentityInput): SeededIdentity;
  /** No validation (name, count, audiences): a test may set up a state the API would refuse. Throws if the identity is unknown. */
  seedFederatedCredential(identityId: string, fic: SeedFederatedCredentialInput): void;
  /** No validation of the principal; returns the assignment id. */
  seedRoleAssignment(a: SeedRoleAssignmentInput): string;
  /** Makes a principal id known to the directory (so role assignments without principalType accept it). */
  seedPrincipal(principalId: string, principalType?: string): void;
  /** As GET returns it; the id is compared case-insensitively (`resourceGroups` or `resourcegroups`). */
  getIdentity(id: string): ArmIdentity | undefined;
  listFederatedCredentials(identityId: string): ArmFederatedCredential[];
  listRoleAssignments(): ArmRoleAssignment[];
  /** A bearer token ARM accepts (audience `url`), minted without a token request; for stub credentials. */
  issueToken(): string;
  /** A TokenCredential that returns issueToken(): for in-process tests that skip MSAL. */
  tokenCredential(): EmulatorTokenCredential;
  faults: AzureFaults;
  /**
   * Called synchronously with the request's record (status filled in) right after its answer was
   * handed to the socket (`res.end`), or after a dropped connection destroyed the socket (status 0),
   * for every request (ARM and authority). A test hook (e.g. to kill
   * the client right after its k-th write was answered); reset() leaves it in place.
   */
  onResponse?: (record: AzureRequestRecord) => void;
  /** State, log, faults and id counters back to empty. The URL, CA, credentials and issued tokens stay valid. */
  reset(): void;
  /** Closes the listener (and kept-alive connections) and removes the CA's temp dir. */
  close(): Promise<void>;
}

export interface StartAzureEmulatorOptions {
  /** Default `aaaabbbb-0000-cccc-1111-dddd2222eeee`. */
  tenantId?: string;
  /** Default `00001111-aaaa-2222-bbbb-3333cccc4444`. */
  clientId?: string;
  /** Default: a random secret shaped like Entra's (`xxx8Q~…`, 40 characters). */
  clientSecret?: string;
}

export function startAzureEmulator(opts: StartAzureEmulatorOptions = {}): Promise<AzureEmulator> {
  return AzureEmulatorImpl.start(opts);
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const DEFAULT_TENANT = 'aaaabbbb-0000-cccc-1111-dddd2222eeee';
const DEFAULT_CLIENT = '00001111-aaaa-2222-bbbb-3333cccc4444';

const T_IDENTITY = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const T_FIC = 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials';
const T_CLUSTER = 'Microsoft.ContainerService/managedClusters';
const T_ROLE_ASSIGNMENT = 'Microsoft.Authorization/roleAssignments';
const T_ROLE_DEFINITION = 'Microsoft.Authorization/roleDefinitions';

/** azure.md §3.3 (Entra docs, "federated identity credential considerations"). */
const FIC_MAX_PER_IDENTITY = 20;
const FIC_FIELD_MAX = 600;
/** azure.md §3.2: `federatedIdentityCredentialResourceName` pattern in @azure/arm-msi models/parameters.js. */
const FIC_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/;
/** Regions where UAMI FICs were not supported at doc time (azure.md §3.3). */
const FIC_UNSUPPORTED_REGIONS = new Set(['malaysiasouth', 'newzealandnorth']);
const DEFAULT_AUDIENCE = 'api://AzureADTokenExchange';

/** ARM audiences of the public cloud (the modular AKS client asks for https://management.azure.com/.default whatever its endpoint). */
const PUBLIC_ARM_AUDIENCES = ['https://management.core.windows.net/', 'https://management.core.windows.net', 'https://management.azure.com/', 'https://management.azure.com'];

const TOKEN_LIFETIME_S = 3599;
const WRITE_METHODS = new Set(['PUT', 'PATCH', 'DELETE', 'POST']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Regions ARM accepts for a user-assigned identity (normalised: lower case, no spaces). A subset of the public cloud. */
const REGIONS = [
  'australiacentral', 'australiaeast', 'australiasoutheast', 'brazilsouth', 'canadacentral', 'canadaeast', 'centralindia',
  'centralus', 'eastasia', 'eastus', 'eastus2', 'francecentral', 'germanywestcentral', 'israelcentral', 'italynorth',
  'japaneast', 'japanwest', 'koreacentral', 'koreasouth', 'malaysiasouth', 'mexicocentral', 'newzealandnorth', 'northcentralus',
  'northeurope', 'norwayeast', 'polandcentral', 'qatarcentral', 'southafricanorth', 'southcentralus', 'southeastasia',
  'southindia', 'spaincentral', 'swedencentral', 'switzerlandnorth', 'uaenorth', 'uksouth', 'ukwest', 'westcentralus',
  'westeurope', 'westindia', 'westus', 'westus2', 'westus3',
];

interface BuiltInRole {
  roleName: string;
  guid: string;
  description: string;
  actions: string[];
  notActions?: string[];
  dataActions?: string[];
}

/**
 * Built-in role definitions (GUIDs are the same in every tenant; checked against public templates that
 * hard-code them). Permissions are abridged to their main actions.
 */
export const BUILT_IN_ROLES: readonly BuiltInRole[] = [
  { roleName: 'Owner', guid: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.', actions: ['*'] },
  {
    roleName: 'Contributor',
    guid: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    description: 'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.',
    actions: ['*'],
    notActions: ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write', 'Microsoft.Authorization/elevateAccess/Action', 'Microsoft.Blueprint/blueprintAssignments/write', 'Microsoft.Blueprint/blueprintAssignments/delete', 'Microsoft.Compute/galleries/share/action'],
  },
  { roleName: 'Reader', guid: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', description: 'View all resources, but does not allow you to make any changes.', actions: ['*/read'] },
  { roleName: 'User Access Administrator', guid: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9', description: 'Lets you manage user access to Azure resources.', actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'] },
  {
    roleName: 'Role Based Access Control Administrator',
    guid: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
    description: 'Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.',
    actions: ['Microsoft.Authorization/roleAssignments/write', 'Microsoft.Authorization/roleAssignments/delete', '*/read', 'Microsoft.Support/*'],
  },
  { roleName: 'Managed Identity Operator', guid: 'f1a07417-d97a-45cb-824c-7a7467783830', description: 'Read and Assign User Assigned Identity', actions: ['Microsoft.ManagedIdentity/userAssignedIdentities/*/read', 'Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action', 'Microsoft.Authorization/*/read', 'Microsoft.Insights/alertRules/*', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.Resources/deployments/*', 'Microsoft.Support/*'] },
  { roleName: 'Managed Identity Contributor', guid: 'e40ec5ca-96e0-45a2-b4ff-59039f2c2b59', description: 'Create, Read, Update, and Delete User Assigned Identity', actions: ['Microsoft.ManagedIdentity/userAssignedIdentities/read', 'Microsoft.ManagedIdentity/userAssignedIdentities/write', 'Microsoft.ManagedIdentity/userAssignedIdentities/delete', 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read', 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write', 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete', 'Microsoft.Authorization/*/read', 'Microsoft.Resources/subscriptions/resourceGroups/read'] },
  { roleName: 'Storage Blob Data Reader', guid: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', description: 'Allows for read access to Azure Storage blob containers and data', actions: ['Microsoft.Storage/storageAccounts/blobServices/containers/read', 'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'], dataActions: ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'] },
  { roleName: 'Storage Blob Data Contributor', guid: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe', description: 'Allows for read, write and delete access to Azure Storage blob containers and data', actions: ['Microsoft.Storage/storageAccounts/blobServices/containers/delete', 'Microsoft.Storage/storageAccounts/blobServices/containers/read', 'Microsoft.Storage/storageAccounts/blobServices/containers/write', 'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'], dataActions: ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete', 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read', 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write', 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action', 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'] },
  { roleName: 'Storage Blob Data Owner', guid: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', description: 'Allows for full access to Azure Storage blob containers and data, including assigning POSIX access control.', actions: ['Microsoft.Storage/storageAccounts/blobServices/containers/*', 'Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action'], dataActions: ['Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*'] },
  { roleName: 'Storage Queue Data Contributor', guid: '974c5e8b-45b9-4653-ba55-5f855dd0fb88', description: 'Allows for read, write, and delete access to Azure Storage queues and queue messages', actions: ['Microsoft.Storage/storageAccounts/queueServices/queues/delete', 'Microsoft.Storage/storageAccounts/queueServices/queues/read', 'Microsoft.Storage/storageAccounts/queueServices/queues/write'], dataActions: ['Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete', 'Microsoft.Storage/storageAccounts/queueServices/queues/messages/read', 'Microsoft.Storage/storageAccounts/queueServices/queues/messages/write', 'Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action'] },
  { roleName: 'Key Vault Reader', guid: '21090545-7ca7-4776-b22c-e363652d74d2', description: "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.", actions: ['Microsoft.Authorization/*/read', 'Microsoft.Insights/alertRules/*', 'Microsoft.Resources/deployments/*', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.Support/*', 'Microsoft.KeyVault/checkNameAvailability/read', 'Microsoft.KeyVault/deletedVaults/read', 'Microsoft.KeyVault/locations/*/read', 'Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/operations/read'], dataActions: ['Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'] },
  { roleName: 'Key Vault Secrets User', guid: '4633458b-17de-408a-b874-0445c86b69e6', description: "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.", actions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'] },
  { roleName: 'Key Vault Secrets Officer', guid: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', description: "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.", actions: ['Microsoft.Authorization/*/read', 'Microsoft.Insights/alertRules/*', 'Microsoft.Resources/deployments/*', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.Support/*', 'Microsoft.KeyVault/checkNameAvailability/read', 'Microsoft.KeyVault/deletedVaults/read', 'Microsoft.KeyVault/locations/*/read', 'Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/operations/read'], dataActions: ['Microsoft.KeyVault/vaults/secrets/*'] },
  { roleName: 'Key Vault Crypto User', guid: '12338af0-0e69-4776-bea7-57ae8d297424', description: "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access control' permission model.", actions: [], dataActions: ['Microsoft.KeyVault/vaults/keys/read', 'Microsoft.KeyVault/vaults/keys/update/action', 'Microsoft.KeyVault/vaults/keys/backup/action', 'Microsoft.KeyVault/vaults/keys/encrypt/action', 'Microsoft.KeyVault/vaults/keys/decrypt/action', 'Microsoft.KeyVault/vaults/keys/wrap/action', 'Microsoft.KeyVault/vaults/keys/unwrap/action', 'Microsoft.KeyVault/vaults/keys/sign/action', 'Microsoft.KeyVault/vaults/keys/verify/action'] },
  { roleName: 'Key Vault Certificate User', guid: 'db79e9a7-68ee-4b58-9aeb-b90e7c24fcba', description: "Read entire certificate contents including secret and key portion. Only works for key vaults that use the 'Azure role-based access control' permission model.", actions: [], dataActions: ['Microsoft.KeyVault/vaults/certificates/read', 'Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action', 'Microsoft.KeyVault/vaults/keys/read'] },
  { roleName: 'AcrPull', guid: '7f951dda-4ed3-4680-a7ca-43fe172d538d', description: 'acr pull', actions: ['Microsoft.ContainerRegistry/registries/pull/read'] },
  { roleName: 'AcrPush', guid: '8311e382-0749-4cb8-b61a-304f252e45ec', description: 'acr push', actions: ['Microsoft.ContainerRegistry/registries/pull/read', 'Microsoft.ContainerRegistry/registries/push/write'] },
  { roleName: 'Azure Service Bus Data Sender', guid: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39', description: 'Allows for send access to Azure Service Bus resources.', actions: ['Microsoft.ServiceBus/*/queues/read', 'Microsoft.ServiceBus/*/topics/read', 'Microsoft.ServiceBus/*/topics/subscriptions/read'], dataActions: ['Microsoft.ServiceBus/*/send/action'] },
  { roleName: 'Azure Service Bus Data Receiver', guid: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0', description: 'Allows for receive access to Azure Service Bus resources.', actions: ['Microsoft.ServiceBus/*/queues/read', 'Microsoft.ServiceBus/*/topics/read', 'Microsoft.ServiceBus/*/topics/subscriptions/read'], dataActions: ['Microsoft.ServiceBus/*/receive/action'] },
];

const ROLE_BY_GUID = new Map(BUILT_IN_ROLES.map((r) => [r.guid, r]));
const ROLE_BY_NAME = new Map(BUILT_IN_ROLES.map((r) => [r.roleName, r]));
/** A fixed date for built-in definitions (real ones carry dates from years ago). */
const BUILT_IN_DATE = '2015-02-02T21:55:09.8806423Z';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** An ARM error: `{"error":{"code","message"}}` with an HTTP status. */
class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** An Entra (login) error: `{"error","error_description":"AADSTSnnn: …\r\nTrace ID…","error_codes":[n],…}`. */
class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    readonly description: string,
  ) {
    super(description);
  }
}

/** ARM's generic text for a missing tracked resource (quoted in the brief and many threads; aka.ms link included). */
function resourceNotFound(type: string, name: string, resourceGroup: string): ArmError {
  return new ArmError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
}

function resourceGroupNotFound(name: string): ArmError {
  return new ArmError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
}

function subscriptionNotFound(sub: string): ArmError {
  return new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const execFileP = promisify(execFile);
const generateKeyPairP = promisify(generateKeyPair);

/** A GUID derived from a seed: the same seed gives the same id on every run (stable golden output). */
function guidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  const variant = ((parseInt(h.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** ARM normalises locations: `East US` → `eastus`. */
function normalizeLocation(loc: string): string {
  return loc.replace(/\s+/g, '').toLowerCase();
}

/** Entra's timestamp format in error bodies: `2023-05-06 06:03:00Z`. */
function entraTimestamp(d = new Date()): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(v)) return out;
  for (const [k, val] of Object.entries(v)) out[k] = typeof val === 'string' ? val : String(val);
  return out;
}

/** Splits a URL path into decoded segments, dropping empty ones (`//subscriptions` → `subscriptions`). */
function pathSegments(pathname: string): string[] {
  return pathname
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

function eqi(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

/** A scope as ARM writes it: `/seg/seg`; the tenant root is `/`. */
function scopeString(segs: string[]): string {
  return segs.length === 0 ? '/' : `/${segs.join('/')}`;
}

/** True when scope `a` is `b` or an ancestor of `b` (segment-wise, case-insensitive, as ARM compares scopes). */
function scopeCovers(a: string, b: string): boolean {
  const x = a.toLowerCase().replace(/\/+$/, '');
  const y = b.toLowerCase().replace(/\/+$/, '');
  return x === '' || x === y || y.startsWith(`${x}/`);
}

/** An OData string literal: `'it''s'` → `it's`. */
const ODATA_STRING = "'((?:[^']|'')*)'";
function odataString(s: string): string {
  return s.replace(/''/g, "'");
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A random client secret shaped like Entra's (three characters, `8Q~`, 34 more). */
function entraSecret(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-';
  const pick = (n: number): string =>
    Array.from(randomBytes(n))
      .map((b) => alphabet.charAt(b % alphabet.length))
      .join('');
  return `${pick(3)}8Q~${pick(34)}`;
}

// ---------------------------------------------------------------------------------------------
// TLS: a throw-away CA and a server certificate, made with the openssl CLI
// ---------------------------------------------------------------------------------------------

interface TlsMaterial {
  dir: string;
  caPath: string;
  ca: string;
  key: string;
  cert: string;
}

/**
 * EC P-256 keys (fast to generate). Our own config file, so no system openssl.cnf section can add
 * duplicate extensions. The server certificate carries SAN IP:127.0.0.1 and DNS:localhost, which is
 * what Node checks (it ignores the CN when a SAN is present).
 */
async function makeTls(): Promise<TlsMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'wid-azure-emu-'));
  try {
    const conf = join(dir, 'openssl.cnf');
    await writeFile(
      conf,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        '[dn]',
        'CN = wid azure emulator',
        '[ca_ext]',
        'basicConstraints = critical,CA:TRUE',
        'keyUsage = critical,keyCertSign,cRLSign',
        'subjectKeyIdentifier = hash',
        '[server_ext]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = serverAuth',
        'subjectAltName = IP:127.0.0.1,DNS:localhost',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
        '',
      ].join('\n'),
    );
    const run = (args: string[]): Promise<unknown> => execFileP('openssl', args, { cwd: dir, env: { ...process.env, OPENSSL_CONF: conf } });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await run(['req', '-config', conf, '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=wid azure emulator test CA', '-extensions', 'ca_ext']);
    await run(['req', '-config', conf, ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    await run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-out', 'server.pem', '-extfile', conf, '-extensions', 'server_ext']);
    const caPath = join(dir, 'ca.pem');
    return {
      dir,
      caPath,
      ca: await readFile(caPath, 'utf8'),
      key: await readFile(join(dir, 'server.key'), 'utf8'),
      cert: await readFile(join(dir, 'server.pem'), 'utf8'),
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

interface ResourceGroup {
  subscription: string;
  name: string;
  location: string;
}

interface Cluster {
  subscription: string;
  resourceGroup: string;
  name: string;
  location: string;
  issuer: string;
  oidcEnabled: boolean;
  workloadIdentityEnabled: boolean;
  kubernetesVersion: string;
  provisioningState: string;
}

interface Fic {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

interface Identity {
  subscription: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  clientId: string;
  principalId: string;
  /** Keyed by lower-cased name (ARM names are case-insensitive), in creation order. */
  fics: Map<string, Fic>;
}

interface RoleAssignment {
  name: string;
  /** As first written, `/subscriptions/…` (the tenant root is `/`). */
  scope: string;
  roleDefinitionId: string;
  roleGuid: string;
  principalId: string;
  principalType: string;
  description: string | null;
  condition: string | null;
  conditionVersion: string | null;
  delegatedManagedIdentityResourceId: string | null;
  createdOn: string;
  updatedOn: string;
  createdBy: string | null;
}

class State {
  /** Lower-cased subscription ids that exist. */
  subscriptions = new Set<string>();
  /** Keyed by `sub/rg`, lower-cased. */
  groups = new Map<string, ResourceGroup>();
  /** Keyed by `sub/rg/name`, lower-cased. */
  clusters = new Map<string, Cluster>();
  /** Keyed by `sub/rg/name`, lower-cased. */
  identities = new Map<string, Identity>();
  /** Keyed by the lower-cased assignment id. */
  assignments = new Map<string, RoleAssignment>();
  /** Principals seeded into the directory, with their type. */
  principals = new Map<string, string>();
  /** How often a name was created, so a re-created identity gets new ids (as in Azure) yet runs stay reproducible. */
  generations = new Map<string, number>();
}

function key(...parts: string[]): string {
  return parts.join('/').toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Destroy the socket instead of answering (a status-0 fault, or dropAnswerNext). */
  drop?: boolean;
}

/** Thrown for a status-0 failNext fault: the request gets no answer at all. */
class DroppedConnection extends Error {}

interface Caller {
  oid: string;
  appid: string;
}

interface ArmContext {
  method: string;
  segs: string[];
  path: string;
  query: Record<string, string>;
  body: unknown;
  rawBody: string;
  origin: string;
  apiVersion: string;
  caller: Caller;
}

/** What an ARM path addresses. Keywords are matched case-insensitively, as ARM does. */
type ArmRoute =
  | { kind: 'subscription'; sub: string }
  | { kind: 'resourceGroup'; sub: string; rg: string }
  | { kind: 'cluster'; sub: string; rg: string; name: string }
  | { kind: 'identities'; sub: string; rg: string | undefined }
  | { kind: 'identity'; sub: string; rg: string; name: string }
  | { kind: 'fics'; sub: string; rg: string; identity: string }
  | { kind: 'fic'; sub: string; rg: string; identity: string; name: string }
  | { kind: 'roleDefinitions'; scope: string[] }
  | { kind: 'roleDefinition'; scope: string[]; id: string }
  | { kind: 'roleAssignments'; scope: string[] }
  | { kind: 'roleAssignment'; scope: string[]; name: string }
  | { kind: 'unknown' };

function parseArmPath(segs: string[]): ArmRoute {
  // Authorization resources hang off any scope: find the last `providers/Microsoft.Authorization`.
  for (let i = segs.length - 2; i >= 0; i--) {
    if (eqi(segs[i], 'providers') && eqi(segs[i + 1], 'Microsoft.Authorization')) {
      const scope = segs.slice(0, i);
      const rest = segs.slice(i + 2);
      const [type, id] = rest;
      if (rest.length === 1 && eqi(type, 'roleDefinitions')) return { kind: 'roleDefinitions', scope };
      if (rest.length === 2 && eqi(type, 'roleDefinitions') && id !== undefined) return { kind: 'roleDefinition', scope, id };
      if (rest.length === 1 && eqi(type, 'roleAssignments')) return { kind: 'roleAssignments', scope };
      if (rest.length === 2 && eqi(type, 'roleAssignments') && id !== undefined) return { kind: 'roleAssignment', scope, name: id };
      return { kind: 'unknown' };
    }
  }
  const [s0, sub, s2, s3, s4, ns, type, name, child, childName] = segs;
  if (!eqi(s0, 'subscriptions') || sub === undefined) return { kind: 'unknown' };
  if (segs.length === 2) return { kind: 'subscription', sub };
  if (eqi(s2, 'providers') && segs.length === 5 && eqi(s3, 'Microsoft.ManagedIdentity') && eqi(s4, 'userAssignedIdentities')) {
    return { kind: 'identities', sub, rg: undefined };
  }
  if (!eqi(s2, 'resourceGroups') || s3 === undefined) return { kind: 'unknown' };
  const rg = s3;
  if (segs.length === 4) return { kind: 'resourceGroup', sub, rg };
  if (!eqi(s4, 'providers') || ns === undefined || type === undefined) return { kind: 'unknown' };
  if (eqi(ns, 'Microsoft.ContainerService') && eqi(type, 'managedClusters') && name !== undefined && segs.length === 8) {
    return { kind: 'cluster', sub, rg, name };
  }
  if (eqi(ns, 'Microsoft.ManagedIdentity') && eqi(type, 'userAssignedIdentities')) {
    if (segs.length === 7) return { kind: 'identities', sub, rg };
    if (name === undefined) return { kind: 'unknown' };
    if (segs.length === 8) return { kind: 'identity', sub, rg, name };
    if (eqi(child, 'federatedIdentityCredentials')) {
      if (segs.length === 9) return { kind: 'fics', sub, rg, identity: name };
      if (segs.length === 10 && childName !== undefined) return { kind: 'fic', sub, rg, identity: name, name: childName };
    }
  }
  return { kind: 'unknown' };
}

/** The RBAC action a request needs, for AuthorizationFailed texts (`Microsoft.ManagedIdentity/userAssignedIdentities/write`). */
function actionFor(method: string, route: ArmRoute): string {
  const op = method === 'DELETE' ? 'delete' : method === 'GET' || method === 'HEAD' ? 'read' : 'write';
  switch (route.kind) {
    case 'subscription':
      return 'Microsoft.Resources/subscriptions/read';
    case 'resourceGroup':
      return `Microsoft.Resources/subscriptions/resourceGroups/${op}`;
    case 'cluster':
      return `${T_CLUSTER}/${op}`;
    case 'identities':
    case 'identity':
      return `${T_IDENTITY}/${op}`;
    case 'fics':
    case 'fic':
      return `${T_FIC}/${op}`;
    case 'roleDefinitions':
    case 'roleDefinition':
      return `${T_ROLE_DEFINITION}/${op}`;
    case 'roleAssignments':
    case 'roleAssignment':
      return `${T_ROLE_ASSIGNMENT}/${op}`;
    default:
      return `*/${op}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------

interface QueuedFailure {
  method: string;
  pathRegex: RegExp;
  status: number;
  code: string;
  message: string;
  remaining: number;
}

interface Throttle {
  pathRegex: RegExp;
  remaining: number;
  retryAfterSeconds: number;
}

interface IssuedToken {
  aud: string;
  expiresAt: number;
  oid: string;
  appid: string;
}

class AzureEmulatorImpl implements AzureEmulator {
  url = '';
  caPath: string;
  ca: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  servicePrincipalObjectId: string;
  log: AzureRequestRecord[] = [];
  faults: AzureFaults;
  onResponse?: (record: AzureRequestRecord) => void;

  private port = 0;
  private state = new State();
  private server: Server | undefined;
  private failures: QueuedFailure[] = [];
  private answerDrops: Array<{ method: string; pathRegex: RegExp; remaining: number }> = [];
  private throttles: Throttle[] = [];
  private denies: Array<{ method: string; pathRegex: RegExp }> = [];
  private ficConflicts = 0;
  private gathers: Gathering[] = [];
  /** Identities (lower-cased keys) with a federated-credential write in flight. */
  private inflight = new Set<string>();
  private tokens = new Map<string, IssuedToken>();
  private readonly kid: string;

  private constructor(
    private readonly tls: TlsMaterial,
    private readonly signingKey: KeyObject,
    private readonly publicJwk: Record<string, unknown>,
    opts: StartAzureEmulatorOptions,
  ) {
    this.caPath = tls.caPath;
    this.ca = tls.ca;
    this.tenantId = opts.tenantId ?? DEFAULT_TENANT;
    this.clientId = opts.clientId ?? DEFAULT_CLIENT;
    this.clientSecret = opts.clientSecret ?? entraSecret();
    this.servicePrincipalObjectId = guidFrom(`sp-object-id:${this.tenantId}:${this.clientId}`);
    this.kid = b64url(createHash('sha1').update(JSON.stringify(publicJwk)).digest());
    const self = this;
    const faults: AzureFaults = {
      latencyMs: 0,
      failNext(method, pathRegex, status, code, message, times = 1) {
        self.failures.push({ method: method.toUpperCase(), pathRegex, status, code, message, remaining: times });
      },
      dropAnswerNext(method, pathRegex, times = 1) {
        self.answerDrops.push({ method: method.toUpperCase(), pathRegex, remaining: times });
      },
      throttle(pathRegex, times, retryAfterSeconds = 1) {
        self.throttles.push({ pathRegex, remaining: times, retryAfterSeconds });
      },
      deny(method, pathRegex) {
        self.denies.push({ method: method.toUpperCase(), pathRegex });
      },
      ficConflict(times = 1) {
        self.ficConflicts += times;
      },
      gather(method, pathRegex, count, timeoutMs = 5000) {
        self.gathers.push({ method: method.toUpperCase(), pathRegex, count, timeoutMs, waiting: [] });
      },
      clear() {
        self.failures = [];
        self.answerDrops = [];
        self.throttles = [];
        self.denies = [];
        self.ficConflicts = 0;
        for (const g of [...self.gathers]) self.release(g);
        faults.latencyMs = 0;
        faults.latencyExcept = undefined;
      },
    };
    this.faults = faults;
  }

  static async start(opts: StartAzureEmulatorOptions): Promise<AzureEmulator> {
    const [tls, keys] = await Promise.all([makeTls(), generateKeyPairP('rsa', { modulusLength: 2048 })]);
    const jwk = keys.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
    const emu = new AzureEmulatorImpl(tls, keys.privateKey, jwk, opts);
    try {
      await emu.listen();
    } catch (e) {
      await rm(tls.dir, { recursive: true, force: true });
      throw e;
    }
    return emu;
  }

  private async listen(): Promise<void> {
    const server = createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // Only reachable on a broken socket; never leave the client hanging.
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: { code: 'InternalServerError', message: `azure emulator: ${String(e)}` } }));
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.url = `https://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The SDKs keep connections alive; close() alone would wait for them to idle out.
        server.closeAllConnections();
      });
    }
    await rm(this.tls.dir, { recursive: true, force: true });
  }

  writes(): AzureRequestRecord[] {
    return this.log.filter((r) => r.write);
  }

  reset(): void {
    this.state = new State();
    this.log.length = 0;
    // Issued tokens stay valid: a credential shared across tests keeps its cached token, as MSAL would
    // against a real tenant whose resources were wiped.
    this.inflight.clear();
    this.faults.clear();
  }

  // --- seeding and inspection -----------------------------------------------------------------

  seedResourceGroup(g: SeedResourceGroupInput): string {
    this.state.subscriptions.add(g.subscription.toLowerCase());
    const k = key(g.subscription, g.name);
    const existing = this.state.groups.get(k);
    if (!existing) this.state.groups.set(k, { subscription: g.subscription, name: g.name, location: normalizeLocation(g.location ?? 'eastus') });
    return `/subscriptions/${g.subscription}/resourceGroups/${existing?.name ?? g.name}`;
  }

  seedCluster(c: SeedClusterInput): SeededCluster {
    this.seedResourceGroup({ subscription: c.subscription, name: c.resourceGroup, location: c.location });
    const location = normalizeLocation(c.location);
    const cluster: Cluster = {
      subscription: c.subscription,
      resourceGroup: this.groupName(c.subscription, c.resourceGroup),
      name: c.name,
      location,
      issuer: c.issuer ?? `https://${location}.oic.prod-aks.azure.com/${this.tenantId}/${guidFrom(`issuer:${key(c.subscription, c.resourceGroup, c.name)}`)}/`,
      oidcEnabled: c.oidcEnabled ?? true,
      workloadIdentityEnabled: c.workloadIdentityEnabled ?? true,
      kubernetesVersion: c.kubernetesVersion ?? '1.31.5',
      provisioningState: c.provisioningState ?? 'Succeeded',
    };
    this.state.clusters.set(key(c.subscription, c.resourceGroup, c.name), cluster);
    return { id: this.clusterJson(cluster).id, issuerURL: cluster.oidcEnabled ? cluster.issuer : undefined };
  }

  seedIdentity(i: SeedIdentityInput): SeededIdentity {
    this.seedResourceGroup({ subscription: i.subscription, name: i.resourceGroup, location: i.location });
    const identity = this.upsertIdentity(i.subscription, i.resourceGroup, i.name, normalizeLocation(i.location), { ...(i.tags ?? {}) });
    return { id: this.identityId(identity), clientId: identity.clientId, principalId: identity.principalId, tenantId: this.tenantId };
  }

  seedFederatedCredential(identityId: string, fic: SeedFederatedCredentialInput): void {
    const identity = this.identityById(identityId);
    if (!identity) throw new Error(`azure emulator: seedFederatedCredential: no identity ${identityId}`);
    identity.fics.set(fic.name.toLowerCase(), { name: fic.name, issuer: fic.issuer, subject: fic.subject, audiences: [...(fic.audiences ?? [DEFAULT_AUDIENCE])] });
  }

  seedRoleAssignment(a: SeedRoleAssignmentInput): string {
    const scopeSegs = pathSegments(a.scope);
    const scope = scopeString(scopeSegs);
    const sub = eqi(scopeSegs[0], 'subscriptions') ? scopeSegs[1] : undefined;
    let roleDefinitionId = a.roleDefinitionId;
    if (roleDefinitionId === undefined) {
      const role = a.roleName === undefined ? undefined : ROLE_BY_NAME.get(a.roleName);
      if (!role) throw new Error(`azure emulator: seedRoleAssignment: unknown role ${a.roleName ?? '(none given)'}`);
      roleDefinitionId = this.roleDefinitionIdFor(sub, role.guid);
    }
    const roleGuid = (roleDefinitionId.split('/').pop() ?? '').toLowerCase();
    const name = a.name ?? randomUUID();
    const now = new Date().toISOString();
    const ra: RoleAssignment = {
      name,
      scope,
      roleDefinitionId,
      roleGuid,
      principalId: a.principalId,
      principalType: a.principalType ?? 'ServicePrincipal',
      description: a.description ?? null,
      condition: null,
      conditionVersion: null,
      delegatedManagedIdentityResourceId: null,
      createdOn: now,
      updatedOn: now,
      createdBy: this.servicePrincipalObjectId,
    };
    const id = this.assignmentId(ra);
    this.state.assignments.set(id.toLowerCase(), ra);
    return id;
  }

  seedPrincipal(principalId: string, principalType = 'User'): void {
    this.state.principals.set(principalId.toLowerCase(), principalType);
  }

  getIdentity(id: string): ArmIdentity | undefined {
    const identity = this.identityById(id);
    return identity ? this.identityJson(identity, '2024-11-30') : undefined;
  }

  listFederatedCredentials(identityId: string): ArmFederatedCredential[] {
    const identity = this.identityById(identityId);
    return identity ? [...identity.fics.values()].map((f) => this.ficJson(identity, f)) : [];
  }

  listRoleAssignments(): ArmRoleAssignment[] {
    return [...this.state.assignments.values()].map((a) => this.assignmentJson(a));
  }

  issueToken(): string {
    return this.mintToken({ aud: this.url, appid: this.clientId, oid: this.servicePrincipalObjectId, appidacr: '1' });
  }

  tokenCredential(): EmulatorTokenCredential {
    return {
      getToken: async () => ({ token: this.issueToken(), expiresOnTimestamp: Date.now() + TOKEN_LIFETIME_S * 1000, tokenType: 'Bearer' }),
    };
  }

  // --- shared state helpers ---------------------------------------------------------------------

  private groupName(sub: string, rg: string): string {
    return this.state.groups.get(key(sub, rg))?.name ?? rg;
  }

  private nextGeneration(k: string): number {
    const n = (this.state.generations.get(k) ?? 0) + 1;
    this.state.generations.set(k, n);
    return n;
  }

  /** Creates (new ids) or replaces (ids kept, tags replaced wholesale) an identity. */
  private upsertIdentity(sub: string, rg: string, name: string, location: string, tags: Record<string, string>): Identity {
    const k = key(sub, rg, name);
    const existing = this.state.identities.get(k);
    if (existing) {
      existing.tags = tags;
      existing.location = location;
      return existing;
    }
    const generation = this.nextGeneration(`identity:${k}`);
    const identity: Identity = {
      subscription: sub,
      resourceGroup: this.groupName(sub, rg),
      name,
      location,
      tags,
      clientId: guidFrom(`client-id:${this.tenantId}:${k}#${generation}`),
      principalId: guidFrom(`principal-id:${this.tenantId}:${k}#${generation}`),
      fics: new Map(),
    };
    this.state.identities.set(k, identity);
    return identity;
  }

  /**
   * MSI answers ids with a lower-case `resourcegroups` segment (`az identity show` prints it that way;
   * hashicorp/terraform-provider-azurerm#24352 trips over it). Compare ids case-insensitively.
   */
  private identityId(i: Identity): string {
    return `/subscriptions/${i.subscription}/resourcegroups/${i.resourceGroup}/providers/${T_IDENTITY}/${i.name}`;
  }

  private identityById(id: string): Identity | undefined {
    const segs = pathSegments(id);
    const route = parseArmPath(segs);
    if (route.kind !== 'identity') return undefined;
    return this.state.identities.get(key(route.sub, route.rg, route.name));
  }

  private roleDefinitionIdFor(sub: string | undefined, guid: string): string {
    return sub === undefined ? `/providers/${T_ROLE_DEFINITION}/${guid}` : `/subscriptions/${sub}/providers/${T_ROLE_DEFINITION}/${guid}`;
  }

  private assignmentId(a: RoleAssignment): string {
    return `${a.scope === '/' ? '' : a.scope}/providers/${T_ROLE_ASSIGNMENT}/${a.name}`;
  }

  /** Known directory objects: the signed-in service principal, live identities' principals, seeded principals. */
  private principalTypeOf(principalId: string): string | undefined {
    const id = principalId.toLowerCase();
    if (id === this.servicePrincipalObjectId.toLowerCase()) return 'ServicePrincipal';
    const seeded = this.state.principals.get(id);
    if (seeded !== undefined) return seeded;
    for (const i of this.state.identities.values()) if (i.principalId.toLowerCase() === id) return 'ServicePrincipal';
    return undefined;
  }

  // --- JSON shapes ------------------------------------------------------------------------------

  /**
   * azure.md §3.2 (`Identity` = TrackedResource + properties.{tenantId, principalId, clientId};
   * `isolationScope` is new in api-version 2024-11-30, so older versions do not see it).
   */
  private identityJson(i: Identity, apiVersion: string): ArmIdentity {
    const properties: ArmIdentity['properties'] = { tenantId: this.tenantId, principalId: i.principalId, clientId: i.clientId };
    return {
      id: this.identityId(i),
      name: i.name,
      type: T_IDENTITY,
      location: i.location,
      tags: { ...i.tags },
      properties: apiVersion >= '2024-11-30' ? { isolationScope: 'None', ...properties } : properties,
    };
  }

  private ficJson(i: Identity, f: Fic): ArmFederatedCredential {
    return {
      id: `${this.identityId(i)}/federatedIdentityCredentials/${f.name}`,
      name: f.name,
      type: T_FIC,
      properties: { issuer: f.issuer, subject: f.subject, audiences: [...f.audiences] },
    };
  }

  /**
   * A managed cluster as AKS answers GET (azure.md §3.4): `properties.oidcIssuerProfile.{enabled,issuerURL}`
   * and `properties.securityProfile.workloadIdentity.enabled` are what wid reads; the rest is there so the
   * modular client's deserialiser sees a realistic document. AKS ids use `resourcegroups` and the type
   * `Microsoft.ContainerService/ManagedClusters` (as `az aks show` prints them).
   */
  private clusterJson(c: Cluster): { id: string } & Record<string, unknown> {
    const k = key(c.subscription, c.resourceGroup, c.name);
    const nodeResourceGroup = `MC_${c.resourceGroup}_${c.name}_${c.location}`;
    const fqdn = `${c.name}-dns-${guidFrom(`fqdn:${k}`).slice(0, 8)}.hcp.${c.location}.azmk8s.io`;
    return {
      id: `/subscriptions/${c.subscription}/resourcegroups/${c.resourceGroup}/providers/Microsoft.ContainerService/managedClusters/${c.name}`,
      location: c.location,
      name: c.name,
      type: 'Microsoft.ContainerService/ManagedClusters',
      sku: { name: 'Base', tier: 'Free' },
      identity: { type: 'SystemAssigned', principalId: guidFrom(`cluster-principal:${k}`), tenantId: this.tenantId },
      properties: {
        provisioningState: c.provisioningState,
        powerState: { code: 'Running' },
        kubernetesVersion: c.kubernetesVersion,
        currentKubernetesVersion: c.kubernetesVersion,
        dnsPrefix: `${c.name}-dns`,
        fqdn,
        azurePortalFQDN: fqdn.replace('.hcp.', '.portal.hcp.'),
        agentPoolProfiles: [
          {
            name: 'nodepool1',
            count: 3,
            vmSize: 'Standard_DS2_v2',
            osDiskSizeGB: 128,
            osDiskType: 'Managed',
            kubeletDiskType: 'OS',
            maxPods: 110,
            type: 'VirtualMachineScaleSets',
            provisioningState: 'Succeeded',
            powerState: { code: 'Running' },
            orchestratorVersion: c.kubernetesVersion,
            currentOrchestratorVersion: c.kubernetesVersion,
            mode: 'System',
            osType: 'Linux',
            osSKU: 'Ubuntu',
            enableFIPS: false,
          },
        ],
        servicePrincipalProfile: { clientId: 'msi' },
        nodeResourceGroup,
        enableRBAC: true,
        supportPlan: 'KubernetesOfficial',
        networkProfile: {
          networkPlugin: 'azure',
          networkPluginMode: 'overlay',
          networkPolicy: 'none',
          loadBalancerSku: 'standard',
          podCidr: '10.244.0.0/16',
          serviceCidr: '10.0.0.0/16',
          dnsServiceIP: '10.0.0.10',
          outboundType: 'loadBalancer',
          podCidrs: ['10.244.0.0/16'],
          serviceCidrs: ['10.0.0.0/16'],
          ipFamilies: ['IPv4'],
        },
        maxAgentPools: 100,
        identityProfile: {
          kubeletidentity: {
            resourceId: `/subscriptions/${c.subscription}/resourcegroups/${nodeResourceGroup}/providers/${T_IDENTITY}/${c.name}-agentpool`,
            clientId: guidFrom(`kubelet-client:${k}`),
            objectId: guidFrom(`kubelet-object:${k}`),
          },
        },
        autoUpgradeProfile: { upgradeChannel: 'none', nodeOSUpgradeChannel: 'NodeImage' },
        disableLocalAccounts: false,
        securityProfile: c.workloadIdentityEnabled ? { workloadIdentity: { enabled: true } } : {},
        oidcIssuerProfile: c.oidcEnabled ? { enabled: true, issuerURL: c.issuer } : { enabled: false },
      },
    };
  }

  /** azure.md §3.5: wire body `{properties:{roleDefinitionId, principalId, principalType, scope, …}, id, type, name}`; absent optionals are null. */
  private assignmentJson(a: RoleAssignment): ArmRoleAssignment {
    return {
      id: this.assignmentId(a),
      name: a.name,
      type: T_ROLE_ASSIGNMENT,
      properties: {
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType,
        scope: a.scope,
        condition: a.condition,
        conditionVersion: a.conditionVersion,
        createdOn: a.createdOn,
        updatedOn: a.updatedOn,
        createdBy: a.createdBy,
        updatedBy: a.createdBy,
        delegatedManagedIdentityResourceId: a.delegatedManagedIdentityResourceId,
        description: a.description,
      },
    };
  }

  /**
   * Built-in definitions are reported with a subscription-level id at and below a subscription scope,
   * and with `/providers/…` at the tenant root (or a management group).
   */
  private roleDefinitionJson(role: BuiltInRole, sub: string | undefined): Record<string, unknown> {
    return {
      id: this.roleDefinitionIdFor(sub, role.guid),
      name: role.guid,
      type: T_ROLE_DEFINITION,
      properties: {
        roleName: role.roleName,
        type: 'BuiltInRole',
        description: role.description,
        assignableScopes: ['/'],
        permissions: [{ actions: [...role.actions], notActions: [...(role.notActions ?? [])], dataActions: [...(role.dataActions ?? [])], notDataActions: [] }],
        createdOn: BUILT_IN_DATE,
        updatedOn: BUILT_IN_DATE,
        createdBy: null,
        updatedBy: null,
      },
    };
  }

  // --- tokens -------------------------------------------------------------------------------------

  /**
   * An RS256 JWT shaped like an Entra v1 access token for ARM (ARM accepts v1 tokens: iss
   * `https://sts.windows.net/{tid}/`). The key is published at `/{tenant}/discovery/v2.0/keys`. ARM here
   * accepts only tokens this emulator minted (it looks them up; it does not verify signatures).
   */
  private mintToken(c: { aud: string; appid: string; oid: string; appidacr: string; extra?: Record<string, unknown> }): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5t: this.kid, kid: this.kid };
    const payload = {
      aud: c.aud,
      iss: `https://sts.windows.net/${this.tenantId}/`,
      iat: now,
      nbf: now,
      exp: now + TOKEN_LIFETIME_S,
      aio: b64url(randomBytes(24)),
      appid: c.appid,
      appidacr: c.appidacr,
      idp: `https://sts.windows.net/${this.tenantId}/`,
      idtyp: 'app',
      oid: c.oid,
      rh: `0.${b64url(randomBytes(30))}.`,
      sub: c.oid,
      tid: this.tenantId,
      uti: b64url(randomBytes(16)),
      ver: '1.0',
      ...(c.extra ?? {}),
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(this.signingKey);
    const token = `${signingInput}.${b64url(signature)}`;
    this.tokens.set(token, { aud: c.aud, expiresAt: (now + TOKEN_LIFETIME_S) * 1000, oid: c.oid, appid: c.appid });
    return token;
  }

  /** Audiences ARM here accepts: the public cloud's and this server's own (127.0.0.1 or localhost, with or without `/`). */
  private armAudienceAllowed(aud: string): boolean {
    const a = aud.replace(/\/+$/, '').toLowerCase();
    const own = [`https://127.0.0.1:${this.port}`, `https://localhost:${this.port}`];
    return own.includes(a) || PUBLIC_ARM_AUDIENCES.some((p) => p.replace(/\/+$/, '') === a);
  }

  // --- request handling -----------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    // Concatenate rather than resolve: `//subscriptions/…` (sent for a scope with a leading slash) would
    // otherwise parse as a protocol-relative URL with host `subscriptions`.
    const url = new URL(`https://127.0.0.1${req.url ?? '/'}`);
    const segs = pathSegments(url.pathname);
    const path = `/${segs.join('/')}`;
    const method = (req.method ?? 'GET').toUpperCase();
    const query = Object.fromEntries(url.searchParams);
    const kind = classify(method, segs);
    const record: AzureRequestRecord = { method, path, query, status: 0, write: kind === 'arm' && WRITE_METHODS.has(method), kind };
    this.log.push(record);
    const origin = `https://${req.headers.host ?? `127.0.0.1:${this.port}`}`;
    const requestId = randomUUID();
    // ARM echoes a caller's x-ms-correlation-request-id; Entra uses MSAL's client-request-id (sent in the query string).
    const correlationId = headerValue(req.headers, 'x-ms-correlation-request-id') ?? headerValue(req.headers, 'client-request-id') ?? query['client-request-id'] ?? randomUUID();

    let reply: Reply;
    try {
      if (kind === 'arm') {
        if (rawBody !== '') record.body = parseJsonOr(rawBody);
        reply = await this.handleArm(req, { method, segs, path, query, rawBody, origin });
      } else {
        reply = await this.handleAuthority(req, { method, segs, path, query, rawBody, origin, record }, correlationId);
      }
    } catch (e) {
      if (!(e instanceof DroppedConnection)) throw e;
      reply = { status: 0, drop: true };
    }
    if (reply.drop) {
      // No answer: the client sees the connection reset (a network error), whether or not the request was handled.
      record.status = 0;
      req.socket.destroy();
      this.onResponse?.(record);
      return;
    }
    record.status = reply.status;
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
    const headers: Record<string, string> = {
      'Cache-Control': 'no-cache',
      Pragma: 'no-cache',
      Expires: '-1',
      'x-ms-request-id': requestId,
      'x-ms-correlation-request-id': correlationId,
      'x-ms-routing-request-id': `EMULATOR:${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}Z:${requestId}`,
      'X-Content-Type-Options': 'nosniff',
      ...(text === '' ? {} : { 'Content-Type': 'application/json; charset=utf-8' }),
      ...(reply.headers ?? {}),
      'Content-Length': String(Buffer.byteLength(text)),
    };
    const clientRequestId = headerValue(req.headers, 'x-ms-client-request-id');
    if (clientRequestId !== undefined) headers['x-ms-client-request-id'] = clientRequestId;
    res.writeHead(reply.status, headers);
    res.end(text);
    this.onResponse?.(record);
  }

  private async delay(path: string): Promise<void> {
    if (this.faults.latencyExcept?.test(path)) return;
    const ms = this.faults.latencyMs;
    if (ms > 0) await delay(ms);
  }

  /** faults.gather: waits while a gathering this request belongs to is not complete. */
  private async gathered(method: string, path: string): Promise<void> {
    const g = this.gathers.find((x) => (x.method === '*' || x.method === method) && x.pathRegex.test(path));
    if (!g) return;
    await new Promise<void>((resolve) => {
      g.waiting.push(resolve);
      if (g.waiting.length >= g.count) this.release(g);
      else if (g.waiting.length === 1) g.timer = setTimeout(() => this.release(g), g.timeoutMs);
    });
  }

  private release(g: Gathering): void {
    const i = this.gathers.indexOf(g);
    if (i >= 0) this.gathers.splice(i, 1);
    if (g.timer) clearTimeout(g.timer);
    for (const go of g.waiting.splice(0)) go();
  }

  /** Queued failNext faults (shared by ARM and the authority). */
  private takeFailure(method: string, path: string): QueuedFailure | undefined {
    const i = this.failures.findIndex((f) => (f.method === '*' || f.method === method) && f.pathRegex.test(path));
    if (i < 0) return undefined;
    const f = this.failures[i];
    if (!f) return undefined;
    f.remaining -= 1;
    if (f.remaining <= 0) this.failures.splice(i, 1);
    if (f.status === 0) throw new DroppedConnection();
    return f;
  }

  /** dropAnswerNext: true (and one fewer pending) when this request's answer is to be lost. */
  private takeAnswerDrop(method: string, path: string): boolean {
    const d = this.answerDrops.find((x) => (x.method === '*' || x.method === method) && x.pathRegex.test(path));
    if (!d) return false;
    d.remaining -= 1;
    if (d.remaining <= 0) this.answerDrops.splice(this.answerDrops.indexOf(d), 1);
    return true;
  }

  // --- Entra authority --------------------------------------------------------------------------

  private async handleAuthority(
    req: IncomingMessage,
    ctx: { method: string; segs: string[]; path: string; query: Record<string, string>; rawBody: string; origin: string; record: AzureRequestRecord },
    correlationId: string,
  ): Promise<Reply> {
    await this.delay(ctx.path);
    const traceId = randomUUID();
    try {
      const failure = this.takeFailure(ctx.method, ctx.path);
      if (failure) throw new EntraError(failure.status, failure.code, 0, failure.message);
      const [tenant, s1, s2, s3] = ctx.segs;
      if (tenant === undefined) throw new EntraError(404, 'not_found', 0, 'azure emulator: unknown authority path');
      if (eqi(tenant, 'common') && eqi(s1, 'discovery') && eqi(s2, 'instance')) return this.instanceDiscovery(ctx.origin, ctx.query);
      this.checkTenant(tenant);
      if (eqi(s1, 'v2.0') && s2 === '.well-known' && s3 === 'openid-configuration' && ctx.method === 'GET') return { status: 200, body: this.openIdConfiguration(ctx.origin, tenant) };
      if (eqi(s1, 'discovery') && eqi(s2, 'v2.0') && eqi(s3, 'keys') && ctx.method === 'GET') {
        return { status: 200, body: { keys: [{ kty: 'RSA', use: 'sig', kid: this.kid, x5t: this.kid, n: this.publicJwk.n, e: this.publicJwk.e, issuer: `${ctx.origin}/${this.tenantId}/v2.0` }] } };
      }
      if (eqi(s1, 'oauth2') && eqi(s2, 'v2.0') && eqi(s3, 'token') && ctx.method === 'POST') return this.token(req, tenant, ctx.rawBody, ctx.record);
      // AADSTS900561 is Entra's answer to a GET on the token endpoint; other paths: emulator text.
      throw new EntraError(404, 'not_found', 0, `azure emulator: ${ctx.method} ${ctx.path} is not implemented`);
    } catch (e) {
      if (e instanceof EntraError) return this.entraErrorReply(e, ctx.origin, traceId, correlationId);
      throw e;
    }
  }

  /**
   * Entra's error body, as quoted in real threads (e.g. OfficeDev/microsoft-365-agents-toolkit#8621):
   * `{"error":"invalid_client","error_description":"AADSTS7000215: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: 2023-05-06 06:03:00Z","error_codes":[7000215],"timestamp":…,"trace_id":…,"correlation_id":…,"error_uri":"https://login.microsoftonline.com/error?code=7000215"}`.
   */
  private entraErrorReply(e: EntraError, origin: string, traceId: string, correlationId: string): Reply {
    const ts = entraTimestamp();
    const prefix = e.aadsts > 0 ? `AADSTS${e.aadsts}: ` : '';
    return {
      status: e.status,
      body: {
        error: e.error,
        error_description: `${prefix}${e.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${ts}`,
        error_codes: e.aadsts > 0 ? [e.aadsts] : [],
        timestamp: ts,
        trace_id: traceId,
        correlation_id: correlationId,
        ...(e.aadsts > 0 ? { error_uri: `${origin}/error?code=${e.aadsts}` } : {}),
      },
    };
  }

  /** `common`, `organizations` and the configured tenant exist; anything else is AADSTS90002 (text from AzureAD threads, e.g. Azure/azure-cli#22145). */
  private checkTenant(tenant: string): void {
    if (eqi(tenant, this.tenantId) || eqi(tenant, 'common') || eqi(tenant, 'organizations')) return;
    throw new EntraError(
      400,
      'invalid_tenant',
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    );
  }

  /**
   * The v2.0 discovery document, with the fields and values login.microsoftonline.com returns for a
   * tenant (compare the openid_config dumps in Azure/azure-workload-identity#682). Every endpoint points
   * back at this server (same host as the request, so MSAL's issuer-host check passes). `common` and
   * `organizations` get the literal `{tenantid}` issuer, as Entra does.
   */
  private openIdConfiguration(origin: string, tenant: string): Record<string, unknown> {
    const specific = eqi(tenant, this.tenantId);
    const path = specific ? this.tenantId : tenant.toLowerCase();
    const base = `${origin}/${path}`;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${origin}/${specific ? this.tenantId : '{tenantid}'}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'NA',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  /**
   * Entra's `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`. MSAL sends it
   * to the public cloud's host (a constant in msal-common), never to AZURE_AUTHORITY_HOST, so it only
   * reaches here when a test calls it; it answers with this host as its own alias.
   */
  private instanceDiscovery(origin: string, query: Record<string, string>): Reply {
    const host = origin.replace(/^https:\/\//, '');
    const endpoint = query.authorization_endpoint ?? '';
    const tenant = /^https:\/\/[^/]+\/([^/]+)\//.exec(endpoint)?.[1] ?? 'common';
    return {
      status: 200,
      body: {
        tenant_discovery_endpoint: `${origin}/${tenant}/v2.0/.well-known/openid-configuration`,
        'api-version': query['api-version'] ?? '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      },
    };
  }

  /**
   * `POST /{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials` with either `client_secret`
   * (the configured service principal) or `client_assertion` (workload identity federation against the
   * FICs of a user-assigned identity, matched by its clientId). Texts are Entra's (sources inline).
   */
  private token(req: IncomingMessage, tenant: string, rawBody: string, record: AzureRequestRecord): Reply {
    const form = new URLSearchParams(rawBody);
    // HTTP Basic client authentication (client_secret_basic) is allowed too.
    const basic = /^Basic\s+(.+)$/i.exec(headerValue(req.headers, 'authorization') ?? '');
    let basicId: string | undefined;
    let basicSecret: string | undefined;
    if (basic?.[1] !== undefined) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      basicId = decodeURIComponent(decoded.slice(0, i));
      basicSecret = decodeURIComponent(decoded.slice(i + 1));
    }
    const grantType = form.get('grant_type') ?? undefined;
    const clientId = form.get('client_id') ?? basicId;
    const scope = form.get('scope') ?? undefined;
    const assertionType = form.get('client_assertion_type') ?? undefined;
    record.body = {
      tenant,
      grant_type: grantType,
      client_id: clientId,
      scope,
      ...(assertionType === undefined ? {} : { client_assertion_type: assertionType }),
    };
    // "AADSTS900144: The request body must contain the following parameter: 'grant_type'." (real text)
    const missing = (p: string): EntraError => new EntraError(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${p}'.`);
    if (grantType === undefined) throw missing('grant_type');
    if (grantType !== 'client_credentials') {
      // AADSTS70003 "The app requested an unsupported grant type" (wording approximate).
      throw new EntraError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    if (clientId === undefined) throw missing('client_id');
    if (scope === undefined) throw missing('scope');
    const scopes = scope.split(/\s+/).filter((s) => s !== '' && !['openid', 'profile', 'offline_access'].includes(s));
    const resourceScope = scopes[0];
    if (resourceScope === undefined || scopes.length !== 1 || !resourceScope.endsWith('/.default')) {
      // AADSTS1002012 (real text).
      throw new EntraError(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    }
    const aud = resourceScope.slice(0, -'/.default'.length);
    const notFoundApp = (): EntraError =>
      // AADSTS700016 (real text, e.g. MicrosoftDocs/azure-docs#21690).
      new EntraError(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${this.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );

    const assertion = form.get('client_assertion') ?? undefined;
    if (assertion !== undefined) {
      const identity = [...this.state.identities.values()].find((i) => i.clientId.toLowerCase() === clientId.toLowerCase());
      if (!identity) throw notFoundApp();
      this.checkAssertion(identity, assertion, assertionType);
      const token = this.mintToken({ aud, appid: identity.clientId, oid: identity.principalId, appidacr: '2', extra: { xms_mirid: `/subscriptions/${identity.subscription}/resourcegroups/${identity.resourceGroup}/providers/${T_IDENTITY}/${identity.name}` } });
      return { status: 200, body: { token_type: 'Bearer', expires_in: TOKEN_LIFETIME_S, ext_expires_in: TOKEN_LIFETIME_S, access_token: token } };
    }
    const secret = form.get('client_secret') ?? basicSecret;
    if (secret === undefined) {
      // AADSTS7000218 (real text).
      throw new EntraError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    if (clientId.toLowerCase() !== this.clientId.toLowerCase()) throw notFoundApp();
    if (secret !== this.clientSecret) {
      // AADSTS7000215, HTTP 401 (real response quoted in Azure/sap-automation#418).
      throw new EntraError(
        401,
        'invalid_client',
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${this.clientId}'.`,
      );
    }
    const token = this.mintToken({ aud, appid: this.clientId, oid: this.servicePrincipalObjectId, appidacr: '1' });
    // The four fields a v2.0 client-credentials answer has.
    return { status: 200, body: { token_type: 'Bearer', expires_in: TOKEN_LIFETIME_S, ext_expires_in: TOKEN_LIFETIME_S, access_token: token } };
  }

  /**
   * Workload identity federation: the assertion's `iss`, `sub` and `aud` must match one FIC of the
   * identity exactly (case-sensitive, azure.md §3.3). The signature is NOT verified (the emulator does not
   * fetch the issuer's JWKS). Texts: AADSTS700211/700212/700213 as quoted in Azure/azure-workload-identity#1200
   * and dotnet/maui#31978 ("Check your federated identity credential Subject, Audience and Issuer …"), 401.
   */
  private checkAssertion(identity: Identity, assertion: string, assertionType: string | undefined): void {
    if (assertionType !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      throw new EntraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_assertion_type'.");
    }
    const [, payloadPart] = assertion.split('.');
    let claims: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(Buffer.from(payloadPart ?? '', 'base64url').toString('utf8'));
      if (!isRecord(parsed)) throw new Error('not an object');
      claims = parsed;
    } catch {
      // AADSTS50027 "JWT token is invalid or malformed." (real code; wording approximate).
      throw new EntraError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    }
    const now = Math.floor(Date.now() / 1000);
    const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
    if (exp !== undefined && exp < now) {
      // AADSTS700024 (azure.md §3.3: assertion expired; wording approximate).
      throw new EntraError(400, 'invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}.`);
    }
    const iss = String(claims.iss ?? '');
    const sub = String(claims.sub ?? '');
    const auds = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud ?? '')];
    const hint = 'Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation';
    const fics = [...identity.fics.values()];
    const byIssuer = fics.filter((f) => f.issuer === iss);
    if (byIssuer.length === 0) throw new EntraError(401, 'invalid_client', 700211, `No matching federated identity record found for presented assertion issuer '${iss}'. ${hint}`);
    const bySubject = byIssuer.filter((f) => f.subject === sub);
    if (bySubject.length === 0) throw new EntraError(401, 'invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${sub}'. ${hint}`);
    if (!bySubject.some((f) => f.audiences.some((a) => auds.includes(a)))) {
      throw new EntraError(401, 'invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${auds.join(',')}'. ${hint}`);
    }
  }

  // --- ARM ----------------------------------------------------------------------------------------

  private async handleArm(req: IncomingMessage, ctx: Omit<ArmContext, 'apiVersion' | 'caller' | 'body'>): Promise<Reply> {
    const route = parseArmPath(ctx.segs);
    // Concurrency model (azure.md §3.3): a FIC write to an identity that arrives while another FIC write to
    // the same identity is in flight gets 409. The in-flight window is the latency (faults.latencyMs).
    let holding: string | undefined;
    let concurrent = false;
    let loseAnswer = false;
    if ((route.kind === 'fic' || route.kind === 'fics') && WRITE_METHODS.has(ctx.method)) {
      const k = key(route.sub, route.rg, route.identity);
      if (this.inflight.has(k)) concurrent = true;
      else {
        this.inflight.add(k);
        holding = k;
      }
    }
    try {
      await this.delay(ctx.path);
      await this.gathered(ctx.method, ctx.path);
      const caller = this.authenticate(req, ctx.origin);
      const apiVersion = ctx.query['api-version'];
      // Real ARM texts for both (seen in any REST client without the parameter).
      if (apiVersion === undefined || apiVersion === '') throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
      if (!/^\d{4}-\d{2}-\d{2}(-preview|-beta|-alpha)?$/.test(apiVersion)) {
        throw new ArmError(400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid. The supported versions are '2025-01-01,2024-11-30,2024-04-01,2023-01-31,2022-04-01'.`);
      }
      this.injectedArmFaults(ctx.method, ctx.path, route, caller);
      if (route.kind === 'fic' && WRITE_METHODS.has(ctx.method) && (concurrent || this.takeFicConflict())) {
        throw this.ficConcurrencyError(route.sub, route.rg, route.identity);
      }
      loseAnswer = this.takeAnswerDrop(ctx.method, ctx.path);
      let body: unknown;
      if (ctx.rawBody !== '' && (ctx.method === 'PUT' || ctx.method === 'PATCH' || ctx.method === 'POST')) {
        try {
          body = JSON.parse(ctx.rawBody);
        } catch (e) {
          // ARM's text for an unparsable body.
          throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: '${(e as Error).message}'.`);
        }
      }
      const full: ArmContext = { ...ctx, apiVersion, caller, body };
      const reply = this.dispatchArm(full, route);
      const rate = ctx.method === 'GET' ? 'x-ms-ratelimit-remaining-subscription-reads' : 'x-ms-ratelimit-remaining-subscription-writes';
      return { ...reply, headers: { [rate]: ctx.method === 'GET' ? '249' : '199', ...(reply.headers ?? {}) }, ...(loseAnswer ? { drop: true } : {}) };
    } catch (e) {
      if (e instanceof ArmError) return { status: e.status, body: { error: { code: e.code, message: e.message } }, headers: e.headers, ...(loseAnswer ? { drop: true } : {}) };
      throw e;
    } finally {
      if (holding !== undefined) this.inflight.delete(holding);
    }
  }

  private takeFicConflict(): boolean {
    if (this.ficConflicts <= 0) return false;
    this.ficConflicts -= 1;
    return true;
  }

  /**
   * The 409 real MSI returns, quoted in Azure/bicep-registry-modules#1447: the id in the message has the
   * provider and type lower-cased and `resourcegroups`, names as created.
   */
  private ficConcurrencyError(sub: string, rg: string, identityName: string): ArmError {
    const identity = this.state.identities.get(key(sub, rg, identityName));
    const id = `/subscriptions/${sub}/resourcegroups/${identity?.resourceGroup ?? rg}/providers/microsoft.managedidentity/userassignedidentities/${identity?.name ?? identityName}`;
    return new ArmError(
      409,
      'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity',
      `Too many Federated Identity Credentials are written concurrently for the managed identity '${id}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.`,
    );
  }

  /**
   * Bearer check, with ARM's texts (quoted in Azure/azure-sdk-for-net#4103, azure-sdk-for-python#4124,
   * azure-powershell#27882). 401s carry `WWW-Authenticate: Bearer authorization_uri=…, error="invalid_token"`
   * without `claims`, so core-rest-pipeline's bearer policy does not retry them.
   */
  private authenticate(req: IncomingMessage, origin: string): Caller {
    const challenge = (description: string): Record<string, string> => ({
      'WWW-Authenticate': `Bearer authorization_uri="${origin}/", error="invalid_token", error_description="${description}"`,
    });
    const header = headerValue(req.headers, 'authorization');
    if (header === undefined) {
      throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge("The authentication failed because of missing 'Authorization' header."));
    }
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m?.[1]) {
      throw new ArmError(401, 'AuthenticationFailedInvalidHeader', "Authentication failed. The 'Authorization' header is provided in an invalid format.", challenge("The authentication failed because of the 'Authorization' header is provided in an invalid format."));
    }
    const info = this.tokens.get(m[1]);
    if (!info) throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.', challenge('The access token is invalid.'));
    if (info.expiresAt <= Date.now()) {
      const fmt = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
      throw new ArmError(401, 'ExpiredAuthenticationToken', `The access token expiry UTC time '${fmt(info.expiresAt)}' is earlier than current UTC time '${fmt(Date.now())}'.`, challenge('The access token expired.'));
    }
    if (!this.armAudienceAllowed(info.aud)) {
      const allowed = [...PUBLIC_ARM_AUDIENCES, `${this.url}/`, this.url].map((a) => `'${a}'`).join(',');
      throw new ArmError(401, 'InvalidAuthenticationTokenAudience', `The access token has been obtained for wrong audience or resource '${info.aud}'. It should exactly match with one of the allowed audiences ${allowed}.`, challenge('The access token has been obtained for wrong audience or resource.'));
    }
    return { oid: info.oid, appid: info.appid };
  }

  /** Injected faults, in order: throttling, queued failNext errors, denies. */
  private injectedArmFaults(method: string, path: string, route: ArmRoute, caller: Caller): void {
    const t = this.throttles.find((x) => x.pathRegex.test(path));
    if (t) {
      t.remaining -= 1;
      if (t.remaining <= 0) this.throttles.splice(this.throttles.indexOf(t), 1);
      // The classic ARM throttling body, e.g. Azure/migAz#57: {"error":{"code":"TooManyRequests","message":"The request is being throttled."}}.
      throw new ArmError(429, 'TooManyRequests', 'The request is being throttled.', { 'Retry-After': String(t.retryAfterSeconds) });
    }
    const f = this.takeFailure(method, path);
    if (f) throw new ArmError(f.status, f.code, f.message);
    if (this.denies.some((d) => (d.method === '*' || d.method === method) && d.pathRegex.test(path))) {
      // ARM's AuthorizationFailed text.
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${caller.appid}' with object id '${caller.oid}' does not have authorization to perform action '${actionFor(method, route)}' over scope '${path}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
    }
  }

  private dispatchArm(ctx: ArmContext, route: ArmRoute): Reply {
    const m = ctx.method;
    const notAllowed = (): ArmError => new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${m}'.`);
    switch (route.kind) {
      case 'subscription':
        if (m !== 'GET') throw notAllowed();
        return this.getSubscription(route.sub);
      case 'resourceGroup':
        if (m !== 'GET') throw notAllowed();
        return this.getResourceGroup(route.sub, route.rg);
      case 'cluster':
        if (m !== 'GET') throw notAllowed();
        return this.getCluster(route.sub, route.rg, route.name);
      case 'identities':
        if (m !== 'GET') throw notAllowed();
        return this.listIdentities(ctx, route.sub, route.rg);
      case 'identity':
        if (m === 'GET') return this.getIdentityReply(ctx, route.sub, route.rg, route.name);
        if (m === 'PUT') return this.putIdentity(ctx, route.sub, route.rg, route.name);
        if (m === 'PATCH') return this.patchIdentity(ctx, route.sub, route.rg, route.name);
        if (m === 'DELETE') return this.deleteIdentity(route.sub, route.rg, route.name);
        throw notAllowed();
      case 'fics':
        if (m !== 'GET') throw notAllowed();
        return this.listFics(ctx, route.sub, route.rg, route.identity);
      case 'fic':
        if (m === 'GET') return this.getFic(route.sub, route.rg, route.identity, route.name);
        if (m === 'PUT') return this.putFic(ctx, route.sub, route.rg, route.identity, route.name);
        if (m === 'DELETE') return this.deleteFic(route.sub, route.rg, route.identity, route.name);
        throw notAllowed();
      case 'roleDefinitions':
        if (m !== 'GET') throw notAllowed();
        return this.listRoleDefinitions(ctx, route.scope);
      case 'roleDefinition':
        if (m !== 'GET') throw notAllowed();
        return this.getRoleDefinition(route.scope, route.id);
      case 'roleAssignments':
        if (m !== 'GET') throw notAllowed();
        return this.listAssignments(ctx, route.scope);
      case 'roleAssignment':
        if (m === 'GET') return this.getAssignment(route.scope, route.name);
        if (m === 'PUT') return this.putAssignment(ctx, route.scope, route.name);
        if (m === 'DELETE') return this.deleteAssignment(route.scope, route.name);
        throw notAllowed();
      default:
        // Emulator text: the route is outside what wid calls.
        throw new ArmError(404, 'NotImplementedInEmulator', `azure emulator: ${m} ${ctx.path} is not implemented`);
    }
  }

  // --- subscriptions and resource groups ------------------------------------------------------------

  private requireSubscription(sub: string): void {
    if (!this.state.subscriptions.has(sub.toLowerCase())) throw subscriptionNotFound(sub);
  }

  private requireGroup(sub: string, rg: string): ResourceGroup {
    this.requireSubscription(sub);
    const g = this.state.groups.get(key(sub, rg));
    if (!g) throw resourceGroupNotFound(rg);
    return g;
  }

  /** Checks the subscription and resource group named in a scope (`/subscriptions/{s}[/resourceGroups/{rg}[/…]]`). */
  private requireScope(scope: string[]): void {
    if (scope.length === 0) return;
    if (eqi(scope[0], 'subscriptions') && scope[1] !== undefined) {
      this.requireSubscription(scope[1]);
      if (eqi(scope[2], 'resourceGroups') && scope[3] !== undefined) this.requireGroup(scope[1], scope[3]);
    }
  }

  private getSubscription(sub: string): Reply {
    this.requireSubscription(sub);
    return {
      status: 200,
      body: {
        id: `/subscriptions/${sub}`,
        authorizationSource: 'RoleBased',
        managedByTenants: [],
        subscriptionId: sub,
        tenantId: this.tenantId,
        displayName: `Emulated subscription ${sub.slice(0, 8)}`,
        state: 'Enabled',
        subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
      },
    };
  }

  private getResourceGroup(sub: string, rg: string): Reply {
    const g = this.requireGroup(sub, rg);
    return {
      status: 200,
      body: { id: `/subscriptions/${g.subscription}/resourceGroups/${g.name}`, name: g.name, type: 'Microsoft.Resources/resourceGroups', location: g.location, properties: { provisioningState: 'Succeeded' } },
    };
  }

  // --- AKS --------------------------------------------------------------------------------------------

  private getCluster(sub: string, rg: string, name: string): Reply {
    const g = this.requireGroup(sub, rg);
    const c = this.state.clusters.get(key(sub, rg, name));
    if (!c) throw resourceNotFound(T_CLUSTER, name, g.name);
    return { status: 200, body: this.clusterJson(c) };
  }

  // --- user-assigned identities -------------------------------------------------------------------------

  private listIdentities(ctx: ArmContext, sub: string, rg: string | undefined): Reply {
    if (rg === undefined) this.requireSubscription(sub);
    else this.requireGroup(sub, rg);
    const value = [...this.state.identities.values()]
      .filter((i) => eqi(i.subscription, sub) && (rg === undefined || eqi(i.resourceGroup, rg)))
      .map((i) => this.identityJson(i, ctx.apiVersion));
    return { status: 200, body: { value } };
  }

  private getIdentityReply(ctx: ArmContext, sub: string, rg: string, name: string): Reply {
    const g = this.requireGroup(sub, rg);
    const i = this.state.identities.get(key(sub, rg, name));
    if (!i) throw resourceNotFound(T_IDENTITY, name, g.name);
    return { status: 200, body: this.identityJson(i, ctx.apiVersion) };
  }

  /** PUT: create (201) or replace (200). Location is required and cannot change; tags are replaced wholesale. */
  private putIdentity(ctx: ArmContext, sub: string, rg: string, name: string): Reply {
    const g = this.requireGroup(sub, rg);
    const body = isRecord(ctx.body) ? ctx.body : {};
    // MSI name rule (3–128, alphanumerics, '-' and '_', starting with a letter or digit); emulator text.
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(name)) {
      throw new ArmError(400, 'InvalidResourceName', `Resource name ${name} is invalid. The name can be 3-128 characters long and can contain only letters, numbers, hyphens and underscores, and must start with a letter or number.`);
    }
    if (typeof body.location !== 'string' || body.location.trim() === '') {
      // ARM's text.
      throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    }
    const location = normalizeLocation(body.location);
    if (!REGIONS.includes(location)) {
      // ARM's text (list abridged to the emulator's regions).
      throw new ArmError(400, 'LocationNotAvailableForResourceType', `The provided location '${body.location}' is not available for resource type '${T_IDENTITY}'. List of available regions for the resource type is '${REGIONS.join(',')}'.`);
    }
    const k = key(sub, rg, name);
    const existing = this.state.identities.get(k);
    if (existing && existing.location !== location) {
      // ARM's text for a location change of an existing resource.
      throw new ArmError(
        400,
        'InvalidResourceLocation',
        `The resource '${existing.name}' already exists in location '${existing.location}' in resource group '${g.name}'. A resource with the same name cannot be created in location '${location}'. Please select a new resource name.`,
      );
    }
    const identity = this.upsertIdentity(sub, rg, existing?.name ?? name, location, stringRecord(body.tags));
    return { status: existing ? 200 : 201, body: this.identityJson(identity, ctx.apiVersion) };
  }

  /** PATCH (`userAssignedIdentities.update`): `tags` replaces the tag set when present. */
  private patchIdentity(ctx: ArmContext, sub: string, rg: string, name: string): Reply {
    const g = this.requireGroup(sub, rg);
    const i = this.state.identities.get(key(sub, rg, name));
    if (!i) throw resourceNotFound(T_IDENTITY, name, g.name);
    const body = isRecord(ctx.body) ? ctx.body : {};
    if (body.tags !== undefined) i.tags = stringRecord(body.tags);
    return { status: 200, body: this.identityJson(i, ctx.apiVersion) };
  }

  /**
   * DELETE: 200 when it existed, 204 when not (ARM's idempotent delete). Its FICs go with it. Role
   * assignments of its principal stay behind, as in Azure (they show as "Identity not found").
   */
  private deleteIdentity(sub: string, rg: string, name: string): Reply {
    this.requireGroup(sub, rg);
    const k = key(sub, rg, name);
    if (!this.state.identities.delete(k)) return { status: 204 };
    return { status: 200 };
  }

  // --- federated identity credentials ------------------------------------------------------------------

  /** The parent identity, with the text of the Entra docs' FIC error table. */
  private parentIdentity(sub: string, rg: string, name: string): Identity {
    this.requireGroup(sub, rg);
    const i = this.state.identities.get(key(sub, rg, name));
    if (!i) throw new ArmError(404, 'ParentResourceNotFound', "The parent user-assigned identity doesn't exist.");
    return i;
  }

  /** `{value, nextLink?}`; `$top` (≥1) pages, `$skiptoken` is the emulator's opaque offset. */
  private listFics(ctx: ArmContext, sub: string, rg: string, identityName: string): Reply {
    const i = this.parentIdentity(sub, rg, identityName);
    const all = [...i.fics.values()];
    let start = 0;
    const skip = ctx.query.$skiptoken;
    if (skip !== undefined) {
      const decoded = Buffer.from(skip, 'base64url').toString('utf8');
      const m = /^wid-emu:(\d+)$/.exec(decoded);
      // Emulator text: no real text for a forged skip token was available.
      if (!m?.[1]) throw new ArmError(400, 'InvalidSkipToken', `The skip token '${skip}' is invalid.`);
      start = Number(m[1]);
    }
    let top = all.length;
    const rawTop = ctx.query.$top;
    if (rawTop !== undefined) {
      top = Number(rawTop);
      // Emulator text: the SDK already refuses $top < 1 (InclusiveMinimum: 1 in models/parameters.js).
      if (!Number.isInteger(top) || top < 1) throw new ArmError(400, 'InvalidParameter', `The value '${rawTop}' of query parameter '$top' is invalid.`);
    }
    const page = all.slice(start, start + top);
    const body: { value: ArmFederatedCredential[]; nextLink?: string } = { value: page.map((f) => this.ficJson(i, f)) };
    if (start + top < all.length) {
      const next = new URLSearchParams({ 'api-version': ctx.apiVersion, $top: String(top), $skiptoken: b64url(`wid-emu:${start + top}`) });
      // The classic SDK follows nextLink as is (no api-version added), so it carries one.
      body.nextLink = `${ctx.origin}${ctx.path}?${next.toString()}`;
    }
    return { status: 200, body };
  }

  private getFic(sub: string, rg: string, identityName: string, name: string): Reply {
    const i = this.parentIdentity(sub, rg, identityName);
    const f = i.fics.get(name.toLowerCase());
    // ARM's generic not-found text with the nested type (no capture of MSI's own text was available).
    if (!f) throw resourceNotFound(T_FIC, `${i.name}/${name}`, i.resourceGroup);
    return { status: 200, body: this.ficJson(i, f) };
  }

  /**
   * PUT, with the checks of azure.md §3.3 in this order: name pattern, parent, region, body present,
   * exactly one audience, lengths, (issuer, subject) unique, at most 20. 201 on create, 200 on replace.
   * The name is immutable, so a replace keeps the stored spelling.
   */
  private putFic(ctx: ArmContext, sub: string, rg: string, identityName: string, name: string): Reply {
    // Entra docs' FIC error table: "Federated Identity Credential name '{ficName}' is invalid." (400).
    if (!FIC_NAME.test(name)) throw new ArmError(400, 'BadRequest', `Federated Identity Credential name '${name}' is invalid.`);
    const i = this.parentIdentity(sub, rg, identityName);
    if (FIC_UNSUPPORTED_REGIONS.has(i.location)) {
      // Entra docs' FIC error table (405); the code is the emulator's guess.
      throw new ArmError(405, 'BadRequest', 'The request format was unexpected: Support for federated identity credentials not enabled.');
    }
    const body = isRecord(ctx.body) ? ctx.body : {};
    const props = isRecord(body.properties) ? body.properties : undefined;
    if (!props || Object.keys(props).length === 0) {
      // Entra docs' FIC error table.
      throw new ArmError(400, 'BadRequest', 'Federated Identity Credential from HTTP body has empty properties');
    }
    const { issuer, subject, audiences } = props;
    if (typeof issuer !== 'string' || issuer === '' || typeof subject !== 'string' || subject === '' || audiences === undefined) {
      // Real text, quoted in zioproto/istio-aks-example#6.
      throw new ArmError(400, 'BadRequest', "The request format was unexpected. Federated Identity Credential must specify 'issuer', 'subject' and 'audience'.");
    }
    if (!Array.isArray(audiences) || audiences.length !== 1 || typeof audiences[0] !== 'string') {
      // Real response, quoted in Azure/azure-cli#31598.
      throw new ArmError(400, 'InvalidFederatedIdentityCredentialsAudienceLength', 'Federated identity credentials must have exactly 1 audience.');
    }
    const audience = audiences[0];
    for (const [field, value] of [['issuer', issuer], ['subject', subject], ['audience', audience]] as const) {
      // Emulator text: the 600-character limit is documented (azure.md §3.3), its error text is not.
      if (value.length > FIC_FIELD_MAX) throw new ArmError(400, 'BadRequest', `The request format was unexpected. Federated Identity Credential ${field} must not be longer than ${FIC_FIELD_MAX} characters.`);
    }
    const k = name.toLowerCase();
    const existing = i.fics.get(k);
    for (const [otherKey, other] of i.fics) {
      if (otherKey !== k && other.issuer === issuer && other.subject === subject) {
        // Entra docs' FIC error table (400).
        throw new ArmError(400, 'BadRequest', 'Issuer and subject combination already exists for this Managed Identity.');
      }
    }
    if (!existing && i.fics.size >= FIC_MAX_PER_IDENTITY) {
      // Emulator text: the limit of 20 is documented (azure.md §3.3), the error text is not.
      throw new ArmError(400, 'BadRequest', `The request format was unexpected. A managed identity can have at most ${FIC_MAX_PER_IDENTITY} federated identity credentials.`);
    }
    const fic: Fic = { name: existing?.name ?? name, issuer, subject, audiences: [audience] };
    i.fics.set(k, fic);
    return { status: existing ? 200 : 201, body: this.ficJson(i, fic) };
  }

  private deleteFic(sub: string, rg: string, identityName: string, name: string): Reply {
    const i = this.parentIdentity(sub, rg, identityName);
    return i.fics.delete(name.toLowerCase()) ? { status: 200 } : { status: 204 };
  }

  // --- role definitions ----------------------------------------------------------------------------

  /** `$filter=roleName eq 'X'` (exact, OData quotes doubled) and `type eq 'BuiltInRole'|'CustomRole'`; no filter lists all. */
  private listRoleDefinitions(ctx: ArmContext, scope: string[]): Reply {
    this.requireScope(scope);
    const sub = eqi(scope[0], 'subscriptions') ? scope[1] : undefined;
    let roles = [...BUILT_IN_ROLES];
    const filter = ctx.query.$filter?.trim();
    if (filter !== undefined && filter !== '') {
      for (const clause of filter.split(/\s+and\s+/i)) {
        const byName = new RegExp(`^roleName\\s+eq\\s+${ODATA_STRING}$`, 'i').exec(clause.trim());
        const byType = new RegExp(`^type\\s+eq\\s+${ODATA_STRING}$`, 'i').exec(clause.trim());
        if (byName?.[1] !== undefined) {
          const wanted = odataString(byName[1]);
          roles = roles.filter((r) => r.roleName === wanted);
        } else if (byType?.[1] !== undefined) {
          const wanted = odataString(byType[1]);
          roles = roles.filter(() => wanted === 'BuiltInRole');
        } else {
          // Emulator text.
          throw new ArmError(400, 'InvalidFilterInQueryString', `The filter '${filter}' is not supported by the azure emulator (roleName eq '…', type eq '…').`);
        }
      }
    }
    return { status: 200, body: { value: roles.map((r) => this.roleDefinitionJson(r, sub)) } };
  }

  private getRoleDefinition(scope: string[], id: string): Reply {
    this.requireScope(scope);
    const role = ROLE_BY_GUID.get(id.toLowerCase());
    if (!role) throw new ArmError(404, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${id}' does not exist.`);
    return { status: 200, body: this.roleDefinitionJson(role, eqi(scope[0], 'subscriptions') ? scope[1] : undefined) };
  }

  // --- role assignments ----------------------------------------------------------------------------

  private assignmentAt(scope: string[], name: string): RoleAssignment | undefined {
    const id = `${scope.length === 0 ? '' : scopeString(scope)}/providers/${T_ROLE_ASSIGNMENT}/${name}`;
    return this.state.assignments.get(id.toLowerCase());
  }

  private getAssignment(scope: string[], name: string): Reply {
    this.requireScope(scope);
    const a = this.assignmentAt(scope, name);
    // ARM's text.
    if (!a) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
    return { status: 200, body: this.assignmentJson(a) };
  }

  /**
   * PUT a role assignment (azure.md §3.5). 201 on create and on an identical re-PUT; the same
   * (principal, role, scope) under another name → 409 RoleAssignmentExists; an unknown principal without
   * principalType → 400 PrincipalNotFound (ARM's replication-delay text); a principalType that contradicts
   * the directory → 400 UnmatchedPrincipalType (real text, typo included: Azure/modern-web-app-pattern-dotnet#129).
   */
  private putAssignment(ctx: ArmContext, scope: string[], name: string): Reply {
    this.requireScope(scope);
    if (!GUID.test(name)) {
      // ARM's text (wording from memory of real responses).
      throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
    }
    const body = isRecord(ctx.body) ? ctx.body : {};
    const props = isRecord(body.properties) ? body.properties : {};
    const roleDefinitionId = typeof props.roleDefinitionId === 'string' ? props.roleDefinitionId : '';
    const principalId = typeof props.principalId === 'string' ? props.principalId : '';
    const principalType = typeof props.principalType === 'string' ? props.principalType : undefined;
    if (!GUID.test(principalId)) {
      // Emulator text.
      throw new ArmError(400, 'InvalidPrincipalId', `The Principal ID '${principalId}' is not valid. Principal ID must be a GUID.`);
    }
    const defMatch = new RegExp(`^(/subscriptions/[^/]+)?/providers/${T_ROLE_DEFINITION}/([^/]+)$`, 'i').exec(roleDefinitionId);
    if (!defMatch?.[2]) {
      // Emulator text.
      throw new ArmError(400, 'InvalidRoleDefinitionId', `The role definition ID '${roleDefinitionId}' is not valid.`);
    }
    const roleGuid = defMatch[2].toLowerCase();
    if (!ROLE_BY_GUID.has(roleGuid)) {
      // ARM's text for an unknown role definition.
      throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${defMatch[2]}' does not exist.`);
    }
    const known = this.principalTypeOf(principalId);
    if (known === undefined && principalType === undefined) {
      // Real text (Azure/HubAndSpokeResearchEnclave#50, Azure/avdaccelerator#99), two spaces before "See" included.
      throw new ArmError(
        400,
        'PrincipalNotFound',
        `Principal ${principalId.replace(/-/g, '')} does not exist in the directory ${this.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
      );
    }
    if (known !== undefined && principalType !== undefined && principalType.toLowerCase() !== known.toLowerCase()) {
      throw new ArmError(400, 'UnmatchedPrincipalType', `The PrincipalId '${principalId.replace(/-/g, '')}' has type '${known}' , which is different from specified PrinciaplType '${principalType}'.`);
    }
    const scopeText = scopeString(scope);
    const existing = this.assignmentAt(scope, name);
    if (existing) {
      const same = existing.principalId.toLowerCase() === principalId.toLowerCase() && existing.roleGuid === roleGuid && existing.scope.toLowerCase() === scopeText.toLowerCase();
      // ARM's text for changing an assignment in place.
      if (!same) throw new ArmError(400, 'RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
      return { status: 201, body: this.assignmentJson(existing) };
    }
    for (const other of this.state.assignments.values()) {
      if (other.principalId.toLowerCase() === principalId.toLowerCase() && other.roleGuid === roleGuid && other.scope.toLowerCase() === scopeText.toLowerCase()) {
        // Real text (Azure-Samples/azure-search-openai-demo#1091).
        throw new ArmError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
      }
    }
    const now = new Date().toISOString();
    const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    const a: RoleAssignment = {
      name,
      scope: scopeText,
      roleDefinitionId,
      roleGuid,
      principalId,
      principalType: principalType ?? known ?? 'ServicePrincipal',
      description: str(props.description),
      condition: str(props.condition),
      conditionVersion: str(props.conditionVersion),
      delegatedManagedIdentityResourceId: str(props.delegatedManagedIdentityResourceId),
      createdOn: now,
      updatedOn: now,
      createdBy: ctx.caller.oid,
    };
    this.state.assignments.set(this.assignmentId(a).toLowerCase(), a);
    return { status: 201, body: this.assignmentJson(a) };
  }

  /** DELETE: 200 with the deleted assignment, 204 when there was none. */
  private deleteAssignment(scope: string[], name: string): Reply {
    this.requireScope(scope);
    const a = this.assignmentAt(scope, name);
    if (!a) return { status: 204 };
    this.state.assignments.delete(this.assignmentId(a).toLowerCase());
    return { status: 200, body: this.assignmentJson(a) };
  }

  /**
   * `listForScope`. As documented for the REST API: no filter → assignments at, above and below the
   * scope; `atScope()` → at and above only; `principalId eq '{id}'` and `assignedTo('{id}')` → that
   * principal's (group membership is not modelled), combinable with `atScope()` via `and`.
   */
  private listAssignments(ctx: ArmContext, scope: string[]): Reply {
    this.requireScope(scope);
    const scopeText = scopeString(scope);
    let atScopeOnly = false;
    let principal: string | undefined;
    const filter = ctx.query.$filter?.trim();
    if (filter !== undefined && filter !== '') {
      for (const clause of filter.split(/\s+and\s+/i)) {
        const c = clause.trim();
        const byPrincipal = new RegExp(`^principalId\\s+eq\\s+${ODATA_STRING}$`, 'i').exec(c);
        const assignedTo = new RegExp(`^assignedTo\\(${ODATA_STRING}\\)$`, 'i').exec(c);
        if (/^atScope\(\)$/i.test(c)) atScopeOnly = true;
        else if (byPrincipal?.[1] !== undefined) principal = odataString(byPrincipal[1]).toLowerCase();
        else if (assignedTo?.[1] !== undefined) principal = odataString(assignedTo[1]).toLowerCase();
        // Emulator text.
        else throw new ArmError(400, 'InvalidFilterInQueryString', `The filter '${filter}' is not supported by the azure emulator (atScope(), principalId eq '…', assignedTo('…')).`);
      }
    }
    const value = [...this.state.assignments.values()]
      .filter((a) => principal === undefined || a.principalId.toLowerCase() === principal)
      .filter((a) => scopeCovers(a.scope === '/' ? '' : a.scope, scopeText) || (!atScopeOnly && scopeCovers(scopeText === '/' ? '' : scopeText, a.scope)))
      .map((a) => this.assignmentJson(a));
    return { status: 200, body: { value } };
  }
}

function classify(method: string, segs: string[]): AzureRequestKind {
  const [first, s1, s2, s3] = segs;
  if (first === undefined) return 'arm';
  if (eqi(first, 'subscriptions') || eqi(first, 'providers')) return 'arm';
  if (eqi(first, 'common') && eqi(s1, 'discovery') && eqi(s2, 'instance')) return 'metadata';
  if (eqi(s1, 'oauth2')) return method === 'POST' && eqi(s3, 'token') ? 'token' : 'metadata';
  if (eqi(s1, 'v2.0') || eqi(s1, 'discovery') || s1 === '.well-known') return 'metadata';
  return 'arm';
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
