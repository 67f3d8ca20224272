/**
 * Pure builders for AKS workload identity: the user-assigned managed identity, its federated identity
 * credential, role assignments, the ServiceAccount annotations, the Pod label and the webhook's
 * mutation. No SDK, no I/O.
 */
import type { KubeObject } from '../../core/phase.js';
import { federatedCredentialName, subject, uuidV5 } from '../../core/naming.js';
import type { AksRequest, AzureRoleAssignmentRequest } from '../../core/request.js';
import { isGuid } from '../../core/validate.js';
import { ensureContainerEnv, ensureMount, ensureVolume, podContainers } from '../../kube/pod.js';

/** Entra accepts exactly one audience for a federated credential, and it is this one. */
export const AUDIENCE = 'api://AzureADTokenExchange';
export const CLIENT_ID_ANNOTATION = 'azure.workload.identity/client-id';
export const TENANT_ID_ANNOTATION = 'azure.workload.identity/tenant-id';
/** wid's own annotations on an AKS ServiceAccount (teardown removes exactly these). */
export const OWNED_ANNOTATIONS = [CLIENT_ID_ANNOTATION, TENANT_ID_ANNOTATION];
/** The webhook's objectSelector matches this Pod label, exactly the string "true". */
export const USE_LABEL = 'azure.workload.identity/use';
/** Entra's limit of federated credentials per managed identity. */
export const MAX_FEDERATED_CREDENTIALS = 20;
/** Marks the role assignments wid made, so teardown removes those and no others. */
export const ROLE_ASSIGNMENT_DESCRIPTION = 'workload identity [managed by wid]';

/**
 * `--inject` layout: the path documented by AKS and used by webhook v1.0-v1.5 (pkg/webhook/consts.go).
 * Later webhook versions moved it, but with no webhook in the cluster only the Pod and the SDK read it.
 */
export const TOKEN_VOLUME = 'azure-identity-token';
export const TOKEN_MOUNT_PATH = '/var/run/secrets/azure/tokens';
export const TOKEN_PATH = 'azure-identity-token';
/** The webhook's default token lifetime (it accepts 3600-86400). */
export const TOKEN_EXPIRATION = 3600;
export const AUTHORITY_HOST = 'https://login.microsoftonline.com/';

export const MANAGED_BY_TAGS = { 'managed-by': 'wid' };

export function identityId(req: Pick<AksRequest, 'subscription' | 'resourceGroup' | 'identity'>): string {
  return `/subscriptions/${req.subscription}/resourceGroups/${req.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${req.identity}`;
}

/** The managed identity PUT body. */
export function buildManagedIdentity(req: AksRequest): Record<string, unknown> {
  const tags: Record<string, string> = { ...MANAGED_BY_TAGS, ...(req.cluster === undefined ? {} : { 'wid-cluster': req.cluster }) };
  return { ...(req.location === undefined ? {} : { location: req.location }), tags };
}

export function buildFederatedCredential(req: AksRequest): { name: string; properties: { issuer: string; subject: string; audiences: string[] } } {
  return {
    name: federatedCredentialName(req.issuer, req.namespace, req.serviceAccount),
    properties: {
      // Byte for byte: Entra compares it with the token's iss, and AKS issuers end in "/".
      issuer: req.issuer,
      subject: subject(req.namespace, req.serviceAccount),
      audiences: [AUDIENCE],
    },
  };
}

export function federatedCredentialId(req: AksRequest): string {
  return `${identityId(req)}/federatedIdentityCredentials/${buildFederatedCredential(req).name}`;
}

/** A role GUID or full definition id as the roleDefinitionId ARM wants; a name needs a lookup (live). */
export function roleDefinitionId(req: Pick<AksRequest, 'subscription'>, ra: AzureRoleAssignmentRequest): string | undefined {
  if (ra.roleDefinitionId !== undefined) return ra.roleDefinitionId;
  if (ra.role.startsWith('/')) return ra.role;
  if (isGuid(ra.role)) return `/subscriptions/${req.subscription}/providers/Microsoft.Authorization/roleDefinitions/${ra.role.toLowerCase()}`;
  return undefined;
}

