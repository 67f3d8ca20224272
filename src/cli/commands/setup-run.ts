/**
 * `wid setup` run: flags → request → plan → output, and with --cluster, apply. Thin: the work is in
 * src/core, src/providers and src/kube.
 */
import { buildOfflinePlan } from '../../core/engine.js';
import { UsageError } from '../../core/errors.js';
import type { KubeObject, LivePhase, ProviderModule } from '../../core/phase.js';
import type { Plan, Provider } from '../../core/plan.js';
import type { AksRequest, EksRequest, GkeRequest, SetupRequest } from '../../core/request.js';
import type { AksContext } from '../../providers/aks/phases.js';
import type { EksContext } from '../../providers/eks/phases.js';
import type { GkeContext } from '../../providers/gke/phases.js';
import { loadTemplates, renderManifests, TEMPLATE_FILES, type Templates } from '../../kube/manifests.js';
import { checkOutDir, writeFilesAtomically } from '../../output/files.js';
import { manifestsYaml, planJson, planText, planYaml, toYaml } from '../../output/render.js';
import { aks } from '../../providers/aks/phases.js';
import { ksaPrincipal } from '../../providers/gke/build.js';
import { eks, observeRole } from '../../providers/eks/phases.js';
import { gke } from '../../providers/gke/phases.js';
import type { Factory } from '../factory.js';
import type { IO } from '../io.js';
import { runLive, type LiveRun } from '../live.js';
import { buildRequest, runOptions, type RawOptions, type RunOptions } from '../request.js';
import { styleFor } from '../style.js';
import { aksLive } from './aks-live.js';
import { eksLive } from './eks-live.js';
import { gkeLive } from './gke-live.js';

export async function runSetup(provider: Provider, raw: RawOptions, io: IO, factory: Factory): Promise<void> {
  const run = runOptions(raw);
  if (run.out !== undefined) checkOutDir(run.out, Object.values(TEMPLATE_FILES));
  if (raw.cluster !== undefined) return runLive(await prepareSetup(provider, raw, run, io, factory), run, io);
  if (!run.dryRun) {
    throw new UsageError('WID_E_APPLY_UNAVAILABLE', 'applying needs the cluster lookup: pass --cluster NAME to read the cluster and apply; without it wid can only plan (--dry-run)', {
      flag: '--cluster',
      hint: 'add --dry-run to print the plan and manifests without changing anything',
    });
  }
  const req = await buildRequest(provider, io, raw);
  const templates = loadTemplates(provider, run.templates);
  emitOffline(planFor(req, templates, run.dryRun), req, run, io);
}

/**
 * A live setup, ready to plan: flags checked, templates read, the cluster read, clients built. Shared
 * by `wid setup` and each binding of `wid apply -f`.
 */
