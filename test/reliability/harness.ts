/**
 * Crash-and-resume harness: run a setup uninterrupted and snapshot the result, then for every k kill
 * wid (SIGKILL) right after the emulators answered its k-th write request, run the same setup again,
 * and check that it converges to the uninterrupted state and that teardown leaves nothing of wid's.
 *
 * The kill is synchronous, from the emulators' `onResponse` hook (see each emulator's SPEC.md): the
 * answer has been handed to the socket, the child has not acted on it yet.
 */
import { spawn } from 'node:child_process';
import { BIN, wid, type WidResult } from '../helpers/wid.js';

/** What an emulator's `onResponse` hook tells the harness about one answered request. */
export type ResponseHook = (write: boolean, label: string, status: number) => void;

export interface CrashScenario {
  provider: string;
  env: Record<string, string>;
  /** The setup to crash and resume (with --yes). */
  setup: string[];
  /** The teardown that must remove everything wid made (with --yes and the delete flag). */
  teardown: string[];
  /** Emulators back to empty, then seeded: a fresh world. */
  fresh(): void;
  /** Installs (or, with undefined, removes) the hook on every emulator of the scenario. */
  hook(fn: ResponseHook | undefined): void;
  /** Every request record of every emulator of the scenario (for the write count and quiescence). */
  records(): Array<{ write: boolean; status: number }>;
  /** The normalised state: cloud objects and Kubernetes objects, without server-made ids/etags/times. */
  snapshot(): Promise<unknown>;
  /** Descriptions of things wid made that are still there (after teardown: must be none). */
  leftovers(): Promise<string[]>;
}

export interface CrashFinding {
  k: number;
  /** The k-th write of the killed run (`METHOD path` or the AWS action), with its status. */
  write: string;
  what: string;
  detail: string;
}

export interface CrashReport {
  provider: string;
  /** The writes of the uninterrupted run, in order (`label status`). */
  baselineWrites: string[];
  crashes: number;
  /** Writes the resumed runs sent, summed over k. */
  resumedWrites: number;
  findings: CrashFinding[];
}

/** Spawns wid like test/helpers/wid.ts does, and hands the child to `onChild` (to kill it). */
function spawnWid(args: string[], env: Record<string, string>, onChild: (kill: () => void) => void): Promise<WidResult & { signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (stderr.includes('wid-test: blocked connection')) reject(new Error(`wid tried to leave 127.0.0.1:\n${stderr}`));
      else resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end('');
    onChild(() => child.kill('SIGKILL'));
  });
}

/** Waits until no request of the (dead) child is still arriving or in flight at an emulator. */
async function quiesce(s: CrashScenario): Promise<void> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const recs = s.records();
    if (recs.length === last && recs.every((r) => r.status !== 0)) return;
    last = recs.length;
  }
  throw new Error(`${s.provider}: requests of the killed wid still in flight after 2 s`);
}

const writeCount = (s: CrashScenario): number => s.records().filter((r) => r.write).length;

/** Path-wise differences between two JSON values (`path: - expected + actual`), at most `max` lines. */
export function jsonDiff(expected: unknown, actual: unknown, path = '$', out: string[] = [], max = 40): string[] {
  if (out.length >= max) return out;
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(expected) && Array.isArray(actual)) {
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) jsonDiff(expected[i], actual[i], `${path}[${i}]`, out, max);
  } else if (isObj(expected) && isObj(actual)) {
    for (const key of new Set([...Object.keys(expected), ...Object.keys(actual)])) jsonDiff(expected[key], actual[key], `${path}.${key}`, out, max);
  } else if (JSON.stringify(expected) !== JSON.stringify(actual)) {
    out.push(`${path}: - ${JSON.stringify(expected)} + ${JSON.stringify(actual)}`);
  }
  return out;
}

export async function runCrashResume(s: CrashScenario): Promise<CrashReport> {
  const findings: CrashFinding[] = [];

  // 1. Uninterrupted: setup, snapshot, count and name the writes; teardown, snapshot.
  s.fresh();
  const labels: string[] = [];
  s.hook((write, label, status) => {
    if (write) labels.push(`${label} ${status}`);
  });
  const up = await wid(s.setup, s.env);
  s.hook(undefined);
  if (up.code !== 0) throw new Error(`${s.provider}: uninterrupted setup failed (exit ${up.code}):\n${up.stderr}`);
  const n = writeCount(s);
  if (n !== labels.length || n === 0) throw new Error(`${s.provider}: counted ${n} writes in the logs but the hook saw ${labels.length}`);
  const base = await s.snapshot();
  const down = await wid(s.teardown, s.env);
  if (down.code !== 0) throw new Error(`${s.provider}: uninterrupted teardown failed (exit ${down.code}):\n${down.stderr}`);
  const baseAfter = await s.snapshot();
  const baseLeft = await s.leftovers();
  if (baseLeft.length > 0) findings.push({ k: 0, write: '(uninterrupted run)', what: 'teardown left wid\'s objects behind', detail: baseLeft.join('\n') });

  // 2. For every k: kill after the k-th answered write, resume, compare, tear down, check.
  let resumedWrites = 0;
  for (let k = 1; k <= n; k++) {
    s.fresh();
    let seen = 0;
    let killedAt = '';
    let kill: (() => void) | undefined;
    s.hook((write, label, status) => {
      if (!write || ++seen !== k) return;
      killedAt = `${label} ${status}`;
      kill?.();
      s.hook(undefined);
    });
    const killed = await spawnWid(s.setup, s.env, (fn) => (kill = fn));
    s.hook(undefined);
    const note = (what: string, detail: string): void => void findings.push({ k, write: killedAt || `(no write #${k})`, what, detail });
    if (killed.signal !== 'SIGKILL') {
      note('the killed run was not killed', `exit ${killed.code} after ${seen} writes\n${killed.stderr}`);
      continue;
    }
    await quiesce(s);
    // The kill must land between the k-th answer and anything wid would do with it.
    if (writeCount(s) !== k) note('the kill did not land right after the k-th write', `the killed run sent ${writeCount(s)} writes`);

    const before = writeCount(s);
    const resumed = await wid(s.setup, s.env);
    resumedWrites += writeCount(s) - before;
    if (resumed.code !== 0) {
      note('the resumed setup failed', `exit ${resumed.code}\n${resumed.stderr}`);
      continue;
    }
    const diff = jsonDiff(base, await s.snapshot());
    if (diff.length > 0) note('the resumed setup did not converge to the uninterrupted state', diff.join('\n'));

    const td = await wid(s.teardown, s.env);
    if (td.code !== 0) {
      note('teardown after the resumed setup failed', `exit ${td.code}\n${td.stderr}`);
      continue;
    }
    const left = await s.leftovers();
    if (left.length > 0) note('teardown left wid\'s objects behind', left.join('\n'));
    const afterDiff = jsonDiff(baseAfter, await s.snapshot());
    if (afterDiff.length > 0) note('the state after teardown differs from the uninterrupted run\'s', afterDiff.join('\n'));
  }
  return { provider: s.provider, baselineWrites: labels, crashes: n, resumedWrites, findings };
}
