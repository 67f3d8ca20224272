/**
 * Renderers of the same Plan: machine-readable (JSON, YAML; stdout) and human (stderr), plus the
 * manifests as multi-document YAML (stdout, ready for `kubectl apply -f -`).
 */
import { stringify } from 'yaml';
import type { KubeObject } from '../core/phase.js';
import type { Action, Plan } from '../core/plan.js';

export function planJson(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}

export function toYaml(value: unknown): string {
  // lineWidth 0: never fold long strings (ARNs, principals) across lines.
  return stringify(value, { lineWidth: 0, minContentWidth: 0 });
}

export function planYaml(plan: Plan): string {
  return toYaml(plan);
}

export function manifestsYaml(manifests: KubeObject[]): string {
  return manifests.map((m) => toYaml(m)).join('---\n');
}

/** Colour functions; identity when colour is off (not a TTY, NO_COLOR, --no-color). */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  action(a: Action, s: string): string;
}

export const plainStyle: Style = { bold: (s) => s, dim: (s) => s, action: (_a, s) => s };

const SYMBOL: Record<Action, string> = { create: '+', update: '~', noop: '=', delete: '-', ensure: '*' };

export function planText(plan: Plan, style: Style = plainStyle, title = 'Plan'): string {
  const b = plan.binding;
  const out: string[] = [];
  out.push(style.bold(`${title}: ${plan.provider} workload identity for ${b.namespace}/${b.serviceAccount}`));
  const rows: [string, string][] = [
    ['issuer', b.issuer ?? '(supplied by the cluster)'],
    ['subject', b.subject],
    ['audience', b.audience],
  ];
  for (const [k, v] of rows) out.push(`  ${k.padEnd(9)}${v}`);
  out.push('');
  if (plan.steps.length === 0) out.push('  no cloud steps');
  const width = Math.max(0, ...plan.steps.map((s) => s.phase.length));
  for (const s of plan.steps) {
    out.push(`  ${style.action(s.action, `${SYMBOL[s.action]} ${s.action.padEnd(6)}`)} ${s.phase.padEnd(width)}  ${s.resource}${s.note ? style.dim(`  (${s.note})`) : ''}`);
    // The full document for what changes; a noop or delete has nothing new to show.
    if (s.action === 'noop' || s.action === 'delete' || Object.keys(s.desired).length === 0) continue;
    for (const line of JSON.stringify(s.desired, null, 2).split('\n')) out.push(style.dim(`      ${line}`));
    for (const [field, from] of Object.entries(s.pending ?? {})) out.push(style.dim(`      ${field}: filled in at apply: ${from}`));
  }
  if (plan.manifests.length > 0) {
    out.push('');
    const kinds = plan.manifests.map((m) => `${String(m.kind)} ${String((m.metadata as Record<string, unknown> | undefined)?.name)}`);
    out.push(`  manifests: ${kinds.join(', ')}`);
  }
  if (plan.steps.some((s) => s.action === 'ensure')) {
    out.push('');
    out.push(style.dim('  * ensure: offline, the current state was not read; applying creates or updates it to match.'));
  }
  return `${out.join('\n')}\n`;
}
