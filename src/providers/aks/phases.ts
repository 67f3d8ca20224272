/**
 * AKS phases, in order: the identity, then its federated credential (the identity must exist first:
 * "The parent user-assigned identity doesn't exist."), then role assignments for its principal, then
 * the ServiceAccount that names its client id.
 */
import { CloudError, RuntimeError } from '../../core/errors.js';
import type { LivePhase, Phase, ProviderModule } from '../../core/phase.js';
import type { Step } from '../../core/plan.js';
import { subject } from '../../core/naming.js';
import type { AksRequest, AzureRoleAssignmentRequest } from '../../core/request.js';
import { serviceAccountSetupPhase, serviceAccountTeardownPhase, type SaIdentity, type ServiceAccountContext } from '../../kube/phase.js';
import {
  AUDIENCE,
  CLIENT_ID_ANNOTATION,
  MANAGED_BY_TAGS,
  MAX_FEDERATED_CREDENTIALS,
  OWNED_ANNOTATIONS,
  ROLE_ASSIGNMENT_DESCRIPTION,
  USE_LABEL,
  buildAnnotations,
  buildFederatedCredential,
  buildManagedIdentity,
  buildRoleAssignment,
  federatedCredentialId,
  identityId,
  injectPod,
  roleAssignmentName,
  roleDefinitionId,
  roleGuid,
} from './build.js';
import type { AksCluster, AzureApi, FederatedCredential, ManagedIdentity } from './client.js';

export interface AksContext extends ServiceAccountContext {
  azure: AzureApi;
  /** Teardown: also delete the identity when it is wid's and holds no other credential. */
  deleteIdentity?: boolean;
  /** Retry pause for 409s on one identity's credentials (ms); tests shorten it. */
  retryDelayMs?: number;
  /** The identity as planning read it: read once, shared by the phases that need it. */
  identityRead?: Promise<ManagedIdentity | undefined>;
}

/**
 * The identity as it is before any change, read once per run. Its ids go into the request, so every
 * phase (and the ServiceAccount annotation) plans with them.
 */
export function observeIdentity(req: AksRequest, ctx: AksContext): Promise<ManagedIdentity | undefined> {
  ctx.identityRead ??= ctx.azure.getIdentity(req.resourceGroup, req.identity).then((identity) => {
    if (identity) adopt(req, identity);
    return identity;
  });
  return ctx.identityRead;
}

/** Copies the identity's ids into the request: later steps and the ServiceAccount annotation need them. */
function adopt(req: AksRequest, identity: ManagedIdentity): void {
  req.clientId = identity.clientId;
  req.principalId = identity.principalId;
  req.tenantId = identity.tenantId;
}

const isWids = (tags: Record<string, string>): boolean => tags['managed-by'] === MANAGED_BY_TAGS['managed-by'];

function matches(fic: FederatedCredential, want: ReturnType<typeof buildFederatedCredential>): boolean {
  // Exact comparison: Entra matches issuer and subject byte for byte (and subject case-sensitively).
  return fic.issuer === want.properties.issuer && fic.subject === want.properties.subject;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Writes to one identity's federated credentials must not overlap: ARM answers a concurrent write
 * with 409 Conflict. wid writes one at a time and retries a 409 with backoff (429s the SDK retries itself).
 */
async function retryConflicts<T>(ctx: AksContext, fn: () => Promise<T>): Promise<T> {
  const base = ctx.retryDelayMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const conflict = e instanceof CloudError && (e.status === 409 || e.status === 429) && e.cloudCode !== 'RoleAssignmentExists';
      if (!conflict || attempt >= 5) throw e;
      await sleep(base * 2 ** (attempt - 1));
    }
  }
}

const managedIdentity: Phase<AksRequest, AksContext> = {
  name: 'managed-identity',
  description: 'user-assigned managed identity the pods act as',
  build: (req) => [{ phase: 'managed-identity', action: 'ensure', resource: identityId(req), desired: buildManagedIdentity(req) }],
  async plan(req, ctx) {
    const existing = await observeIdentity(req, ctx);
    if (!existing) return [{ phase: 'managed-identity', action: 'create', resource: identityId(req), desired: buildManagedIdentity(req) }];
    return [{ phase: 'managed-identity', action: 'noop', resource: existing.id, desired: { location: existing.location, clientId: existing.clientId, principalId: existing.principalId } }];
  },
  async apply(_step, req, ctx) {
    // A PUT replaces the whole identity (tags included), so it is sent only when the identity is absent;
    // one created meanwhile by someone else is used as it is.
    const existing = await ctx.azure.getIdentity(req.resourceGroup, req.identity);
    const body = buildManagedIdentity(req) as { location: string; tags: Record<string, string> };
    adopt(req, existing ?? (await ctx.azure.createIdentity(req.resourceGroup, req.identity, body)));
  },
  async adopt(_step, req, ctx) {
    const identity = await ctx.azure.getIdentity(req.resourceGroup, req.identity);
    if (!identity) throw new RuntimeError('WID_E_AZURE_IDENTITY_GONE', `managed identity ${req.identity} was created by another binding of this run but cannot be read`, { hint: 'run the same command again' });
    adopt(req, identity);
  },
};

