/**
 * GKE phases. gsa mode: the Google service account, the workloadIdentityUser binding on it, project
 * roles for it. direct mode: project roles for the KSA's own principal. Then the Kubernetes
 * ServiceAccount (annotated in gsa mode).
 */
import type { Change, GroupCommit } from '../../core/concurrency.js';
import { CloudError, RuntimeError, UsageError } from '../../core/errors.js';
import type { LivePhase, Phase, ProviderModule } from '../../core/phase.js';
import { subject } from '../../core/naming.js';
import type { GkeRequest } from '../../core/request.js';
import { plannedServiceAccount, serviceAccountSetupPhase, serviceAccountTeardownPhase, type SaIdentity, type ServiceAccountContext } from '../../kube/phase.js';
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
import type { GcpApi, GkeCluster, GoogleServiceAccount, IamPolicy } from './client.js';
import { GRANTS_ANNOTATION, formatGrants, mergeGrants, parseGrants, recorded, type Grant } from './grants.js';
import { addMember, hasMember, removeMember, rolesOf } from './policy.js';

export interface GkeContext extends ServiceAccountContext {
  gcp: GcpApi;
  /** Teardown: also delete the Google service account when wid created it and nothing else is bound to it. */
  deleteGsa?: boolean;
  /** Base pause between retries (ms): 409 ABORTED read-modify-writes, a new account not visible yet. */
  retryDelayMs?: number;
  /** How long a new service account may stay invisible before wid gives up (ms). */
  visibilityTimeoutMs?: number;
  /** Reads planning shares (each made once per run); applies read afresh. */
  projectPolicyRead?: Promise<IamPolicy>;
  gsaRead?: Promise<GoogleServiceAccount | undefined>;
  gsaPolicyRead?: Promise<IamPolicy | undefined>;
  /** Set when many bindings run at once: changes to one policy are written together. */
  groupCommit?: GroupCommit;
  /** The grants this setup will add (absent when planned), for the ServiceAccount's record. */
  grantsToAdd?: Promise<Grant[]>;
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
async function readModifyWrite(ctx: GkeContext, read: () => Promise<IamPolicy>, write: (p: IamPolicy) => Promise<IamPolicy>, change: Change<IamPolicy>): Promise<boolean> {
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
 * One change to one IAM policy, made by `commit` (a read-modify-write). With many bindings in one run,
 * changes to the same policy (`key`) that arrive while it is being written are combined into the next
 * read-modify-write.
 */
function changePolicy(ctx: GkeContext, key: string, change: Change<IamPolicy>, commit: (combined: Change<IamPolicy>) => Promise<unknown>): Promise<unknown> {
  return ctx.groupCommit ? ctx.groupCommit.run(key, change, commit) : commit(change);
}

/** Read-modify-write of the Google service account's IAM policy, for changePolicy's commit. */
const gsaPolicyWrite = (ctx: GkeContext, gsa: string) => (change: Change<IamPolicy>): Promise<boolean> =>
  readModifyWrite(ctx, () => ctx.gcp.getServiceAccountPolicy(gsa), (p) => ctx.gcp.setServiceAccountPolicy(gsa, p), change);

/** Read-modify-write of the project's IAM policy, for changePolicy's commit. */
const projectPolicyWrite = (ctx: GkeContext, project: string) => (change: Change<IamPolicy>): Promise<boolean> =>
  readModifyWrite(ctx, () => ctx.gcp.getProjectPolicy(project), (p) => ctx.gcp.setProjectPolicy(project, p), change);

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

/** The Google service account as planning sees it (read once per run). */
function plannedGsa(gsa: string, ctx: GkeContext): Promise<GoogleServiceAccount | undefined> {
  ctx.gsaRead ??= ctx.gcp.getServiceAccount(gsa);
  return ctx.gsaRead;
}

/** Its IAM policy as planning sees it; undefined when the account does not exist. */
function plannedGsaPolicy(gsa: string, ctx: GkeContext): Promise<IamPolicy | undefined> {
  ctx.gsaPolicyRead ??= plannedGsa(gsa, ctx).then((sa) => (sa ? ctx.gcp.getServiceAccountPolicy(gsa) : undefined));
  return ctx.gsaPolicyRead;
}

const workloadIdentityGrant = (req: GkeRequest, gsa: string): Grant => ({ resource: gsaResource(gsa), role: WORKLOAD_IDENTITY_USER, member: ksaMember(req) });
const projectGrant = (req: GkeRequest, role: string): Grant => ({ resource: `projects/${req.project}`, role, member: roleMember(req) });

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
    const existing = await plannedGsa(gsa, ctx);
    if (existing) return [{ phase: 'service-account', action: 'noop', resource: existing.name || gsaResource(gsa), desired: { email: existing.email } }];
    return [{ phase: 'service-account', action: 'create', resource: gsaResource(gsa), desired: buildServiceAccount(req, gsa) }];
  },
  async apply(_step, req, ctx) {
    const gsa = gsaOf(req)!;
    const body = buildServiceAccount(req, gsa) as { accountId: string; serviceAccount: { displayName: string; description: string } };
    try {
      await ctx.gcp.createServiceAccount(gsaProject(gsa), body.accountId, body.serviceAccount);
    } catch (e) {
      // "Service account X already exists within project projects/P.": created meanwhile, which is the goal.
      if (!isStatus(e, 409)) throw e;
    }
    // A new account may answer 404 for a while: the steps that use it next wait for it (whenVisible).
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
    const policy = await plannedGsaPolicy(gsa, ctx);
    if (!policy) return [{ phase: 'iam-binding', action: 'create', resource, desired }];
    const action = hasMember(policy, WORKLOAD_IDENTITY_USER, ksaMember(req)) ? 'noop' : 'update';
    return [{ phase: 'iam-binding', action, resource, desired, ...(action === 'update' ? { note: 'add the member; every other binding stays' } : {}) }];
  },
  async apply(_step, req, ctx) {
    const gsa = gsaOf(req)!;
    const member = ksaMember(req);
    await changePolicy(
      ctx,
      `serviceAccount ${gsa}`,
      (p) => (hasMember(p, WORKLOAD_IDENTITY_USER, member) ? undefined : addMember(p, WORKLOAD_IDENTITY_USER, member)),
      (change) => whenVisible(ctx, () => gsaPolicyWrite(ctx, gsa)(change)),
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
    await changePolicy(
      ctx,
      `project ${req.project} ${req.mode}`,
      (p) => (hasMember(p, role, member) ? undefined : addMember(p, role, member)),
      (change) =>
        whenVisible(ctx, async () => {
          try {
            return await projectPolicyWrite(ctx, req.project)(change);
          } catch (e) {
            if (req.mode === 'gsa' && e instanceof CloudError && e.status === 400 && /does not exist/i.test(e.message)) {
              throw new CloudError('gcp', e.operation, 'NOT_FOUND', e.message, { status: 404, cause: e });
            }
            throw e;
          }
        }),
    );
  },
};

const saIdentity = (req: GkeRequest): SaIdentity =>
  req.mode === 'gsa'
    ? { key: GSA_ANNOTATION, value: req.gsa, owned: [GSA_ANNOTATION, GRANTS_ANNOTATION] }
    : {
        key: GSA_ANNOTATION,
        value: undefined,
        owned: [GSA_ANNOTATION, GRANTS_ANNOTATION],
        conflict: 'in direct mode the pods would impersonate that service account instead; --override removes the annotation',
      };

/** The grants this run adds: each one wid manages that is absent from its policy as planning read it. */
function grantsToAdd(req: GkeRequest, ctx: GkeContext): Promise<Grant[]> {
  ctx.grantsToAdd ??= (async () => {
    const out: Grant[] = [];
    const gsa = gsaOf(req);
    if (gsa) {
      const policy = await plannedGsaPolicy(gsa, ctx);
      if (!policy || !hasMember(policy, WORKLOAD_IDENTITY_USER, ksaMember(req))) out.push(workloadIdentityGrant(req, gsa));
    }
    if (req.roles.length > 0) {
      const policy = await projectPolicy(req, ctx);
      for (const role of req.roles) if (!hasMember(policy, role, roleMember(req))) out.push(projectGrant(req, role));
    }
    return out;
  })();
  return ctx.grantsToAdd;
}

const annotationsOf = (o: Record<string, unknown> | undefined): Record<string, string> | undefined =>
  ((o?.metadata ?? {}) as { annotations?: Record<string, string> }).annotations;

/** The record to write: the one the ServiceAccount holds (`current`) plus this run's additions. */
function recordFor(current: Record<string, unknown> | undefined, added: Grant[]): Record<string, string> {
  const held = parseGrants(annotationsOf(current));
  return { [GRANTS_ANNOTATION]: formatGrants(mergeGrants(Array.isArray(held) ? held : [], added)) };
}

const kubeServiceAccountSetup = serviceAccountSetupPhase<GkeRequest, GkeContext>(saIdentity);

/**
 * The Kubernetes ServiceAccount, planned and applied FIRST: it carries wid's record of the grants it
 * is about to add (wid/gcp-grants), written ahead of them so that teardown can always find them.
 */
const kubeServiceAccount: Phase<GkeRequest, GkeContext> = {
  name: 'service-account',
  description: 'the Kubernetes ServiceAccount in the cluster, with wid\'s record of its grants',
  build: () => [],
  async plan(req, ctx) {
    if (!ctx.kube || !ctx.serviceAccount) return [];
    const added = await grantsToAdd(req, ctx);
    // At plan and again at apply, on the ServiceAccount as it is then (another run may have added to it).
    ctx.extraAnnotations = (current) => recordFor(current, added);
    return kubeServiceAccountSetup.plan(req, ctx);
  },
  apply: (step, req, ctx) => kubeServiceAccountSetup.apply(step, req, ctx),
};

export const gke: ProviderModule<GkeRequest, GkeContext> = {
  id: 'gke',
  binding: (req) => ({
    issuer: req.issuer ?? null,
    namespace: req.namespace,
    serviceAccount: req.serviceAccount,
    subject: subject(req.namespace, req.serviceAccount),
    audience: req.workloadPool,
  }),
  phases: [kubeServiceAccount, serviceAccount, iamBinding, projectRole],
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

/**
 * What teardown knows of wid's grants: the ServiceAccount's record, or undefined when it has none
 * (no ServiceAccount, a setup with --out, or a record edited into something unreadable), with why.
 */
async function recordedGrants(req: GkeRequest, ctx: GkeContext): Promise<{ grants?: Grant[]; why?: string }> {
  const sa = await plannedServiceAccount(req, ctx);
  if (!sa) return { why: `ServiceAccount ${req.namespace}/${req.serviceAccount} not found` };
  const held = parseGrants(annotationsOf(sa));
  if (held === undefined) return { why: `ServiceAccount ${req.namespace}/${req.serviceAccount} has no ${GRANTS_ANNOTATION} annotation` };
  if (held === 'unreadable') return { why: `the ${GRANTS_ANNOTATION} annotation of ServiceAccount ${req.namespace}/${req.serviceAccount} is not wid's JSON list` };
  return { grants: held };
}

/** Whether teardown removes the workloadIdentityUser member: recorded as wid's, or (no record) named by --gsa. */
async function removesWorkloadIdentity(req: GkeRequest, ctx: GkeContext, gsa: string): Promise<{ remove: boolean; note?: string }> {
  const { grants, why } = await recordedGrants(req, ctx);
  if (!grants) return { remove: true, note: `${why}: removing the member --gsa names` };
  return recorded(grants, workloadIdentityGrant(req, gsa)) ? { remove: true } : { remove: false, note: `granted before wid (not in its ${GRANTS_ANNOTATION} record); kept` };
}

const iamBindingTeardown: LivePhase<GkeRequest, GkeContext> = {
  name: 'iam-binding',
  async plan(req, ctx) {
    const gsa = gsaOf(req);
    if (!gsa) return [];
    const resource = gsaResource(gsa);
    const policy = await plannedGsaPolicy(gsa, ctx);
    if (!policy) return [{ phase: 'iam-binding', action: 'noop', resource, desired: {}, note: 'service account not found' }];
    if (!hasMember(policy, WORKLOAD_IDENTITY_USER, ksaMember(req))) return [{ phase: 'iam-binding', action: 'noop', resource, desired: {}, note: 'no such member' }];
    const { remove, note } = await removesWorkloadIdentity(req, ctx, gsa);
    if (!remove) return [{ phase: 'iam-binding', action: 'noop', resource, desired: {}, ...(note ? { note } : {}) }];
    return [{ phase: 'iam-binding', action: 'delete', resource, desired: buildWorkloadIdentityBinding(req), ...(note ? { note } : {}) }];
  },
  async apply(_step, req, ctx) {
    const gsa = gsaOf(req)!;
    const member = ksaMember(req);
    await changePolicy(
      ctx,
      `serviceAccount ${gsa}`,
      (p) => (hasMember(p, WORKLOAD_IDENTITY_USER, member) ? removeMember(p, WORKLOAD_IDENTITY_USER, member) : undefined),
      gsaPolicyWrite(ctx, gsa),
    );
  },
};

/**
 * Which project roles teardown takes from the member (only the --role ones when given): those wid's
 * record says it granted. Without a record: the --role ones, or in gsa mode every role of a Google
 * service account wid created. A grant that was there before wid is kept.
 */
async function rolesToRemove(req: GkeRequest, ctx: GkeContext): Promise<{ roles: string[]; note?: string }> {
  const member = roleMember(req);
  const held = rolesOf(await projectPolicy(req, ctx), member);
  if (held.length === 0) return { roles: [] };
  const asked = (roles: string[]): string[] => (req.roles.length > 0 ? roles.filter((r) => req.roles.includes(r)) : roles);
  const { grants, why } = await recordedGrants(req, ctx);
  if (grants) {
    const mine = held.filter((role) => recorded(grants, projectGrant(req, role)));
    const before = held.filter((role) => !mine.includes(role));
    return { roles: asked(mine), ...(before.length > 0 ? { note: `granted before wid (not in its ${GRANTS_ANNOTATION} record); kept: ${before.join(', ')}` } : {}) };
  }
  if (req.roles.length > 0) return { roles: asked(held), note: `${why}: removing the --role grants` };
  if (req.mode === 'gsa' && (await plannedGsa(req.gsa!, ctx))?.description?.includes(GSA_MARKER)) {
    return { roles: held, note: `${why}: removing every grant of the service account wid created` };
  }
  return { roles: [], note: `${why}, so wid cannot tell its grants from earlier ones: pass --role to remove them (${held.join(', ')})` };
}

const projectRoleTeardown: LivePhase<GkeRequest, GkeContext> = {
  name: 'project-role',
  async plan(req, ctx) {
    const { roles, note } = await rolesToRemove(req, ctx);
    const resource = `projects/${req.project}`;
    if (roles.length === 0) return [{ phase: 'project-role', action: 'noop', resource, desired: {}, note: note ?? 'no grants to remove' }];
    const steps = roles.map((role) => ({ phase: 'project-role', action: 'delete' as const, resource, desired: buildProjectRoleBinding(req, role) }));
    return note ? [...steps, { phase: 'project-role', action: 'noop' as const, resource, desired: {}, note }] : steps;
  },
  async apply(step, req, ctx) {
    const { role } = step.desired as { role: string };
    const member = roleMember(req);
    await changePolicy(
      ctx,
      `project ${req.project}`,
      (p) => (hasMember(p, role, member) ? removeMember(p, role, member) : undefined),
      projectPolicyWrite(ctx, req.project),
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
    const existing = await plannedGsa(gsa, ctx);
    if (!existing) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'not found' }];
    if (!existing.description?.includes(GSA_MARKER)) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'not created by wid; kept' }];
    let policy = (await plannedGsaPolicy(gsa, ctx)) ?? {};
    if ((await removesWorkloadIdentity(req, ctx, gsa)).remove) policy = removeMember(policy, WORKLOAD_IDENTITY_USER, ksaMember(req));
    const others = (policy.bindings ?? []).flatMap((b) => b.members);
    if (others.length > 0) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: `still bound to ${others.join(', ')}; kept` }];
    return [{ phase: 'service-account', action: 'delete', resource, desired: { email: gsa } }];
  },
  apply: (_step, req, ctx) => ctx.gcp.deleteServiceAccount(req.gsa!),
};

/**
 * Teardown phases, in order: the grants, the binding, the account, and the Kubernetes
 * ServiceAccount LAST: it holds the record of wid's grants, so a teardown interrupted before the end
 * still finds, on the next run, whatever it had not removed yet.
 */
export const gkeTeardownPhases: LivePhase<GkeRequest, GkeContext>[] = [
  projectRoleTeardown,
  iamBindingTeardown,
  gsaTeardown,
  { ...serviceAccountTeardownPhase<GkeRequest, GkeContext>(saIdentity) },
];