/** The GUID of a role definition id, which names the same role whatever scope prefix the id carries. */
export function roleGuid(definitionId: string): string {
  return (definitionId.split('/').pop() ?? definitionId).toLowerCase();
}

/**
 * Deterministic assignment name, a GUID from scope, principal and role, so a re-run finds the
 * assignment it made.
 */
export function roleAssignmentName(scope: string, principalId: string, definitionId: string): string {
  return uuidV5(`${scope.toLowerCase()}|${principalId.toLowerCase()}|${roleGuid(definitionId)}`);
}

/**
 * The role assignment PUT body. principalType ServicePrincipal makes ARM skip the directory lookup
 * that fails with PrincipalNotFound for a freshly created identity. What only Azure can tell (the
 * principal of an identity not yet created, a role name's id) is listed as pending.
 */
export function buildRoleAssignment(req: AksRequest, ra: AzureRoleAssignmentRequest): { resource: string; desired: Record<string, unknown>; pending: Record<string, string> } {
  const properties: Record<string, unknown> = {};
  const pending: Record<string, string> = {};
  const defId = roleDefinitionId(req, ra);
  if (defId === undefined) pending['properties.roleDefinitionId'] = `the id of the role named ${JSON.stringify(ra.role)}, looked up at ${ra.scope}`;
  else properties.roleDefinitionId = defId;
  if (req.principalId === undefined) pending['properties.principalId'] = `the principalId of managed identity ${req.identity}`;
  else properties.principalId = req.principalId;
  properties.principalType = 'ServicePrincipal';
  properties.description = ROLE_ASSIGNMENT_DESCRIPTION;
  const base = `${ra.scope}/providers/Microsoft.Authorization/roleAssignments`;
  if (defId === undefined || req.principalId === undefined) {
    pending.name = 'a GUID from the scope, principal and role, once both are known';
    return { resource: base, desired: { scope: ra.scope, properties }, pending };
  }
  const name = roleAssignmentName(ra.scope, req.principalId, defId);
  return { resource: `${base}/${name}`, desired: { name, scope: ra.scope, properties }, pending };
}

export function buildAnnotations(req: AksRequest): Record<string, string> {
  const a: Record<string, string> = {};
  if (req.clientId !== undefined) a[CLIENT_ID_ANNOTATION] = req.clientId;
  if (req.tenantId !== undefined) a[TENANT_ID_ANNOTATION] = req.tenantId;
  return a;
}

/**
 * What the azure-workload-identity webhook injects (pkg/webhook/webhook.go), for clusters without it:
 * env in the webhook's order, appended only where the name is absent, the token mount and the
 * projected token volume. The Pod then carries no `azure.workload.identity/use` label, since no
 * webhook should act on it.
 */
export function injectPod(pod: KubeObject, req: AksRequest): void {
  for (const c of podContainers(pod)) {
    ensureContainerEnv(c, [
      ...(req.clientId === undefined ? [] : [['AZURE_CLIENT_ID', req.clientId] as [string, string]]),
      ...(req.tenantId === undefined ? [] : [['AZURE_TENANT_ID', req.tenantId] as [string, string]]),
      ['AZURE_FEDERATED_TOKEN_FILE', `${TOKEN_MOUNT_PATH}/${TOKEN_PATH}`],
      ['AZURE_AUTHORITY_HOST', AUTHORITY_HOST],
    ]);
    ensureMount(c, { name: TOKEN_VOLUME, readOnly: true, mountPath: TOKEN_MOUNT_PATH });
  }
  ensureVolume(pod, {
    name: TOKEN_VOLUME,
    projected: { sources: [{ serviceAccountToken: { path: TOKEN_PATH, expirationSeconds: TOKEN_EXPIRATION, audience: AUDIENCE } }] },
  });
  const meta = pod.metadata as Record<string, unknown> | undefined;
  const labels = meta?.labels as Record<string, unknown> | undefined;
  if (labels && USE_LABEL in labels) {
    delete labels[USE_LABEL];
    if (Object.keys(labels).length === 0) delete meta!.labels;
  }
}
