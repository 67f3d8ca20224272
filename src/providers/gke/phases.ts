/**
 * GKE phases. gsa mode: the Google service account, the workloadIdentityUser binding on it, project
 * roles for it. direct mode: project roles for the KSA's own principal. Then the Kubernetes
 * ServiceAccount (annotated in gsa mode).
 */
import { CloudError, RuntimeError, UsageError } from '../../core/errors.js';
import type { LivePhase, Phase, ProviderModule } from '../../core/phase.js';
import { subject } from '../../core/naming.js';
import type { GkeRequest } from '../../core/request.js';
import { serviceAccountSetupPhase, serviceAccountTeardownPhase, type SaIdentity, type ServiceAccountContext } from '../../kube/phase.js';
import {
  GSA_ANNOTATION,
  WORKLOAD_IDENTITY_USER,
  buildAnnotations,
  buildProjectRoleBinding,
  buildServiceAccount,
  buildWorkloadIdentityBinding,
  gsaProject,
  gsaResource,
  ksaMember,
  roleMember,
} from './build.js';
import type { GcpApi, GkeCluster, IamPolicy } from './client.js';
import { addMember, hasMember, removeMember, rolesOf } from './policy.js';

export interface GkeContext extends ServiceAccountContext {
  gcp: GcpApi;
  /** Teardown: also delete the Google service account when wid created it and nothing else is bound to it. */
  deleteGsa?: boolean;
  /** Base pause between retries (ms): 409 ABORTED read-modify-writes, a new account not visible yet. */
  retryDelayMs?: number;
  /** How long a new service account may stay invisible before wid gives up (ms). */
  visibilityTimeoutMs?: number;
  /** The project policy as planning read it, shared by the project-role steps. */
  projectPolicyRead?: Promise<IamPolicy>;
}

/** The marker in the description of a Google service account wid created. */
export const GSA_MARKER = '[managed by wid]';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const isStatus = (e: unknown, status: number, code?: string): boolean => e instanceof CloudError && e.status === status && (code === undefined || e.cloudCode === code);

/**
 * Read-modify-write of an IAM policy: read (version 3), change, write with the read's etag. A
 * concurrent writer makes the write fail with 409 ABORTED ("There were concurrent policy changes.
 * Please retry the whole read-modify-write with exponential backoff."): then the whole cycle runs
 * again on the new policy, so both changes survive. Returns false when nothing needed changing.
 */
async function readModifyWrite(ctx: GkeContext, read: () => Promise<IamPolicy>, write: (p: IamPolicy) => Promise<IamPolicy>, change: (p: IamPolicy) => IamPolicy | undefined): Promise<boolean> {
  const base = ctx.retryDelayMs ?? 1000;
  for (let attempt = 1; ; attempt++) {
    const current = await read();
    const next = change(current);
    if (!next) return false;
    try {
      await write({ ...next, etag: current.etag });
      return true;
    } catch (e) {
      if (!isStatus(e, 409) || attempt >= 6) throw e;
      await sleep(base * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
    }
  }
}

/**
 * A service account just created can answer 404 for a minute or more ("could take 60 seconds or
 * more"); retries `fn` on 404 with backoff, within a bound.
 */
async function whenVisible<T>(ctx: GkeContext, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + (ctx.visibilityTimeoutMs ?? 120_000);
  let delay = ctx.retryDelayMs ?? 1000;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!isStatus(e, 404) || Date.now() + delay > deadline) throw e;
      await sleep(delay);
      delay = Math.min(delay * 2, 15_000);
    }
  }
}

const gsaOf = (req: GkeRequest): string | undefined => (req.mode === 'gsa' ? req.gsa : undefined);

