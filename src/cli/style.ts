/**
 * Colour for messages on stderr: only on a terminal, never with NO_COLOR, --no-color or TERM=dumb.
 *
 * Six basic SGR codes written by hand instead of a colour library: importing one cost ~10 ms of every
 * start. The output is byte for byte what chalk 5 printed at level 1 (test/unit/style.test.ts).
 */
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

type Paint = (s: string) => string;

/**
 * Wraps text in an SGR open/close pair, as chalk does: a close code already inside the text reopens
 * this style after it (so nested styles do not end it early), and each line break is closed before
 * and reopened after (so no style bleeds into the next line or the prompt).
 */
function sgr(open: number, close: number): Paint {
  const on = `\u001b[${open}m`;
  const off = `\u001b[${close}m`;
  return (s) => {
    if (!s) return s;
    let t = s.includes('\u001b') ? s.replaceAll(off, off + on) : s;
    if (t.includes('\n')) t = t.replace(/\r?\n/g, (nl) => off + nl + on);
    return on + t + off;
  };
}

const plain: Paint = (s) => s;
const ansi = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};
const none: typeof ansi = { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };

export function styleFor(io: IO, flag: boolean): CliStyle {
  const c = colorEnabled(io, flag) ? ansi : none;
  const byAction: Record<Action, Paint> = {
    create: c.green,
    update: c.yellow,
    noop: c.dim,
    delete: c.red,
    ensure: c.cyan,
  };
  return {
    bold: c.bold,
    dim: c.dim,
    action: (a, s) => byAction[a](s),
    warn: c.yellow,
    error: c.red,
  };
}
