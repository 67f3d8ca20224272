/**
 * `wid apply -f FILE` and `wid teardown -f FILE`: many bindings, one combined plan, confirmed once,
 * applied concurrently within a bound.
 *
 * - Planning reads go through one client per cloud target and a read cache, so a read several
 *   bindings need (the cluster, an OIDC provider, a project's IAM policy) is made once.
 * - A step several bindings plan identically (one OIDC provider for a cluster, say) is one change in
 *   the plan; writes to one resource are serialised by a lock per resource (the second binding's apply
 *   then finds the work done and writes nothing), and changes to one shared IAM policy are written
 *   together (group commit).
 * - A binding that fails does not stop the others; the run ends with exit 1 and names each failure.
 *   Bad input in any binding fails the whole file first (exit 2, nothing changed).
 */
import type { Command } from 'commander';
// js-yaml reads a file of hundreds of bindings about six times faster than `yaml` (whose parser keeps
// a full syntax tree); `yaml` still writes wid's output.
import { load as parseYaml } from 'js-yaml';
import { toYaml } from '../output/render.js';
import { GroupCommit, KeyedLock, cachedReads, pool } from '../core/concurrency.js';
import { changes, planPhases, type LiveSteps } from '../core/engine.js';
import { UsageError, WidError } from '../core/errors.js';
import type { Action, Binding, Provider, Step } from '../core/plan.js';
import { prepareSetup } from './commands/setup-run.js';
import { prepareTeardown } from './commands/teardown-run.js';
import type { Factory } from './factory.js';
import { readFleetFile, type FleetEntry } from './fleet-file.js';
import { isInteractive, type IO } from './io.js';
import type { LiveRun } from './live.js';
import { Progress } from './progress.js';
import { aksFlags, eksFlags, gkeFlags, type RawOptions, type RunOptions } from './request.js';
import { styleFor, type CliStyle } from './style.js';

export interface FleetOptions {
  mode: 'setup' | 'teardown';
  file: string;
  concurrency: number;
  run: RunOptions;
  /** The setup and teardown commands of a provider: their flags are the file's fields. */
  commands: (p: Provider) => Command[];
}

type Status = 'failed' | 'unchanged' | 'planned' | 'applied';

interface FleetBinding {
  entry: FleetEntry;
  status: Status;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  live?: LiveRun<any, any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  planned?: LiveSteps<any, any>;
  applied: number;
  error?: WidError;
  /** The step failed on, when apply failed. */
  failedStep?: Step;
}

const SYMBOL: Record<Action, string> = { create: '+', update: '~', noop: '=', delete: '-', ensure: '*' };

const checkFlags = (p: Provider, raw: RawOptions): void => void (p === 'eks' ? eksFlags(raw) : p === 'aks' ? aksFlags(raw) : gkeFlags(raw));

/**
 * Where a step's resource lives: Kubernetes objects (`namespaces/…`) in the binding's cluster, as
 * named by its kubeconfig and context; cloud resources in the provider's cloud (their ids are global).
 */
function scopeOf(b: FleetBinding, step: Step): string {
  if (step.phase === 'namespace' || step.resource.startsWith('namespaces/')) return `kube ${b.entry.raw.kubeconfig ?? ''} ${b.entry.raw.context ?? ''}`;
  return b.entry.provider;
}

/** The key under which a step's write is serialised; undefined where the phase coordinates itself. */
function lockKey(b: FleetBinding, step: Step): string | undefined {
  const provider = b.entry.provider;
  if (provider === 'gke' && (step.phase === 'project-role' || step.phase === 'iam-binding')) return undefined; // group commit
  if (provider === 'eks' && step.phase === 'policy-attachment') return undefined; // one role each, idempotent
  if (provider === 'aks' && step.phase === 'role-assignment') return undefined; // a deterministic name each
  // ARM refuses concurrent writes to one identity's credentials: one at a time per identity.
  if (provider === 'aks' && step.phase === 'federated-credential') return `${provider} ${step.resource.replace(/\/federatedIdentityCredentials\/[^/]+$/i, '')}`;
  return `${scopeOf(b, step)} ${step.phase} ${step.resource}`;
}

/**
 * Identical steps of several bindings are one change. A step with fields only the cloud can fill in
 * (a new identity's principal id) is never taken for another binding's: they may name different ones.
 */
const stepKeys = new WeakMap<Step, string>();