/** The credential step from the identity's credentials as they are now. */
async function planCredential(req: AksRequest, ctx: AksContext, identityExists: boolean): Promise<Step> {
  const want = buildFederatedCredential(req);
  const resource = federatedCredentialId(req);
  if (!identityExists) return { phase: 'federated-credential', action: 'create', resource, desired: want };
  const all = await ctx.azure.listFederatedCredentials(req.resourceGroup, req.identity);
  const same = all.find((f) => matches(f, want));
  if (same) {
    const ok = same.audiences.length === 1 && same.audiences[0] === AUDIENCE;
    const at = `${identityId(req)}/federatedIdentityCredentials/${same.name}`;
    if (ok) return { phase: 'federated-credential', action: 'noop', resource: at, desired: { name: same.name, properties: { issuer: same.issuer, subject: same.subject, audiences: same.audiences } } };
    return { phase: 'federated-credential', action: 'update', resource: at, desired: { name: same.name, properties: { ...want.properties } }, note: `audiences ${JSON.stringify(same.audiences)} become ["${AUDIENCE}"]` };
  }
  if (all.some((f) => f.name === want.name)) {
    return { phase: 'federated-credential', action: 'update', resource, desired: want, note: 'wid\'s credential of this name trusts another issuer or subject' };
  }
  if (all.length >= MAX_FEDERATED_CREDENTIALS) {
    throw new RuntimeError('WID_E_AZURE_FIC_LIMIT', `managed identity ${req.identity} already has ${all.length} federated credentials, Entra's maximum of ${MAX_FEDERATED_CREDENTIALS}`, {
      hint: 'use another identity (--identity), remove credentials that are no longer used (az identity federated-credential list/delete), or use AKS identity bindings',
    });
  }
  return { phase: 'federated-credential', action: 'create', resource, desired: want };
}

/** Credential steps planned while their identity did not exist yet. */
const onNewIdentity = new WeakSet<Step>();

const federatedCredential: Phase<AksRequest, AksContext> = {
  name: 'federated-credential',
  description: 'federated identity credential trusting the issuer and subject',
  build: (req) => [{ phase: 'federated-credential', action: 'ensure', resource: federatedCredentialId(req), desired: buildFederatedCredential(req) }],
  async plan(req, ctx) {
    const exists = (await observeIdentity(req, ctx)) !== undefined;
    const step = await planCredential(req, ctx, exists);
    if (!exists) onNewIdentity.add(step);
    return [step];
  },
  async apply(planned, req, ctx) {
    // On an identity this run creates there is nothing to compare with: no list first. Otherwise
    // decided again on the credentials as they are now.
    const step = onNewIdentity.has(planned) ? planned : await planCredential(req, ctx, true);
    if (step.action === 'noop') return;
    const d = step.desired as ReturnType<typeof buildFederatedCredential>;
    await retryConflicts(ctx, () => ctx.azure.putFederatedCredential(req.resourceGroup, req.identity, { name: d.name, ...d.properties }));
  },
};

/** Resolves a role name to its definition id (GUIDs and ids need no lookup). */
async function resolveRole(req: AksRequest, ctx: AksContext, ra: AzureRoleAssignmentRequest): Promise<string> {
  const known = roleDefinitionId(req, ra);
  if (known !== undefined) return known;
  const found = await ctx.azure.findRoleDefinition(ra.scope, ra.role);
  if (!found) {
    throw new CloudError('azure', 'roleDefinitions.list', 'RoleDefinitionNotFound', `no role named ${JSON.stringify(ra.role)} is defined at ${ra.scope}`, {
      hint: `check --role; list role names with: az role definition list --scope ${ra.scope} --query "[].roleName" -o tsv`,
    });
  }
  return found;
}

/** Which --role/--scope pair each planned create step is for. */
const assignmentOf = new WeakMap<Step, AzureRoleAssignmentRequest>();