const serviceAccount: Phase<GkeRequest, GkeContext> = {
  name: 'service-account',
  description: 'Google service account the KSA impersonates (gsa mode)',
  build: (req) => {
    const gsa = gsaOf(req);
    return gsa ? [{ phase: 'service-account', action: 'ensure', resource: gsaResource(gsa), desired: buildServiceAccount(req, gsa) }] : [];
  },
  async plan(req, ctx) {
    const gsa = gsaOf(req);
    if (!gsa) return [];
    const existing = await ctx.gcp.getServiceAccount(gsa);
    if (existing) return [{ phase: 'service-account', action: 'noop', resource: existing.name || gsaResource(gsa), desired: { email: existing.email } }];
    return [{ phase: 'service-account', action: 'create', resource: gsaResource(gsa), desired: buildServiceAccount(req, gsa) }];
  },
  async apply(_step, req, ctx) {
    const gsa = gsaOf(req)!;
    const body = buildServiceAccount(req, gsa) as { accountId: string; serviceAccount: { displayName: string; description: string } };
    try {
      await ctx.gcp.createServiceAccount(gsaProject(gsa), body.accountId, body.serviceAccount);
    } catch (e) {
      // "Service account X already exists within project projects/P.": created meanwhile; read it below.
      if (!isStatus(e, 409)) throw e;
    }
    await whenVisible(ctx, async () => {
      if (!(await ctx.gcp.getServiceAccount(gsa))) throw new CloudError('gcp', 'serviceAccounts.get', 'NOT_FOUND', `service account ${gsa} is not visible yet`, { status: 404 });
    });
  },
};

const iamBinding: Phase<GkeRequest, GkeContext> = {
  name: 'iam-binding',
  description: 'roles/iam.workloadIdentityUser for the KSA on the Google service account (gsa mode)',
  build: (req) => {
    const gsa = gsaOf(req);
    return gsa ? [{ phase: 'iam-binding', action: 'ensure', resource: gsaResource(gsa), desired: buildWorkloadIdentityBinding(req) }] : [];
  },
  async plan(req, ctx) {
    const gsa = gsaOf(req);
    if (!gsa) return [];
    const resource = gsaResource(gsa);
    const desired = buildWorkloadIdentityBinding(req);
    if (!(await ctx.gcp.getServiceAccount(gsa))) return [{ phase: 'iam-binding', action: 'create', resource, desired }];
    const policy = await ctx.gcp.getServiceAccountPolicy(gsa);
    const action = hasMember(policy, WORKLOAD_IDENTITY_USER, ksaMember(req)) ? 'noop' : 'update';
    return [{ phase: 'iam-binding', action, resource, desired, ...(action === 'update' ? { note: 'add the member; every other binding stays' } : {}) }];
  },
  async apply(_step, req, ctx) {
    const gsa = gsaOf(req)!;
    const member = ksaMember(req);
    await whenVisible(ctx, () =>
      readModifyWrite(
        ctx,
        () => ctx.gcp.getServiceAccountPolicy(gsa),
        (p) => ctx.gcp.setServiceAccountPolicy(gsa, p),
        (p) => (hasMember(p, WORKLOAD_IDENTITY_USER, member) ? undefined : addMember(p, WORKLOAD_IDENTITY_USER, member)),
      ),
    );
  },
};

function projectPolicy(req: GkeRequest, ctx: GkeContext): Promise<IamPolicy> {
  ctx.projectPolicyRead ??= ctx.gcp.getProjectPolicy(req.project);
  return ctx.projectPolicyRead;
}

const projectRole: Phase<GkeRequest, GkeContext> = {
  name: 'project-role',
  description: 'roles granted on the project (--role) to the GSA or the KSA principal',
  build: (req) =>
    req.roles.map((role) => ({ phase: 'project-role', action: 'ensure' as const, resource: `projects/${req.project}`, desired: buildProjectRoleBinding(req, role) })),
  async plan(req, ctx) {
    if (req.roles.length === 0) return [];
    const policy = await projectPolicy(req, ctx);
    const member = roleMember(req);
    return req.roles.map((role) => ({
      phase: 'project-role',
      action: hasMember(policy, role, member) ? ('noop' as const) : ('update' as const),
      resource: `projects/${req.project}`,
      desired: buildProjectRoleBinding(req, role),
    }));
  },
  async apply(step, req, ctx) {
    const { role } = step.desired as { role: string };
    const member = roleMember(req);
    // A new Google service account may not be known to IAM yet: "Service account X does not exist."
    // (400) for a while after it was created, so that answer is retried like a 404.
    await whenVisible(ctx, async () => {
      try {
        return await readModifyWrite(
          ctx,
          () => ctx.gcp.getProjectPolicy(req.project),
          (p) => ctx.gcp.setProjectPolicy(req.project, p),
          (p) => (hasMember(p, role, member) ? undefined : addMember(p, role, member)),
        );
      } catch (e) {
        if (req.mode === 'gsa' && e instanceof CloudError && e.status === 400 && /does not exist/i.test(e.message)) {
          throw new CloudError('gcp', e.operation, 'NOT_FOUND', e.message, { status: 404, cause: e });
        }
        throw e;
      }
    });
  },
};