function stepKey(b: FleetBinding, s: Step): string {
  let key = stepKeys.get(s);
  if (key === undefined) stepKeys.set(s, (key = computeStepKey(b, s)));
  return key;
}

function computeStepKey(b: FleetBinding, s: Step): string {
  if (s.pending !== undefined) return JSON.stringify([b.entry.index, s.phase, s.action, s.resource, s.desired]);
  return JSON.stringify([scopeOf(b, s), s.phase, s.action, s.resource, s.desired]);
}

export async function runFleet(opts: FleetOptions, io: IO, factory: Factory): Promise<void> {
  const style = styleFor(io, opts.run.color);
  const entries = readFleetFile(opts.file, opts.commands, checkFlags, parseYaml);
  const bindings: FleetBinding[] = entries.map((entry) => ({ entry, status: 'planned', applied: 0 }));

  // One client per cloud target, its reads cached while planning; no prompts for a binding.
  let planning = true;
  const shared = sharedFactory(factory, () => planning);
  const quiet: IO = { ...io, stdinIsTTY: false };
  const groupCommit = new GroupCommit();
  const progress = new Progress(io, style);

  progress.start('planning', bindings.length);
  await pool(bindings, opts.concurrency, async (b) => {
    try {
      const live = opts.mode === 'setup' ? await prepareSetup(b.entry.provider, b.entry.raw, opts.run, quiet, shared) : await prepareTeardown(b.entry.provider, b.entry.raw, quiet, shared);
      if (b.entry.provider === 'gke') live.ctx.groupCommit = groupCommit;
      b.live = live;
      b.planned = await planPhases(live.phases, live.req, live.ctx);
      if (changes(b.planned.steps).length === 0) b.status = 'unchanged';
    } catch (e) {
      fail(b, e);
    }
    progress.tick(b.status === 'failed' ? 'failed' : 'ok');
  });
  planning = false;
  progress.stop();

  // Bad input found while planning (a value only a read could check): nothing has changed; stop here.
  const badInput = bindings.filter((b) => b.error?.exitCode === 2);
  if (badInput.length > 0) {
    const first = badInput[0]!;
    throw new UsageError(first.error!.code, `${label(first)}: ${first.error!.message}${badInput.length > 1 ? ` (and ${badInput.length - 1} more binding${badInput.length > 2 ? 's' : ''} with bad input)` : ''}`, {
      ...(first.error!.hint === undefined ? {} : { hint: first.error!.hint }),
    });
  }

  const unique = uniqueChanges(bindings);
  if (opts.run.output === 'text') io.err(planText(opts, bindings, unique, style));

  const finish = (message: string): void => {
    if (opts.run.output !== 'text') io.out(fleetDocument(opts, bindings, unique, opts.run.output));
    io.err(message);
    const failed = bindings.filter((b) => b.status === 'failed');
    if (failed.length > 0) {
      for (const b of failed) io.err(`${style.error('✗')} ${label(b)}: ${b.error!.message}\n${b.error!.hint ? `    hint: ${b.error!.hint}\n` : ''}`);
      throw new WidError('WID_E_FLEET_FAILED', `${failed.length} of ${bindings.length} bindings failed; the others ${opts.run.dryRun ? 'were planned' : 'are done'}`, {
        hint: 'fix the cause, then run the same command again: bindings that are done plan as unchanged',
      });
    }
  };

  const todo = bindings.filter((b) => b.status === 'planned');
  if (opts.run.dryRun) return finish(`Dry run: ${unique.size === 0 ? 'nothing to change' : `${count(unique.size, 'change')} planned over ${count(todo.length, 'binding')}`}; nothing was changed.\n`);
  if (unique.size === 0) return finish('Nothing to change: everything is already as wanted.\n');
  if (!opts.run.yes) {
    if (!isInteractive(io)) {
      throw new UsageError('WID_E_CONFIRM_NEEDED', `${count(unique.size, 'change')} planned; off a terminal wid applies them only with --yes`, {
        flag: '--yes',
        hint: 'review the plan above, then run the same command with --yes (or --dry-run to only plan)',
      });
    }
    if (!(await io.confirm(`Apply ${count(unique.size, 'change')} over ${count(todo.length, 'binding')}?`))) throw new WidError('WID_E_CANCELLED', 'cancelled: nothing was changed', { exitCode: 1 });
  }

  const locks = new KeyedLock();
  // A change several bindings planned identically runs once: the first binding to reach it applies
  // it, the others wait for that and then only adopt what it produced.
  const sharedRuns = new Map<string, Promise<void>>();
  progress.start('applying', todo.length);
  await pool(todo, opts.concurrency, async (b) => {
    const { req, ctx } = b.live!;
    for (const step of changes(b.planned!.steps)) {
      const phase = b.planned!.owners.get(step)!;
      const key = stepKey(b, step);
      try {
        const run = (): Promise<void> => locks.run(lockKey(b, step), () => phase.apply(step, req, ctx));
        if (unique.get(key)!.shared > 1) {
          const first = sharedRuns.get(key);
          if (first === undefined) {
            const mine = run();
            sharedRuns.set(key, mine);
            await mine;
          } else {
            await first;
            await phase.adopt?.(step, req, ctx);
          }
        } else {
          await run();
        }
        b.applied++;
      } catch (e) {
        b.failedStep = step;
        fail(b, e);
        break;
      }
    }
    if (b.status !== 'failed') b.status = 'applied';
    progress.tick(b.status === 'failed' ? 'failed' : 'ok', `${b.status === 'failed' ? style.error('✗') : style.action('create', '✓')} ${label(b)}: ${b.status === 'failed' ? `failed at ${b.failedStep!.phase} ${b.failedStep!.resource} (${b.applied} of ${changes(b.planned!.steps).length} changes applied)` : count(b.applied, 'change')}`);
  });
  progress.stop();
  const applied = bindings.filter((b) => b.status === 'applied').length;
  finish(`Applied ${count(appliedChanges(bindings), 'change')} over ${count(applied, 'binding')}${bindings.length > todo.length ? `; ${count(bindings.length - todo.length, 'binding')} unchanged or not planned` : ''}.\n`);
}