const roleAssignment: Phase<AksRequest, AksContext> = {
  name: 'role-assignment',
  description: 'Azure role assignments for the identity (--role with --scope)',
  build: (req) =>
    req.roleAssignments.map((ra) => {
      const { resource, desired, pending } = buildRoleAssignment(req, ra);
      return { phase: 'role-assignment', action: 'ensure' as const, resource, desired, ...(Object.keys(pending).length > 0 ? { pending } : {}) };
    }),
  async plan(req, ctx) {
    if (req.roleAssignments.length === 0) return [];
    // Role names resolve first (so a wrong one fails before anything changes); the principal comes
    // from the identity, read here too because the phases plan concurrently.
    for (const ra of req.roleAssignments) ra.roleDefinitionId = await resolveRole(req, ctx, ra);
    const identity = await observeIdentity(req, ctx);
    const steps: Step[] = [];
    for (const ra of req.roleAssignments) {
      const view = { ...req, principalId: identity?.principalId };
      const { resource, desired, pending } = buildRoleAssignment(view, ra);
      if (identity) {
        const have = await ctx.azure.listRoleAssignments(ra.scope, identity.principalId);
        const same = have.find((a) => a.scope.toLowerCase() === ra.scope.toLowerCase() && roleGuid(a.roleDefinitionId) === roleGuid(ra.roleDefinitionId!));
        if (same) {
          steps.push({ phase: 'role-assignment', action: 'noop', resource: same.id, desired: { name: same.name, scope: same.scope, properties: { roleDefinitionId: same.roleDefinitionId, principalId: same.principalId } } });
          continue;
        }
      }
      const step: Step = { phase: 'role-assignment', action: 'create', resource, desired, ...(Object.keys(pending).length > 0 ? { pending } : {}) };
      assignmentOf.set(step, ra);
      steps.push(step);
    }
    return steps;
  },
  async apply(step, req, ctx) {
    const ra = assignmentOf.get(step)!;
    const defId = ra.roleDefinitionId ?? (await resolveRole(req, ctx, ra));
    const principalId = req.principalId!;
    try {
      await retryConflicts(ctx, () =>
        ctx.azure.createRoleAssignment(ra.scope, roleAssignmentName(ra.scope, principalId, defId), {
          roleDefinitionId: defId,
          principalId,
          principalType: 'ServicePrincipal',
          description: ROLE_ASSIGNMENT_DESCRIPTION,
        }),
      );
    } catch (e) {
      // "The role assignment already exists." under another name: the access is there, which is the goal.
      if (!(e instanceof CloudError && e.cloudCode === 'RoleAssignmentExists')) throw e;
    }
  },
};

const saIdentity = (req: AksRequest): SaIdentity => ({
  key: CLIENT_ID_ANNOTATION,
  value: req.clientId,
  pendingFrom: `clientId of managed identity ${req.identity}, once created`,
  owned: OWNED_ANNOTATIONS,
});

const serviceAccount = { ...serviceAccountSetupPhase<AksRequest, AksContext>(saIdentity), description: 'the annotated ServiceAccount in the cluster', build: () => [] };

export const aks: ProviderModule<AksRequest, AksContext> = {
  id: 'aks',
  binding: (req) => ({
    issuer: req.issuer,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: AUDIENCE,
  }),
  phases: [managedIdentity, federatedCredential, roleAssignment, serviceAccount],
  manifestValues: (req) => ({ serviceAccountAnnotations: buildAnnotations(req), podLabels: { [USE_LABEL]: 'true' } }),
  inject: injectPod,
};

/**
 * The cluster's facts: it must have the OIDC issuer and workload identity enabled. The issuer is used
 * byte for byte.
 */
export async function readCluster(azure: AzureApi, resourceGroup: string, name: string): Promise<AksCluster & { issuer: string }> {
  const cluster = await azure.getCluster(resourceGroup, name);
  const enable = `az aks update -g ${resourceGroup} -n ${name} --enable-oidc-issuer --enable-workload-identity`;
  if (!cluster.oidcIssuerEnabled || !cluster.issuer) {
    throw new RuntimeError('WID_E_AZURE_NO_ISSUER', `AKS cluster ${name} has no OIDC issuer enabled`, { hint: `enable it (and workload identity): ${enable}` });
  }
  if (!cluster.workloadIdentityEnabled) {
    throw new RuntimeError('WID_E_AZURE_WORKLOAD_IDENTITY_OFF', `AKS cluster ${name} does not have workload identity enabled (securityProfile.workloadIdentity.enabled is false)`, {
      hint: `enable it: ${enable}`,
    });
  }
  return { ...cluster, issuer: cluster.issuer };
}