const saIdentity = (req: GkeRequest): SaIdentity =>
  req.mode === 'gsa'
    ? { key: GSA_ANNOTATION, value: req.gsa, owned: [GSA_ANNOTATION] }
    : {
        key: GSA_ANNOTATION,
        value: undefined,
        owned: [GSA_ANNOTATION],
        conflict: 'in direct mode the pods would impersonate that service account instead; --override removes the annotation',
      };

const kubeServiceAccount = { ...serviceAccountSetupPhase<GkeRequest, GkeContext>(saIdentity), name: 'service-account', description: 'the Kubernetes ServiceAccount in the cluster', build: () => [] };

export const gke: ProviderModule<GkeRequest, GkeContext> = {
  id: 'gke',
  binding: (req) => ({
    issuer: req.issuer ?? null,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: req.workloadPool,
  }),
  phases: [serviceAccount, iamBinding, projectRole, kubeServiceAccount],
  manifestValues: (req) => ({ serviceAccountAnnotations: buildAnnotations(req), podLabels: {} }),
  inject: () => {
    // Validation rejects --inject for GKE before a plan is built; this guards direct callers.
    throw new UsageError('WID_E_INPUT_CONFLICT', '--inject does not apply to gke: GKE serves tokens from its metadata server, with no projected token to inject', { flag: '--inject' });
  },
};

/**
 * The cluster's facts: workload identity must be enabled (its pool is the cluster's, never derived);
 * node pools not on the GKE metadata server are named in warnings with the command that fixes them.
 */
export async function readCluster(gcp: GcpApi, project: string, location: string, name: string): Promise<{ cluster: GkeCluster; workloadPool: string; warnings: string[] }> {
  const cluster = await gcp.getCluster(project, location, name);
  if (!cluster.workloadPool) {
    throw new RuntimeError('WID_E_GCP_NO_WORKLOAD_POOL', `GKE cluster ${name} does not have Workload Identity Federation enabled (no workloadIdentityConfig.workloadPool)`, {
      hint: `enable it: gcloud container clusters update ${name} --location=${location} --project=${project} --workload-pool=${project}.svc.id.goog`,
    });
  }
  const warnings = cluster.autopilot
    ? []
    : cluster.nodePools
        .filter((p) => p.mode !== 'GKE_METADATA')
        .map(
          (p) =>
            `node pool ${p.name} runs without the GKE metadata server (workloadMetadataConfig.mode ${p.mode ?? 'unset'}): its pods get the node's identity, not this one; fix it with gcloud container node-pools update ${p.name} --cluster=${name} --location=${location} --workload-metadata=GKE_METADATA (this recreates the pool's nodes)`,
        );
  return { cluster, workloadPool: cluster.workloadPool, warnings };
}

// ---- teardown ----