function fail(b: FleetBinding, e: unknown): void {
  b.status = 'failed';
  b.error = e instanceof WidError ? e : new WidError('WID_E_INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
}

const label = (b: FleetBinding): string => `bindings[${b.entry.index}] ${b.entry.label}`;
const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The distinct changes over all bindings (identical steps of several bindings count once), with how many bindings share each. */
interface UniqueChange {
  step: Step;
  provider: Provider;
  /** How many bindings planned it, and which (by index in the file). */
  shared: number;
  bindings: number[];
}

function uniqueChanges(bindings: FleetBinding[]): Map<string, UniqueChange> {
  const out = new Map<string, UniqueChange>();
  for (const b of bindings) {
    for (const s of changes(b.planned?.steps ?? [])) {
      const k = stepKey(b, s);
      const seen = out.get(k);
      if (seen) {
        seen.shared++;
        seen.bindings.push(b.entry.index);
      } else out.set(k, { step: s, provider: b.entry.provider, shared: 1, bindings: [b.entry.index] });
    }
  }
  return out;
}

/** The distinct changes made: those before the failure point (if any) of a binding that planned them. */
function appliedChanges(bindings: FleetBinding[]): number {
  const done = new Set<string>();
  for (const b of bindings) changes(b.planned?.steps ?? []).slice(0, b.applied).forEach((s) => done.add(stepKey(b, s)));
  return done.size;
}

function planText(opts: FleetOptions, bindings: FleetBinding[], unique: Map<string, UniqueChange>, style: CliStyle): string {
  const out: string[] = [];
  const title = opts.mode === 'teardown' ? 'Teardown' : 'Plan';
  const by = (p: Provider): number => bindings.filter((b) => b.entry.provider === p).length;
  const mix = (['eks', 'aks', 'gke'] as const).filter((p) => by(p) > 0).map((p) => `${p} ${by(p)}`).join(', ');
  out.push(style.bold(`${title}: ${count(bindings.length, 'binding')} from ${opts.file} (${mix})`));
  const sharedSteps = [...unique.values()].filter((u) => u.shared > 1);
  // A policy step names its role: several steps change one policy.
  const roleOf = (s: Step): string => (typeof s.desired.role === 'string' ? ` ${s.desired.role}` : '');
  const line = (s: Step, extra = ''): string => `    ${style.action(s.action, `${SYMBOL[s.action]} ${s.action.padEnd(6)}`)} ${s.phase}  ${s.resource}${roleOf(s)}${s.note ? style.dim(`  (${s.note})`) : ''}${extra}`;
  if (sharedSteps.length > 0) {
    out.push('  shared by several bindings:');
    for (const u of sharedSteps) out.push(line(u.step, style.dim(`  [${u.shared} bindings]`)));
  }
  for (const b of bindings) {
    if (b.status === 'failed') {
      out.push(`  ${style.error('✗')} ${label(b)}: ${b.error!.message}`);
      continue;
    }
    const own = changes(b.planned!.steps).filter((s) => unique.get(stepKey(b, s))!.shared === 1);
    const sharedCount = changes(b.planned!.steps).length - own.length;
    const unchanged = b.planned!.steps.length - changes(b.planned!.steps).length;
    const tail = style.dim([sharedCount > 0 ? `${sharedCount} shared` : '', unchanged > 0 ? `${unchanged} unchanged` : ''].filter(Boolean).join(', '));
    if (own.length === 0 && sharedCount === 0) {
      out.push(style.dim(`  = ${label(b)}: no changes`));
      continue;
    }
    out.push(`  ${label(b)}${tail ? `  ${tail}` : ''}`);
    for (const s of own) out.push(line(s));
  }
  const actions = new Map<Action, number>();
  for (const u of unique.values()) actions.set(u.step.action, (actions.get(u.step.action) ?? 0) + 1);
  const failed = bindings.filter((b) => b.status === 'failed').length;
  out.push('');
  out.push(
    `${count(unique.size, 'change')}${unique.size > 0 ? ` (${[...actions].map(([a, n]) => `${n} ${a}`).join(', ')})` : ''} over ${count(bindings.filter((b) => b.status === 'planned').length, 'binding')}; ${bindings.filter((b) => b.status === 'unchanged').length} unchanged${failed > 0 ? `; ${style.error(`${failed} failed to plan`)}` : ''}.`,
  );
  const warnings = new Set(bindings.flatMap((b) => b.live?.warnings ?? []));
  for (const w of warnings) out.push(`${style.warn('warning:')} ${w}`);
  return `${out.join('\n')}\n`;
}

function fleetDocument(opts: FleetOptions, bindings: FleetBinding[], unique: Map<string, UniqueChange>, format: 'json' | 'yaml' | 'text'): string {
  const doc = {
    apiVersion: 'wid/v1',
    kind: 'FleetPlan',
    mode: opts.mode,
    dryRun: opts.run.dryRun,
    file: opts.file,
    summary: {
      bindings: bindings.length,
      changes: unique.size,
      applied: bindings.filter((b) => b.status === 'applied').length,
      unchanged: bindings.filter((b) => b.status === 'unchanged').length,
      failed: bindings.filter((b) => b.status === 'failed').length,
    },
    /** Each distinct change once, with the bindings (by index) that need it. */
    changes: [...unique.values()].map((u) => ({ provider: u.provider, step: u.step, bindings: u.bindings })),
    bindings: bindings.map((b) => ({
      index: b.entry.index,
      provider: b.entry.provider,
      label: b.entry.label,
      status: b.status,
      ...(b.live ? { binding: b.live.binding as Binding } : {}),
      steps: b.planned?.steps ?? [],
      ...(b.error ? { error: { code: b.error.code, message: b.error.message, ...(b.error.hint ? { hint: b.error.hint } : {}) } } : {}),
      ...(b.failedStep ? { failedStep: { phase: b.failedStep.phase, resource: b.failedStep.resource }, appliedChanges: b.applied } : {}),
    })),
  };
  if (format === 'yaml') return toYaml(doc);
  return `${JSON.stringify(doc, null, 2)}\n`;
}


/**
 * Clients made once per distinct target (the same options give the same client), their reads cached
 * while `planning()` is true.
 */
function sharedFactory(factory: Factory, planning: () => boolean): Factory {
  const made = new Map<string, Promise<unknown>>();
  const isRead = (m: string): boolean => /^(get|list|describe|find|observe|namespaceExists|policyExists|openidConfiguration|jwks)/.test(m);
  const once = <O, T extends object>(kind: string, make: (o: O) => Promise<T>) => (o: O): Promise<T> => {
    const key = `${kind}\n${JSON.stringify(o)}`;
    let hit = made.get(key) as Promise<T> | undefined;
    if (!hit) made.set(key, (hit = make(o).then((api) => cachedReads(api, isRead, planning))));
    return hit;
  };
  return {
    aws: once('aws', (o) => factory.aws(o)),
    azure: once('azure', (o) => factory.azure(o)),
    gcp: once('gcp', (o) => factory.gcp(o)),
    kube: once('kube', (o) => factory.kube(o)),
  };
}
