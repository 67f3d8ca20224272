import { describe, expect, it } from 'vitest';
import type { IO } from '../../src/cli/io.js';
import { colorEnabled, styleFor } from '../../src/cli/style.js';

function io(stderrIsTTY: boolean, env: Record<string, string | undefined> = {}): IO {
  return {
    out: () => {},
    err: () => {},
    stdinIsTTY: stderrIsTTY,
    stdoutIsTTY: stderrIsTTY,
    stderrIsTTY,
    env,
    prompt: async () => '',
    confirm: async () => false,
  };
}

// What chalk 5.6.2 printed at level 1 (the level wid used) for each style and input, recorded before
// chalk was replaced by hand-written SGR codes: the bytes on a terminal must not change.
const E = '\u001b';
const CHALK: Array<[name: 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan', input: string, output: string]> = [];
for (const [name, open, close] of [
  ['bold', 1, 22],
  ['dim', 2, 22],
  ['red', 31, 39],
  ['green', 32, 39],
  ['yellow', 33, 39],
  ['cyan', 36, 39],
] as const) {
  const on = `${E}[${open}m`;
  const off = `${E}[${close}m`;
  CHALK.push(
    [name, '', ''],
    [name, 'plain', `${on}plain${off}`],
    [name, 'two\nlines', `${on}two${off}\n${on}lines${off}`],
    [name, 'crlf\r\nend', `${on}crlf${off}\r\n${on}end${off}`],
    [name, 'trail\n', `${on}trail${off}\n${on}${off}`],
  );
}
// Nesting: a close code of the same style inside the text reopens the style after it.
CHALK.push(
  ['bold', `has ${E}[39m close`, `${E}[1mhas ${E}[39m close${E}[22m`],
  ['red', `has ${E}[39m close`, `${E}[31mhas ${E}[39m${E}[31m close${E}[39m`],
  ['cyan', `has ${E}[39m close`, `${E}[36mhas ${E}[39m${E}[36m close${E}[39m`],
  ['bold', `nested ${E}[1mb${E}[22m x`, `${E}[1mnested ${E}[1mb${E}[22m${E}[1m x${E}[22m`],
  ['dim', `nested ${E}[1mb${E}[22m x`, `${E}[2mnested ${E}[1mb${E}[22m${E}[2m x${E}[22m`],
  ['green', `nested ${E}[1mb${E}[22m x`, `${E}[32mnested ${E}[1mb${E}[22m x${E}[39m`],
);

describe('style', () => {
  it('colours only on a terminal, never with NO_COLOR, --no-color or TERM=dumb', () => {
    expect(colorEnabled(io(true), true)).toBe(true);
    expect(colorEnabled(io(true, { NO_COLOR: '' }), true)).toBe(true);
    expect(colorEnabled(io(false), true)).toBe(false);
    expect(colorEnabled(io(true), false)).toBe(false);
    expect(colorEnabled(io(true, { NO_COLOR: '1' }), true)).toBe(false);
    expect(colorEnabled(io(true, { TERM: 'dumb' }), true)).toBe(false);
  });

  it('prints the same bytes chalk did on a terminal', () => {
    const s = styleFor(io(true), true);
    const paint = { bold: s.bold, dim: s.dim, red: s.error, yellow: s.warn, green: (t: string) => s.action('create', t), cyan: (t: string) => s.action('ensure', t) };
    for (const [name, input, output] of CHALK) expect([name, input, paint[name](input)]).toEqual([name, input, output]);
    expect(s.action('update', 'u')).toBe(`${E}[33mu${E}[39m`);
    expect(s.action('noop', 'n')).toBe(`${E}[2mn${E}[22m`);
    expect(s.action('delete', 'd')).toBe(`${E}[31md${E}[39m`);
    expect(s.dim(`a${s.bold('b')}c`)).toBe(`${E}[2ma${E}[1mb${E}[22m${E}[2mc${E}[22m`);
  });

  it('leaves text untouched when colour is off', () => {
    for (const s of [styleFor(io(false), true), styleFor(io(true), false), styleFor(io(true, { NO_COLOR: '1' }), true)]) {
      for (const [, input] of CHALK) {
        expect(s.bold(input)).toBe(input);
        expect(s.dim(input)).toBe(input);
        expect(s.warn(input)).toBe(input);
        expect(s.error(input)).toBe(input);
        for (const a of ['create', 'update', 'noop', 'delete', 'ensure'] as const) expect(s.action(a, input)).toBe(input);
      }
    }
  });
});
