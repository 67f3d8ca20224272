/**
 * The doctor's report: one line per check (pass, fail or warn) with what was expected, what was found
 * and what fixes it. The same object renders as text and as `-o json`.
 */
import type { Provider } from '../core/plan.js';

export type CheckStatus = 'pass' | 'fail' | 'warn';

export interface Check {
  /** Stable kebab-case id, e.g. `trust-policy`. */
  id: string;
  status: CheckStatus;
  /** What was checked, and the verdict, in one line. */
  message: string;
  expected?: string;
  found?: string;
  /** The command or flag that fixes it. */
  fix?: string;
}

export interface DoctorReport {
  apiVersion: 'wid/v1';
  kind: 'Doctor';
  provider: Provider | null;
  namespace: string;
  serviceAccount: string;
  ok: boolean;
  checks: Check[];
}

/** Collects checks in order. */
export class Checks {
  readonly list: Check[] = [];

  pass(id: string, message: string, extra: Omit<Check, 'id' | 'status' | 'message'> = {}): void {
    this.list.push({ id, status: 'pass', message, ...extra });
  }

  fail(id: string, message: string, extra: Omit<Check, 'id' | 'status' | 'message'> = {}): void {
    this.list.push({ id, status: 'fail', message, ...extra });
  }

  warn(id: string, message: string, extra: Omit<Check, 'id' | 'status' | 'message'> = {}): void {
    this.list.push({ id, status: 'warn', message, ...extra });
  }

  get failed(): boolean {
    return this.list.some((c) => c.status === 'fail');
  }
}

const MARK: Record<CheckStatus, string> = { pass: '✓', fail: '✗', warn: '!' };

export function reportText(r: DoctorReport, paint: (status: CheckStatus, s: string) => string = (_s, t) => t): string {
  const out = [`Doctor: ${r.provider ?? 'workload identity'} for ${r.namespace}/${r.serviceAccount}`];
  for (const c of r.checks) {
    out.push(`  ${paint(c.status, `${MARK[c.status]} ${c.status.padEnd(4)}`)} ${c.id.padEnd(20)} ${c.message}`);
    if (c.expected !== undefined) out.push(`         expected: ${c.expected}`);
    if (c.found !== undefined) out.push(`         found:    ${c.found}`);
    if (c.fix !== undefined) out.push(`         fix:      ${c.fix}`);
  }
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  const warned = r.checks.filter((c) => c.status === 'warn').length;
  out.push(failed === 0 ? `All ${r.checks.length} checks passed${warned ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}.` : `${failed} of ${r.checks.length} checks failed.`);
  return `${out.join('\n')}\n`;
}
