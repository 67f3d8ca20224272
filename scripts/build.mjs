#!/usr/bin/env node
/**
 * The second half of `npm run build` (after `tsc`, which type-checks and emits dist/**):
 *
 * 1. bundles src/cli/main.ts with esbuild into dist/bundle/: ESM with code splitting, so the CLI core
 *    is one file and each lazily imported part (a provider's SDK, the Kubernetes client, the setup
 *    run, the prompts) is its own chunk, loaded only by the commands that use it. bin/wid.js runs
 *    this bundle: Node reads a few large files instead of hundreds of small ones, which is most of
 *    the start-up cost of a command that loads an SDK (see README, Performance).
 * 2. writes dist/bundle/fast.json: `wid --version` and the bare `wid --help` exactly as Commander
 *    prints them (the help for every terminal width), so bin/wid.js answers those two without
 *    loading the CLI. test/cli/fast-path.test.ts checks the bytes against Commander.
 *
 * Bundling pitfalls (Node 20, esbuild ESM --splitting), handled here or to keep in mind:
 * - `await import('some-cjs-package')` in src yields only `default` once split (`X is not a
 *   constructor`). Import CJS packages statically in a module of our own and import() that module,
 *   as src/providers/<p>/sdk.ts do. ESM-only packages (jose, @inquirer/prompts) are fine either way.
 * - CJS dependencies call require() and read __dirname/__filename: the banner gives ESM a require,
 *   and the two names are defined from import.meta.url (import.meta.dirname needs Node 20.11).
 * - Every output file sits two levels below the package root, as dist/cli/*.js did, so
 *   `new URL('../../templates/', import.meta.url)` and `../../package.json` still resolve.
 *
 * A rebuild never pulls files from under a running wid: the build goes to a staging folder beside
 * dist/bundle/, and its files are renamed into place, main.js last, so a new start always finds the
 * chunks its main.js names. Chunks of an earlier build (their names carry a content hash) stay for
 * STALE_GRACE_MS after a build stops producing them, for a wid that started before and loads its
 * chunks lazily; dist/.bundle-stale.json records since when each one is stale.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
// Two levels below the root too: the fast path data below is made by running the staged build.
const staging = join(root, 'dist', `.bundle-${process.pid}`);
const staleFile = join(root, 'dist', '.bundle-stale.json');
const STALE_GRACE_MS = 10 * 60_000;

rmSync(staging, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // No minifying: it did not make start-up faster (shared/reference/node-libs.md §3), and readable
  // names keep an internal error's stack trace useful.
  banner: {
    js: [
      "import { createRequire as __wid_createRequire } from 'node:module';",
      "import { dirname as __wid_dirnameOf } from 'node:path';",
      "import { fileURLToPath as __wid_fileURLToPath } from 'node:url';",
      'const require = __wid_createRequire(import.meta.url);',
      'const __wid_filename = __wid_fileURLToPath(import.meta.url);',
      'const __wid_dirname = __wid_dirnameOf(__wid_filename);',
    ].join('\n'),
  },
  define: { __dirname: '__wid_dirname', __filename: '__wid_filename' },
  logLevel: 'warning',
});

// ---- fast path data: what Commander prints for `wid --version` and `wid --help` ----

const { createProgram } = await import(pathToFileURL(join(staging, 'main.js')).href);
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;

/** Runs the real program on `args` with the help width Commander would take from a terminal this wide. */
async function printed(args, width) {
  let out = '';
  let err = '';
  const io = { out: (s) => void (out += s), err: (s) => void (err += s), stdinIsTTY: false, stdoutIsTTY: false, stderrIsTTY: false, env: {} };
  const program = createProgram(io);
  program.configureOutput({ getOutHelpWidth: () => width });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e?.code !== 'commander.helpDisplayed' && e?.code !== 'commander.version') throw e;
  }
  if (err !== '') throw new Error(`wid ${args.join(' ')} wrote to stderr: ${err}`);
  return out;
}

const versionText = await printed(['--version'], undefined);
if (versionText !== `${version}\n`) throw new Error(`wid --version printed ${JSON.stringify(versionText)}, package.json says ${version}`);

// Commander wraps help to the terminal width (80 off a terminal). Record the text for widths 1..LIMIT
// as ranges; past the widest wrap point the text no longer changes, so the last range is open-ended
// when the text at LIMIT equals the unwrapped one.
const LIMIT = 400;
const texts = [];
const ranges = [];
for (let w = 1; w <= LIMIT; w++) {
  const t = await printed(['--help'], w);
  let i = texts.indexOf(t);
  if (i === -1) i = texts.push(t) - 1;
  const last = ranges[ranges.length - 1];
  if (last && last[2] === i && last[1] === w - 1) last[1] = w;
  else ranges.push([w, w, i]);
}
if (texts[ranges[ranges.length - 1][2]] === (await printed(['--help'], 1_000_000))) ranges[ranges.length - 1][1] = null;

writeFileSync(join(staging, 'fast.json'), JSON.stringify({ version: versionText, help: { texts, ranges } }));

// ---- into place ----

mkdirSync(outdir, { recursive: true });
const built = readdirSync(staging);
for (const f of [...built.filter((f) => f !== 'main.js'), 'main.js']) renameSync(join(staging, f), join(outdir, f));
rmSync(staging, { recursive: true, force: true });

let staleSince = {};
try {
  staleSince = JSON.parse(readFileSync(staleFile, 'utf8'));
} catch {
  // none yet
}
const now = Date.now();
const stillStale = {};
for (const f of readdirSync(outdir)) {
  if (built.includes(f)) continue;
  const since = staleSince[f] ?? now;
  if (now - since > STALE_GRACE_MS) rmSync(join(outdir, f), { force: true });
  else stillStale[f] = since;
}
writeFileSync(staleFile, JSON.stringify(stillStale));
// Staging folders of builds that were interrupted (their process is gone).
for (const f of readdirSync(join(root, 'dist'))) {
  const pid = Number(/^\.bundle-(\d+)$/.exec(f)?.[1]);
  if (!pid) continue;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if (e.code === 'ESRCH') rmSync(join(root, 'dist', f), { recursive: true, force: true });
  }
}
