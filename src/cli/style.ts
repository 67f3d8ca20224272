/**
 * Colour for messages on stderr: only on a terminal, never with NO_COLOR or --no-color.
 */
import { Chalk } from 'chalk';
import type { Action } from '../core/plan.js';
import type { Style } from '../output/render.js';
import type { IO } from './io.js';

export interface CliStyle extends Style {
  warn(s: string): string;
  error(s: string): string;
}

export function colorEnabled(io: IO, flag: boolean): boolean {
  const noColor = io.env.NO_COLOR;
  return flag && io.stderrIsTTY && (noColor === undefined || noColor === '') && io.env.TERM !== 'dumb';
}

export function styleFor(io: IO, flag: boolean): CliStyle {
  const c = new Chalk({ level: colorEnabled(io, flag) ? 1 : 0 });
  const byAction: Record<Action, (s: string) => string> = {
    create: c.green,
    update: c.yellow,
    noop: c.dim,
    delete: c.red,
    ensure: c.cyan,
  };
  return {
    bold: (s) => c.bold(s),
    dim: (s) => c.dim(s),
    action: (a, s) => byAction[a](s),
    warn: (s) => c.yellow(s),
    error: (s) => c.red(s),
  };
}