// ---- teardown ----

const credentialTeardown: LivePhase<AksRequest, AksContext> = {
  name: 'federated-credential',
  async plan(req, ctx) {
    const identity = await ctx.azure.getIdentity(req.resourceGroup, req.identity);
    if (!identity) return [{ phase: 'federated-credential', action: 'noop', resource: federatedCredentialId(req), desired: {}, note: 'identity not found' }];
    const want = buildFederatedCredential(req);
    // Only wid's own credential (its deterministic name): one someone else made for the same issuer
    // and subject stays.
    const ours = (await ctx.azure.listFederatedCredentials(req.resourceGroup, req.identity)).filter((f) => f.name === want.name && matches(f, want));
    if (ours.length === 0) return [{ phase: 'federated-credential', action: 'noop', resource: federatedCredentialId(req), desired: {}, note: 'not found' }];
    return ours.map((f) => ({ phase: 'federated-credential', action: 'delete' as const, resource: `${identity.id}/federatedIdentityCredentials/${f.name}`, desired: { name: f.name } }));
  },
  apply: (step, req, ctx) => retryConflicts(ctx, () => ctx.azure.deleteFederatedCredential(req.resourceGroup, req.identity, String(step.desired.name))),
};

const roleAssignmentTeardown: LivePhase<AksRequest, AksContext> = {
  name: 'role-assignment',
  async plan(req, ctx) {
    const identity = await ctx.azure.getIdentity(req.resourceGroup, req.identity);
    if (!identity) return [];
    // The ones wid made carry its description; with --role/--scope, only those pairs.
    const scopes = req.roleAssignments.length > 0 ? [...new Set(req.roleAssignments.map((r) => r.scope))] : [`/subscriptions/${req.subscription}`];
    const seen = new Set<string>();
    const steps: Step[] = [];
    for (const scope of scopes) {
      for (const a of await ctx.azure.listRoleAssignments(scope, identity.principalId)) {
        if (seen.has(a.id.toLowerCase()) || a.description !== ROLE_ASSIGNMENT_DESCRIPTION) continue;
        if (req.roleAssignments.length > 0) {
          const wanted = await Promise.all(req.roleAssignments.filter((r) => r.scope.toLowerCase() === a.scope.toLowerCase()).map((r) => resolveRole(req, ctx, r)));
          if (!wanted.some((id) => roleGuid(id) === roleGuid(a.roleDefinitionId))) continue;
        }
        seen.add(a.id.toLowerCase());
        steps.push({ phase: 'role-assignment', action: 'delete', resource: a.id, desired: { scope: a.scope, roleDefinitionId: a.roleDefinitionId } });
      }
    }
    return steps;
  },
  apply: (step, _req, ctx) => ctx.azure.deleteRoleAssignment(step.resource),
};

const identityTeardown: LivePhase<AksRequest, AksContext> = {
  name: 'managed-identity',
  async plan(req, ctx) {
    const resource = identityId(req);
    if (!ctx.deleteIdentity) return [{ phase: 'managed-identity', action: 'noop', resource, desired: {}, note: 'kept (--delete-identity removes it when wid created it and it holds no other credential)' }];
    const identity = await ctx.azure.getIdentity(req.resourceGroup, req.identity);
    if (!identity) return [{ phase: 'managed-identity', action: 'noop', resource, desired: {}, note: 'not found' }];
    if (!isWids(identity.tags)) return [{ phase: 'managed-identity', action: 'noop', resource, desired: {}, note: 'not created by wid; kept' }];
    const want = buildFederatedCredential(req);
    const others = (await ctx.azure.listFederatedCredentials(req.resourceGroup, req.identity)).filter((f) => !matches(f, want));
    if (others.length > 0) return [{ phase: 'managed-identity', action: 'noop', resource, desired: {}, note: `still holds credential ${others.map((f) => f.name).join(', ')}; kept` }];
    return [{ phase: 'managed-identity', action: 'delete', resource, desired: {} }];
  },
  apply: (_step, req, ctx) => ctx.azure.deleteIdentity(req.resourceGroup, req.identity),
};

/** Teardown phases, in order: the ServiceAccount first, then the access, the trust, the identity. */
export const aksTeardownPhases: LivePhase<AksRequest, AksContext>[] = [
  serviceAccountTeardownPhase<AksRequest, AksContext>((req) => ({ key: CLIENT_ID_ANNOTATION, value: req.clientId, owned: OWNED_ANNOTATIONS })),
  roleAssignmentTeardown,
  credentialTeardown,
  identityTeardown,
];
