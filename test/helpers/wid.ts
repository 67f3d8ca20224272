/**
 * Runs the built wid binary as a child process, against the local emulators only.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'wid.js');
const GUARD = join(ROOT, 'test', 'helpers', 'loopback-guard.mjs');

export interface WidResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment for a child wid: nothing from the developer's shell (no real credentials or kubeconfig). */
export function baseEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    // Never probe instance metadata addresses: everything stays on 127.0.0.1.
    AWS_EC2_METADATA_DISABLED: 'true',
    METADATA_SERVER_DETECTION: 'none',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    NO_COLOR: '1',
    // Every connection beyond the loopback fails and is reported (see loopback-guard.mjs).
    NODE_OPTIONS: `--import=${pathToFileURL(GUARD).href}`,
  };
}

/** Values a spawned wid must never print: the test credentials it was given, and any token shape. */
function leaks(env: Record<string, string>, text: string): string[] {
  const secrets = Object.entries(env)
    .filter(([k, v]) => /SECRET|PASSWORD/.test(k) && v.length >= 6)
    .map(([k]) => k)
    .filter((k) => text.includes(env[k]!));
  // A signed JWT (header.payload.signature), or a Google access token.
  if (/eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]{10,}/.test(text)) secrets.push('a signed JWT');
  if (/ya29\.[\w-]{10,}/.test(text)) secrets.push('a Google access token');
  return secrets;
}

export function wid(args: string[], env: Record<string, string>, input?: string): Promise<WidResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // A test's wid must never reach past 127.0.0.1; the guard reports any attempt.
      if (stderr.includes('wid-test: blocked connection')) reject(new Error(`wid tried to leave 127.0.0.1:\n${stderr}`));
      // Nothing secret may appear in any output of any test's wid.
      else if (leaks(env, stdout + stderr).length > 0) reject(new Error(`wid printed ${leaks(env, stdout + stderr).join(', ')}`));
      else resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
