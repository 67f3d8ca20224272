/**
 * The `service-account` phase, shared by every provider: the annotated ServiceAccount in the cluster
 * of the kube context. Existing ServiceAccounts are merged into, never replaced: only wid's
 * annotations and labels change, every other key stays.
 */
import { CloudError, RuntimeError, WidError } from '../core/errors.js';
import type { KubeObject, LivePhase } from '../core/phase.js';
import type { Step } from '../core/plan.js';
import type { CommonRequest } from '../core/request.js';
import type { KubeApi } from './client.js';
import { MANAGED_BY_LABEL } from './manifests.js';

/** Set on ServiceAccounts wid created (not on ones it merged into), so teardown deletes only those. */
export const CREATED_ANNOTATION = 'wid/created';

export interface ServiceAccountContext {
  /** Undefined with --out: the cluster is left alone. */
  kube?: KubeApi;
  /** Renders the ServiceAccount manifest from what is known now (called at plan and again at apply). */
  serviceAccount?: () => KubeObject;
  createNamespace?: boolean;
  override?: boolean;
  /**
   * Annotations a provider adds to the rendered ServiceAccount, given the ServiceAccount as it is
   * (undefined when absent): GKE's record of its grants, merged with the one already there.
   */
  extraAnnotations?: (current: KubeObject | undefined) => Record<string, string>;
  /** The ServiceAccount as planning read it, shared by the phases that plan from it. */
  serviceAccountRead?: Promise<KubeObject | undefined>;
}

/** The ServiceAccount as planning sees it: read once per run, however many phases ask. */
export function plannedServiceAccount(req: CommonRequest, ctx: ServiceAccountContext): Promise<KubeObject | undefined> {
  if (!ctx.kube) return Promise.resolve(undefined);
  ctx.serviceAccountRead ??= ctx.kube.getServiceAccount(req.namespace, req.serviceAccount);
  return ctx.serviceAccountRead;
}

/** The rendered ServiceAccount with the provider's extra annotations. */
function rendered(ctx: ServiceAccountContext, current: KubeObject | undefined): KubeObject {
  const desired = ctx.serviceAccount!();
  const extra = ctx.extraAnnotations?.(current);
  if (!extra || Object.keys(extra).length === 0) return desired;
  const body = structuredClone(desired);
  const m = ((body.metadata ??= {}) as Meta);
  m.annotations = { ...m.annotations, ...extra };
  return body;
}

/** How a provider marks a ServiceAccount as bound to its cloud identity. */
export interface SaIdentity {
  /** The annotation naming the cloud identity (e.g. eks.amazonaws.com/role-arn). */
  key: string;
  /** Its value for this setup; undefined while the cloud identity does not exist yet. */
  value: string | undefined;
  /** Where the value will come from, while it is undefined. */
  pendingFrom?: string;
  /** Every annotation wid sets for this provider (removed again by teardown). */
  owned: string[];
  /**
   * When set, the annotation must be absent (its value is undefined and none is pending): this says
   * why, and --override removes it.
   */
  conflict?: string;
}

type Meta = { annotations?: Record<string, string>; labels?: Record<string, string> };

const meta = (o: KubeObject | undefined): Meta => ((o?.metadata ?? {}) as Meta);
const saResource = (ns: string, name: string): string => `namespaces/${ns}/serviceaccounts/${name}`;

function pick(o: Record<string, string> | undefined, keys: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([k]) => keys.includes(k)));
}

/** A ServiceAccount wid creates: the rendered one, marked as wid's (so teardown deletes it). */
function createBody(desired: KubeObject): KubeObject {
  const body = structuredClone(desired);
  const m = ((body.metadata ??= {}) as Meta);
  m.annotations = { ...m.annotations, [CREATED_ANNOTATION]: 'true' };
  return body;
}

