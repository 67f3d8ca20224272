/**
 * bin/wid.js answers a bare `--version`/`-V` and `--help`/`-h` from dist/bundle/fast.json without
 * loading the CLI. These tests hold it to the same bytes Commander prints, from the sources, at every
 * terminal width. They run the built binary: `npm run build` first (`npm test` does it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgram, main } from '../../src/cli/main.js';
import { testIO } from '../helpers/io.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'wid.js');
const fastJson = join(root, 'dist', 'bundle', 'fast.json');
const tmp = mkdtempSync(join(tmpdir(), 'wid-fast-'));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp };

interface FastData {
  version: string;
  help: { texts: string[]; ranges: Array<[from: number, to: number | null, text: number]> };
}

beforeAll(() => {
  if (!existsSync(fastJson)) throw new Error('dist/bundle/fast.json is missing: run `npm run build` (npm test does)');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What Commander prints for `args` from the sources, with the help width a terminal this wide gives it (undefined: off a terminal). */
async function commander(args: string[], width: number | undefined): Promise<string> {
  const io = testIO();
  const program = createProgram(io);
  // Off a terminal Commander's own getOutHelpWidth returns undefined (its types say number).
  program.configureOutput({ getOutHelpWidth: () => width as number });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c !== 'commander.helpDisplayed' && c !== 'commander.version') throw e;
  }
  expect(io.stderr).toBe('');
  return io.stdout;
}

function wid(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The fast path's lookup, as bin/wid.js does it. */
function recorded(data: FastData, width: number): string | undefined {
  const r = data.help.ranges.find(([from, to]) => width >= from && (to === null || width <= to));
  return r === undefined ? undefined : data.help.texts[r[2]];
}

describe('fast path', () => {
  it('--version and -V print what Commander prints', async () => {
    const expected = await commander(['--version'], undefined);
    expect(expected).toBe(`${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`);
    // And what main() returns for it: exit 0, nothing on stderr.
    const io = testIO();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.stdout).toBe(expected);
    for (const flag of ['--version', '-V']) expect(wid([flag])).toEqual({ code: 0, stdout: expected, stderr: '' });
  });

  it('--help and -h off a terminal print what Commander prints at its default width', async () => {
    const expected = await commander(['--help'], undefined);
    expect(expected).toContain('Usage: wid [options] [command]');
    for (const flag of ['--help', '-h']) expect(wid([flag])).toEqual({ code: 0, stdout: expected, stderr: '' });
  });

  it('the recorded help is Commander\'s at every terminal width (a stale build fails here)', async () => {
    const data = JSON.parse(readFileSync(fastJson, 'utf8')) as FastData;
    expect(data.version).toBe(await commander(['--version'], undefined));
    for (let width = 1; width <= 420; width++) {
      const text = recorded(data, width);
      // Every width has a text: none falls back to the CLI.
      expect(text, `width ${width}`).toBeDefined();
      expect(text, `width ${width}`).toBe(await commander(['--help'], width));
    }
    expect(recorded(data, 100_000)).toBe(await commander(['--help'], 100_000));
  });

  // script(1) gives the child a terminal of a set width, to check the width the fast path reads.
  const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasScript)('on a terminal, --help is wrapped to the terminal\'s width, as Commander does', async () => {
    for (const cols of [60, 100, 200]) {
      const r = spawnSync('script', ['-qec', `stty cols ${cols} rows 50; "${process.execPath}" "${bin}" --help`, '/dev/null'], { encoding: 'utf8', env, timeout: 30_000 });
      expect(r.status).toBe(0);
      // The terminal turns each \n into \r\n.
      expect(r.stdout.replace(/\r\n/g, '\n')).toBe(await commander(['--help'], cols));
    }
  });

  it('anything else goes to the CLI', async () => {
    const expected = await commander(['setup', '--help'], undefined);
    expect(wid(['setup', '--help'])).toEqual({ code: 0, stdout: expected, stderr: '' });
    expect(wid(['--version', '--help'])).toEqual({ code: 0, stdout: await commander(['--version', '--help'], undefined), stderr: '' });
  });
});
