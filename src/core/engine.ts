/**
 * The engine: phases → steps → Plan, and a plan's steps → applied changes. It never prints; progress
 * goes to the injected reporter.
 */
import { WidError } from './errors.js';
import type { KubeObject, LivePhase, ProviderModule } from './phase.js';
import type { Plan, Step } from './plan.js';
import type { SetupRequest } from './request.js';

export function buildOfflinePlan<R extends SetupRequest, C>(provider: ProviderModule<R, C>, req: R, manifests: KubeObject[], dryRun: boolean): Plan {
  return {
    apiVersion: 'wid/v1',
    kind: 'Plan',
    provider: provider.id,
    dryRun,
    binding: provider.binding(req),
    steps: provider.phases.flatMap((phase) => phase.build(req)),
    manifests,
  };
}

/** Steps in phase order, each remembering the phase that planned it (and so applies it). */
export interface LiveSteps<R, C> {
  steps: Step[];
  owners: Map<Step, LivePhase<R, C>>;
}

/** Plans every phase. Phases only read here, so they run concurrently; their steps keep phase order. */
export async function planPhases<R, C>(phases: LivePhase<R, C>[], req: R, ctx: C): Promise<LiveSteps<R, C>> {
  // allSettled, then the first failure in phase order: the error shown does not depend on timing.
  const settled = await Promise.allSettled(phases.map((p) => p.plan(req, ctx)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const perPhase = settled.map((r) => (r as PromiseFulfilledResult<Step[]>).value);
  const owners = new Map<Step, LivePhase<R, C>>();
  perPhase.forEach((steps, i) => steps.forEach((s) => owners.set(s, phases[i]!)));
  return { steps: perPhase.flat(), owners };
}

export function changes(steps: Step[]): Step[] {
  return steps.filter((s) => s.action !== 'noop');
}

export interface ApplyReporter {
  applied(step: Step, index: number, total: number): void;
}

/**
 * Applies the changing steps in order, stopping at the first failure. The error then says how far it
 * got; every phase converges, so running the same command again finishes the job.
 */
export async function applySteps<R, C>(planned: LiveSteps<R, C>, req: R, ctx: C, reporter: ApplyReporter): Promise<number> {
  const todo = changes(planned.steps);
  for (const [i, step] of todo.entries()) {
    try {
      await planned.owners.get(step)!.apply(step, req, ctx);
    } catch (e) {
      if (!(e instanceof WidError)) throw e;
      const done = i === 0 ? 'nothing was changed' : `${i} of ${todo.length} changes were applied before it`;
      throw new WidError(e.code, `${step.phase} ${step.resource}: ${e.message}`, {
        exitCode: e.exitCode,
        hint: [e.hint, `${done}; once the cause is fixed, run the same command again: it picks up where it stopped`].filter(Boolean).join('\n      '),
        cause: e,
      });
    }
    reporter.applied(step, i, todo.length);
  }
  return todo.length;
}
