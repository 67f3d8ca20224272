#!/usr/bin/env node
// Runs the built CLI (dist/bundle/main.js, made by `npm run build`) and sets the exit code.
//
// Fast path: a bare `wid --version`/`-V` or `wid --help`/`-h` prints the text Commander rendered at
// build time (dist/bundle/fast.json: the version, and the help for every terminal width) without
// loading the CLI. Same bytes, same exit code, a fraction of the start-up time; anything else, or
// a width with no recorded text, goes to the CLI. test/cli/fast-path.test.ts holds the bytes to
// Commander's. This file is CommonJS (bin/package.json): Node starts a CommonJS entry ~10 ms sooner
// than an ES module one, which is most of what the fast path costs over `node -e 0`.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const dist = join(__dirname, '..', 'dist', 'bundle');
const argv = process.argv.slice(2);
const text = argv.length === 1 ? fast(argv[0]) : undefined;
if (text === undefined) {
  import(pathToFileURL(join(dist, 'main.js')).href).then(async ({ main }) => {
    process.exitCode = await main(argv);
  });
} else {
  // As the CLI does: a reader that closes early (`wid --help | head -1`) is not an error.
  process.stdout.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  process.stdout.write(text);
}

function fast(arg) {
  const help = arg === '--help' || arg === '-h';
  if (!help && arg !== '--version' && arg !== '-V') return undefined;
  let data;
  try {
    data = JSON.parse(readFileSync(join(dist, 'fast.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (!help) return data.version;
  // Commander's help width: the terminal's columns on a terminal, else 80.
  const width = (process.stdout.isTTY ? process.stdout.columns : undefined) ?? 80;
  const range = data.help.ranges.find(([from, to]) => width >= from && (to === null || width <= to));
  return range === undefined ? undefined : data.help.texts[range[2]];
}
