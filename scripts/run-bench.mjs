#!/usr/bin/env node
/**
 * `npm run bench` (after `npm run build`): bundles scripts/bench.ts with the emulators it imports
 * (TypeScript, which Node 20 cannot run) into node_modules/.cache/wid-bench/, then runs it from the
 * package root. Arguments go through: `npm run bench -- --runs 30 --only startup`.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'node_modules', '.cache', 'wid-bench', 'bench.mjs');
await build({
  absWorkingDir: root,
  entryPoints: ['scripts/bench.ts'],
  outfile,
  bundle: true,
  // Packages (yaml) are imported from node_modules as they are.
  packages: 'external',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
});
process.chdir(root);
await import(pathToFileURL(outfile).href);
