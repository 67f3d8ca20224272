/**
 * `--out DIR`: writes the manifests as files, all or nothing. Every file is first written to a
 * temporary name in DIR, then renamed into place, so a failure leaves no partial file behind.
 */
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { RuntimeError, UsageError } from '../core/errors.js';

/** Checks DIR before anything runs: it may be missing (it is created) but must not be a file. */
export function checkOutDir(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return;
  }
  if (!isDir) throw new UsageError('WID_E_INPUT_INVALID', `--out ${JSON.stringify(dir)} is invalid: it exists and is not a directory`, { flag: '--out' });
}

export function writeFilesAtomically(dir: string, files: Record<string, string>): string[] {
  let created: string | undefined;
  const temps: string[] = [];
  try {
    created = mkdirSync(dir, { recursive: true });
    const stamp = randomBytes(6).toString('hex');
    const plan = Object.entries(files).map(([name, text]) => {
      const tmp = join(dir, `.${name}.${stamp}.tmp`);
      writeFileSync(tmp, text, { flag: 'wx' });
      temps.push(tmp);
      return { tmp, target: join(dir, name) };
    });
    for (const { tmp, target } of plan) renameSync(tmp, target);
    return plan.map((p) => p.target);
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true });
    if (created !== undefined) rmSync(created, { recursive: true, force: true });
    throw new RuntimeError('WID_E_OUT_WRITE', `cannot write the manifests to ${dir}: ${(e as Error).message}`, { cause: e });
  }
}
