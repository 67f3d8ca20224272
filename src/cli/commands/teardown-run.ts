/**
 * `wid teardown` run: flags → request → the teardown phases, planned and applied by runLive. Loaded
 * only when a teardown runs. prepareTeardown is shared with `wid teardown -f`.
 */
import { subject } from '../../core/naming.js';
import type { Provider } from '../../core/plan.js';
import type { AksRequest, EksRequest, GkeRequest } from '../../core/request.js';
import { aks, aksTeardownPhases, type AksContext } from '../../providers/aks/phases.js';
import { eksTeardownPhases, observeRole, type EksContext } from '../../providers/eks/phases.js';
import { gke, gkeTeardownPhases, type GkeContext } from '../../providers/gke/phases.js';
import type { Factory } from '../factory.js';
import type { IO } from '../io.js';
import { runLive, type LiveRun } from '../live.js';
import { runOptions, type RawOptions } from '../request.js';
import { aksLive } from './aks-live.js';
import { eksLive } from './eks-live.js';
import { gkeLive } from './gke-live.js';

export async function runTeardown(provider: Provider, raw: RawOptions, io: IO, factory: Factory): Promise<void> {
  const run = runOptions(raw);
  await runLive(await prepareTeardown(provider, raw, io, factory), run, io);
}

/** A live teardown, ready to plan: flags checked, the cluster read, clients built. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function prepareTeardown(provider: Provider, raw: RawOptions, io: IO, factory: Factory): Promise<LiveRun<any, any>> {
  if (provider === 'eks') return eksTeardown(raw, io, factory);
  if (provider === 'aks') return aksTeardown(raw, io, factory);
  return gkeTeardown(raw, io, factory);
}

async function eksTeardown(raw: RawOptions, io: IO, factory: Factory): Promise<LiveRun<EksRequest, EksContext>> {
  const { req, ctx } = await eksLive(raw, io, factory, { kube: true });
  ctx.deleteOidcProvider = raw.deleteOidcProvider === true;
  const existing = await observeRole(req, ctx);
  if (existing) req.existingRoleArn = existing.arn;
  return {
    mode: 'teardown',
    provider: 'eks',
    binding: { issuer: req.issuer, namespace: req.namespace, serviceAccount: req.serviceAccount, subject: subject(req.namespace, req.serviceAccount), audience: req.audience },
    phases: eksTeardownPhases,
    req,
    ctx,
    manifests: () => [],
    afterApply: [`Pods already running as ${req.namespace}/${req.serviceAccount} keep their credentials until restarted.`],
  };
}

async function aksTeardown(raw: RawOptions, io: IO, factory: Factory): Promise<LiveRun<AksRequest, AksContext>> {
  const { req, ctx } = await aksLive(raw, io, factory, { kube: true });
  ctx.deleteIdentity = raw.deleteIdentity === true;
  return {
    mode: 'teardown',
    provider: 'aks',
    binding: aks.binding(req),
    phases: aksTeardownPhases,
    req,
    ctx,
    manifests: () => [],
    afterApply: [`Pods already running as ${req.namespace}/${req.serviceAccount} keep their tokens until they expire or the pods restart.`],
  };
}

async function gkeTeardown(raw: RawOptions, io: IO, factory: Factory): Promise<LiveRun<GkeRequest, GkeContext>> {
  const { req, ctx } = await gkeLive(raw, io, factory, { kube: true });
  ctx.deleteGsa = raw.deleteGsa === true;
  return {
    mode: 'teardown',
    provider: 'gke',
    binding: gke.binding(req),
    phases: gkeTeardownPhases,
    req,
    ctx,
    manifests: () => [],
    afterApply: ['IAM changes typically take about two minutes to take effect.'],
  };
}
