/**
 * A live run, shared by setup and teardown on every provider: plan from real reads, show it, stop on
 * --dry-run, confirm (a prompt on a terminal, --yes elsewhere), apply step by step, report.
 */
import { applySteps, changes, planPhases } from '../core/engine.js';
import { UsageError, WidError } from '../core/errors.js';
import type { KubeObject, LivePhase } from '../core/phase.js';
import type { Binding, Plan, Provider } from '../core/plan.js';
import { TEMPLATE_FILES } from '../kube/manifests.js';
import { writeFilesAtomically } from '../output/files.js';
import { manifestsYaml, planJson, planText, planYaml, toYaml } from '../output/render.js';
import { isInteractive, type IO } from './io.js';
import type { RunOptions } from './request.js';
import { styleFor } from './style.js';

export interface LiveRun<R, C> {
  mode: 'setup' | 'teardown';
  provider: Provider;
  binding: Binding;
  phases: LivePhase<R, C>[];
  req: R;
  ctx: C;
  /**
   * Setup: the ServiceAccount and check Pod (stdout, or --out), rendered from what is known at the
   * time: again after applying, when a new cloud identity's ids are known. Teardown: none.
   */
  manifests: () => KubeObject[];
  /** Said after a setup that changed something (e.g. restart running pods). */
  afterApply?: string[];
  /** Valid but likely wrong (e.g. a node pool without the GKE metadata server); said after the plan. */
  warnings?: string[];
  /** Worth knowing (e.g. the principal to grant other resources to); said after the plan. */
  notes?: string[];
}

export async function runLive<R, C>(live: LiveRun<R, C>, run: RunOptions, io: IO): Promise<void> {
  const style = styleFor(io, run.color);
  const planned = await planPhases(live.phases, live.req, live.ctx);
  const plan: Plan = {
    apiVersion: 'wid/v1',
    kind: 'Plan',
    provider: live.provider,
    dryRun: run.dryRun,
    binding: live.binding,
    steps: planned.steps,
    manifests: live.manifests(),
  };
  if (run.output === 'text') io.err(planText(plan, style, live.mode === 'teardown' ? 'Teardown' : 'Plan'));
  for (const w of live.warnings ?? []) io.err(`${style.warn('warning:')} ${w}\n`);
  for (const n of live.notes ?? []) io.err(`note: ${n}\n`);
  const todo = changes(plan.steps);

  const finish = (message: string): void => {
    plan.manifests = live.manifests();
    if (run.out !== undefined && plan.manifests.length > 0) {
      const [sa, pod] = plan.manifests;
      const written = writeFilesAtomically(run.out, { [TEMPLATE_FILES.serviceAccount]: toYaml(sa), [TEMPLATE_FILES.pod]: toYaml(pod) });
      io.err(`wrote ${written.join(', ')}\n`);
    }
    if (run.output === 'json') io.out(planJson(plan));
    else if (run.output === 'yaml') io.out(planYaml(plan));
    else if (run.out === undefined && plan.manifests.length > 0) io.out(manifestsYaml(plan.manifests));
    io.err(message);
  };

  if (run.dryRun) return finish(`Dry run: ${todo.length === 0 ? 'nothing to change' : `${todo.length} change${todo.length === 1 ? '' : 's'} planned`}; nothing was changed.\n`);
  if (todo.length === 0) return finish('Nothing to change: everything is already as wanted.\n');
  if (!run.yes) {
    if (!isInteractive(io)) {
      throw new UsageError('WID_E_CONFIRM_NEEDED', `${todo.length} change${todo.length === 1 ? '' : 's'} planned; off a terminal wid applies them only with --yes`, {
        flag: '--yes',
        hint: 'review the plan above, then run the same command with --yes (or --dry-run to only plan)',
      });
    }
    if (!(await io.confirm(`Apply ${todo.length} change${todo.length === 1 ? '' : 's'}?`))) {
      throw new WidError('WID_E_CANCELLED', 'cancelled: nothing was changed', { exitCode: 1 });
    }
  }
  const applied = await applySteps(planned, live.req, live.ctx, {
    applied: (step) => io.err(`  ${style.action(step.action, '✓')} ${step.action} ${step.phase} ${step.resource}\n`),
  });
  const after = applied > 0 && live.afterApply ? live.afterApply.map((l) => `${l}\n`).join('') : '';
  finish(`Applied ${applied} change${applied === 1 ? '' : 's'}.\n${after}`);
}