const iamBindingTeardown: LivePhase<GkeRequest, GkeContext> = {
  name: 'iam-binding',
  async plan(req, ctx) {
    const gsa = gsaOf(req);
    if (!gsa) return [];
    const resource = gsaResource(gsa);
    if (!(await ctx.gcp.getServiceAccount(gsa))) return [{ phase: 'iam-binding', action: 'noop', resource, desired: {}, note: 'service account not found' }];
    const has = hasMember(await ctx.gcp.getServiceAccountPolicy(gsa), WORKLOAD_IDENTITY_USER, ksaMember(req));
    return [{ phase: 'iam-binding', action: has ? 'delete' : 'noop', resource, desired: has ? buildWorkloadIdentityBinding(req) : {}, ...(has ? {} : { note: 'no such member' }) }];
  },
  async apply(_step, req, ctx) {
    const gsa = gsaOf(req)!;
    const member = ksaMember(req);
    await readModifyWrite(
      ctx,
      () => ctx.gcp.getServiceAccountPolicy(gsa),
      (p) => ctx.gcp.setServiceAccountPolicy(gsa, p),
      (p) => (hasMember(p, WORKLOAD_IDENTITY_USER, member) ? removeMember(p, WORKLOAD_IDENTITY_USER, member) : undefined),
    );
  },
};

/** Which project roles teardown takes from the member: --role when given, else every role it holds when the member is wid's alone. */
async function rolesToRemove(req: GkeRequest, ctx: GkeContext): Promise<{ roles: string[]; note?: string }> {
  const held = rolesOf(await projectPolicy(req, ctx), roleMember(req));
  if (req.roles.length > 0) return { roles: held.filter((r) => req.roles.includes(r)) };
  if (req.mode === 'direct') return { roles: held };
  const gsa = await ctx.gcp.getServiceAccount(req.gsa!);
  if (gsa?.description?.includes(GSA_MARKER)) return { roles: held };
  return { roles: [], ...(held.length > 0 ? { note: `the service account is not wid's: pass --role to remove its grants (${held.join(', ')})` } : {}) };
}

const projectRoleTeardown: LivePhase<GkeRequest, GkeContext> = {
  name: 'project-role',
  async plan(req, ctx) {
    const { roles, note } = await rolesToRemove(req, ctx);
    const resource = `projects/${req.project}`;
    if (roles.length === 0) return [{ phase: 'project-role', action: 'noop', resource, desired: {}, note: note ?? 'no grants to remove' }];
    return roles.map((role) => ({ phase: 'project-role', action: 'delete' as const, resource, desired: buildProjectRoleBinding(req, role) }));
  },
  async apply(step, req, ctx) {
    const { role } = step.desired as { role: string };
    const member = roleMember(req);
    await readModifyWrite(
      ctx,
      () => ctx.gcp.getProjectPolicy(req.project),
      (p) => ctx.gcp.setProjectPolicy(req.project, p),
      (p) => (hasMember(p, role, member) ? removeMember(p, role, member) : undefined),
    );
  },
};

const gsaTeardown: LivePhase<GkeRequest, GkeContext> = {
  name: 'service-account',
  async plan(req, ctx) {
    const gsa = gsaOf(req);
    if (!gsa) return [];
    const resource = gsaResource(gsa);
    if (!ctx.deleteGsa) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'kept (--delete-gsa removes it when wid created it and nothing else is bound to it)' }];
    const existing = await ctx.gcp.getServiceAccount(gsa);
    if (!existing) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'not found' }];
    if (!existing.description?.includes(GSA_MARKER)) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'not created by wid; kept' }];
    const policy = removeMember(await ctx.gcp.getServiceAccountPolicy(gsa), WORKLOAD_IDENTITY_USER, ksaMember(req));
    const others = (policy.bindings ?? []).flatMap((b) => b.members);
    if (others.length > 0) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: `still bound to ${others.join(', ')}; kept` }];
    return [{ phase: 'service-account', action: 'delete', resource, desired: { email: gsa } }];
  },
  apply: (_step, req, ctx) => ctx.gcp.deleteServiceAccount(req.gsa!),
};

/** Teardown phases, in order: the Kubernetes ServiceAccount, then the grants, the binding, the account. */
export const gkeTeardownPhases: LivePhase<GkeRequest, GkeContext>[] = [
  { ...serviceAccountTeardownPhase<GkeRequest, GkeContext>(saIdentity) },
  projectRoleTeardown,
  iamBindingTeardown,
  gsaTeardown,
];