export async function prepareSetup(provider: Provider, raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<LiveRun<any, any>> {
  if (provider === 'eks') return eksSetup(raw, run, io, factory);
  if (provider === 'aks') return aksSetup(raw, run, io, factory);
  return gkeSetup(raw, run, io, factory);
}

async function eksSetup(raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<LiveRun<EksRequest, EksContext>> {
  // Templates are read before any cloud call, so a bad one fails first.
  const templates = loadTemplates('eks', run.templates);
  const { req, ctx } = await eksLive(raw, io, factory, { kube: run.out === undefined });
  // The annotation must name the role's real ARN, which includes its path when it has one.
  const existing = await observeRole(req, ctx);
  if (existing) req.existingRoleArn = existing.arn;
  const manifests = renderManifests(eks, req, templates);
  ctx.serviceAccount = () => manifests[0]!;
  ctx.createNamespace = raw.createNamespace === true;
  ctx.override = raw.override === true;
  return {
    mode: 'setup',
    provider: 'eks',
    binding: eks.binding(req),
    phases: eks.phases.map(live),
    req,
    ctx,
    manifests: () => manifests,
    afterApply: [
      ...(run.out === undefined ? [] : [`The cluster was left alone (--out): apply the manifests with kubectl apply -f ${run.out}`]),
      `Pods already running as ${req.namespace}/${req.serviceAccount} keep their old credentials until restarted, e.g. kubectl rollout restart deployment -n ${req.namespace} NAME.`,
      'IAM changes can take a few seconds to reach STS.',
    ],
  };
}

async function aksSetup(raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<LiveRun<AksRequest, AksContext>> {
  const templates = loadTemplates('aks', run.templates);
  const { req, ctx } = await aksLive(raw, io, factory, { kube: run.out === undefined });
  // Rendered on demand: a new identity's client id is known only once it has been created.
  const manifests = (): KubeObject[] => renderManifests(aks, req, templates);
  ctx.serviceAccount = () => manifests()[0]!;
  ctx.createNamespace = raw.createNamespace === true;
  ctx.override = raw.override === true;
  return {
    mode: 'setup',
    provider: 'aks',
    binding: aks.binding(req),
    phases: aks.phases.map(live),
    req,
    ctx,
    manifests,
    afterApply: [
      ...(run.out === undefined ? [] : [`The cluster was left alone (--out): apply the manifests with kubectl apply -f ${run.out}`]),
      'A new federated credential can take a minute or two to reach Entra ID (token requests fail with AADSTS70021 until then); role assignments up to ten minutes.',
      `Pods already running as ${req.namespace}/${req.serviceAccount} keep their old identity until restarted, e.g. kubectl rollout restart deployment -n ${req.namespace} NAME; pods need the label azure.workload.identity/use: "true".`,
    ],
  };
}

async function gkeSetup(raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<LiveRun<GkeRequest, GkeContext>> {
  const templates = loadTemplates('gke', run.templates);
  const { req, ctx, warnings } = await gkeLive(raw, io, factory, { kube: run.out === undefined });
  const manifests = renderManifests(gke, req, templates);
  ctx.serviceAccount = () => manifests[0]!;
  ctx.createNamespace = raw.createNamespace === true;
  ctx.override = raw.override === true;
  const notes =
    req.mode === 'direct' && req.projectNumber !== undefined
      ? [`to grant roles on other resources (buckets, secrets), name the principal ${ksaPrincipal({ ...req, projectNumber: req.projectNumber })}`]
      : [];
  return {
    mode: 'setup',
    provider: 'gke',
    binding: gke.binding(req),
    phases: gke.phases.map(live),
    req,
    ctx,
    manifests: () => manifests,
    warnings,
    notes,
    afterApply: [
      ...(run.out === undefined ? [] : [`The cluster was left alone (--out): apply the manifests with kubectl apply -f ${run.out}`]),
      'IAM changes typically take about two minutes to take effect, sometimes seven or more.',
      `Pods already running as ${req.namespace}/${req.serviceAccount} may keep a cached token until restarted.`,
    ],
  };
}

/** A phase with its live half; every phase of a provider that supports live runs has one. */
function live<R, C>(phase: { name: string; plan?: LivePhase<R, C>['plan']; apply?: LivePhase<R, C>['apply']; adopt?: LivePhase<R, C>['adopt'] }): LivePhase<R, C> {
  if (!phase.plan || !phase.apply) throw new Error(`phase ${phase.name} has no live implementation`);
  return { name: phase.name, plan: phase.plan, apply: phase.apply, ...(phase.adopt ? { adopt: phase.adopt } : {}) };
}

function planFor(req: SetupRequest, templates: Templates, dryRun: boolean): Plan {
  switch (req.provider) {
    case 'eks':
      return offlinePlan(eks, req, templates, dryRun);
    case 'aks':
      return offlinePlan(aks, req, templates, dryRun);
    case 'gke':
      return offlinePlan(gke, req, templates, dryRun);
  }
}

function offlinePlan<R extends SetupRequest, C>(provider: ProviderModule<R, C>, req: R, templates: Templates, dryRun: boolean): Plan {
  return buildOfflinePlan(provider, req, renderManifests(provider, req, templates), dryRun);
}

function emitOffline(plan: Plan, req: SetupRequest, run: RunOptions, io: IO): void {
  const style = styleFor(io, run.color);
  if (run.output === 'text') io.err(planText(plan, style));
  for (const w of warnings(req)) io.err(`${style.warn('warning:')} ${w}\n`);
  if (req.provider === 'gke' && req.mode === 'direct' && req.projectNumber !== undefined) {
    io.err(`note: to grant roles on other resources (buckets, secrets), name the principal ${ksaPrincipal({ ...req, projectNumber: req.projectNumber })}\n`);
  }
  if (run.out !== undefined) {
    const [sa, pod] = plan.manifests;
    const written = writeFilesAtomically(run.out, { [TEMPLATE_FILES.serviceAccount]: toYaml(sa), [TEMPLATE_FILES.pod]: toYaml(pod) });
    io.err(`wrote ${written.join(', ')}\n`);
  }
  if (run.output === 'json') io.out(planJson(plan));
  else if (run.output === 'yaml') io.out(planYaml(plan));
  else if (run.out === undefined) io.out(manifestsYaml(plan.manifests));
  io.err('Dry run: nothing was changed in any cloud or cluster.\n');
}

/** Things that are valid but often wrong; said on stderr, never failing. */
function warnings(req: SetupRequest): string[] {
  const w: string[] = [];
  if (req.provider === 'eks' && req.issuer.endsWith('/')) {
    w.push(`the issuer ${req.issuer} ends in "/"; EKS issuers do not, and IAM only trusts a token whose iss matches exactly`);
  }
  if (req.provider === 'aks' && !req.issuer.endsWith('/') && /\.oic\.prod-aks\.azure\.com\//.test(req.issuer)) {
    w.push(`the issuer ${req.issuer} has no trailing "/"; AKS issuers end in "/", and Entra compares it with the token's iss byte for byte`);
  }
  if ((req.provider === 'gke' && req.roles.length === 0) || (req.provider === 'eks' && req.policyArns.length === 0) || (req.provider === 'aks' && req.roleAssignments.length === 0)) {
    const flag = req.provider === 'eks' ? '--attach-policy-arn' : '--role';
    w.push(`no ${flag} given: the identity is trusted but has no permissions yet`);
  }
  return w;
}