export function serviceAccountSetupPhase<R extends CommonRequest, C extends ServiceAccountContext>(identity: (req: R) => SaIdentity): LivePhase<R, C> {
  /** The ServiceAccount step from the cluster's state now; `withNamespace` also checks the namespace. */
  async function compute(req: R, ctx: C, withNamespace: boolean): Promise<Step[]> {
    const { kube } = ctx;
    if (!kube || !ctx.serviceAccount) return [];
    const id = identity(req);
    const pending = id.value === undefined && id.pendingFrom !== undefined ? { [`metadata.annotations.${id.key}`]: id.pendingFrom } : undefined;
    const resource = saResource(req.namespace, req.serviceAccount);
    // Planning shares one read; apply reads afresh (the object may have changed since).
    const existing = withNamespace ? await plannedServiceAccount(req, ctx) : await kube.getServiceAccount(req.namespace, req.serviceAccount);
    const desired = rendered(ctx, existing);
    const want = meta(desired);
    if (!existing) {
      const steps: Step[] = [];
      if (withNamespace && !(await kube.namespaceExists(req.namespace))) {
        if (!ctx.createNamespace) {
          throw new RuntimeError('WID_E_KUBE_NAMESPACE_MISSING', `namespace ${req.namespace} does not exist in kube context ${kube.context}`, {
            hint: `pass --create-namespace, or create it: kubectl create namespace ${req.namespace}`,
          });
        }
        steps.push({ phase: 'namespace', action: 'create', resource: `namespaces/${req.namespace}`, desired: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: req.namespace } } });
      }
      steps.push({ phase: 'service-account', action: 'create', resource, desired: createBody(desired), ...(pending ? { pending } : {}) });
      return steps;
    }
    const have = meta(existing);
    const current = have.annotations?.[id.key];
    if (current !== undefined && current !== id.value && !ctx.override) {
      const wanted = id.conflict !== undefined ? id.conflict : `not ${id.value ?? `the ${id.pendingFrom ?? 'new identity'}`}`;
      throw new WidError('WID_E_KUBE_SA_CONFLICT', `ServiceAccount ${req.namespace}/${req.serviceAccount} is annotated ${id.key}: ${current}, ${wanted}`, {
        hint: 'pass --override to point it at the new identity (running pods keep the old one until restarted), or choose another --sa',
        exitCode: 1,
      });
    }
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(want.annotations ?? {})) if (id.owned.includes(k) && have.annotations?.[k] !== v) annotations[k] = v;
    // An annotation that must be absent (and was overridden) is removed: null deletes in a merge patch.
    const removals: Record<string, null> = id.conflict !== undefined && current !== undefined ? { [id.key]: null } : {};
    // Labels are added only where absent: another tool's app.kubernetes.io/managed-by (Helm, say) stays.
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(want.labels ?? {})) if (have.labels?.[k] === undefined) labels[k] = v;
    const patch: { annotations?: Record<string, string | null>; labels?: Record<string, string> } = {};
    if (Object.keys(annotations).length + Object.keys(removals).length > 0) patch.annotations = { ...annotations, ...removals };
    if (Object.keys(labels).length > 0) patch.labels = labels;
    if (Object.keys(patch).length === 0 && !pending) {
      return [{ phase: 'service-account', action: 'noop', resource, desired: { metadata: { annotations: pick(want.annotations, id.owned) } } }];
    }
    return [{ phase: 'service-account', action: 'update', resource, desired: { metadata: patch }, ...(pending ? { pending } : {}) }];
  }

  return {
    name: 'service-account',
    plan: (req, ctx) => compute(req, ctx, true),
    async apply(step, req, ctx) {
      const kube = ctx.kube!;
      if (step.phase === 'namespace') return kube.createNamespace(req.namespace);
      if (step.action === 'create') {
        // Absent when planned: created as rendered now (a new identity's ids are known by now), with no
        // read first. Created meanwhile by someone else (409): merged into, as below.
        try {
          return await kube.createServiceAccount(req.namespace, createBody(rendered(ctx, undefined)));
        } catch (e) {
          if (!(e instanceof CloudError && e.status === 409)) throw e;
        }
      }
      // Computed again now: the cloud identity the annotations name may have been created meanwhile,
      // and the ServiceAccount may have changed since the plan was read.
      for (const s of await compute(req, ctx, false)) {
        if (s.action === 'create') await kube.createServiceAccount(req.namespace, s.desired);
        else if (s.action === 'update') await kube.patchServiceAccount(req.namespace, req.serviceAccount, s.desired);
      }
    },
  };
}

/**
 * Teardown: removes wid's annotations (and its managed-by label) from the ServiceAccount, or deletes
 * it when wid created it. A ServiceAccount that now names another identity is left alone.
 */
export function serviceAccountTeardownPhase<R extends CommonRequest, C extends ServiceAccountContext>(identity: (req: R) => SaIdentity): LivePhase<R, C> {
  return {
    name: 'service-account',
    async plan(req, ctx) {
      const kube = ctx.kube;
      if (!kube) return [];
      const resource = saResource(req.namespace, req.serviceAccount);
      const existing = await plannedServiceAccount(req, ctx);
      if (!existing) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'not found' }];
      const have = meta(existing);
      const id = identity(req);
      const current = have.annotations?.[id.key];
      if (current !== undefined && id.value !== undefined && current !== id.value) {
        return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: `annotated ${id.key}: ${current}, another identity; left alone` }];
      }
      if (have.annotations?.[CREATED_ANNOTATION] === 'true') {
        return [{ phase: 'service-account', action: 'delete', resource, desired: {}, note: 'created by wid' }];
      }
      const annotations: Record<string, null> = {};
      for (const k of id.owned) if (have.annotations?.[k] !== undefined) annotations[k] = null;
      const labels: Record<string, null> = have.labels?.[MANAGED_BY_LABEL] === 'wid' ? { [MANAGED_BY_LABEL]: null } : {};
      const patch: Record<string, unknown> = {};
      if (Object.keys(annotations).length > 0) patch.annotations = annotations;
      if (Object.keys(labels).length > 0) patch.labels = labels;
      if (Object.keys(patch).length === 0) return [{ phase: 'service-account', action: 'noop', resource, desired: {}, note: 'carries none of wid\'s annotations' }];
      return [{ phase: 'service-account', action: 'update', resource, desired: { metadata: patch } }];
    },
    async apply(step, req, ctx) {
      const kube = ctx.kube!;
      if (step.action === 'delete') return kube.deleteServiceAccount(req.namespace, req.serviceAccount);
      return kube.patchServiceAccount(req.namespace, req.serviceAccount, step.desired);
    },
  };
}
