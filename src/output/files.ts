/**
 * `--out DIR`: writes the manifests as files, all or nothing. Every file is first written to a
 * temporary name in DIR; then each target is swapped in, keeping the old file aside until all are in
 * place, so a failure at any point restores what was there and leaves no partial result.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { RuntimeError, UsageError } from '../core/errors.js';

/** Checks DIR before anything runs: it may be missing (it is created) but must be a directory, and the files in it must not be directories. */
export function checkOutDir(dir: string, names: string[]): void {
  const kind = (p: string): 'dir' | 'other' | 'none' => {
    try {
      return fs.statSync(p).isDirectory() ? 'dir' : 'other';
    } catch {
      return 'none';
    }
  };
  // Writing through a symlink would put the manifests somewhere the user did not name.
  const isLink = (p: string): boolean => {
    try {
      return fs.lstatSync(p).isSymbolicLink();
    } catch {
      return false;
    }
  };
  if (isLink(dir)) throw new UsageError('WID_E_INPUT_INVALID', `--out ${JSON.stringify(dir)} is invalid: it is a symbolic link; name the real directory`, { flag: '--out' });
  const d = kind(dir);
  if (d === 'other') throw new UsageError('WID_E_INPUT_INVALID', `--out ${JSON.stringify(dir)} is invalid: it exists and is not a directory`, { flag: '--out' });
  for (const n of names) {
    if (d === 'dir' && kind(join(dir, n)) === 'dir') {
      throw new UsageError('WID_E_INPUT_INVALID', `--out ${JSON.stringify(dir)} is invalid: ${join(dir, n)} is a directory`, { flag: '--out' });
    }
    if (d === 'dir' && isLink(join(dir, n))) {
      throw new UsageError('WID_E_INPUT_INVALID', `--out ${JSON.stringify(dir)} is invalid: ${join(dir, n)} is a symbolic link`, { flag: '--out' });
    }
  }
}

/** The filesystem calls used, replaceable in tests to inject faults. */
export interface FileOps {
  mkdirSync: typeof fs.mkdirSync;
  writeFileSync: typeof fs.writeFileSync;
  renameSync: typeof fs.renameSync;
  rmSync: typeof fs.rmSync;
  existsSync: typeof fs.existsSync;
  chmodSync: typeof fs.chmodSync;
}

export function writeFilesAtomically(dir: string, files: Record<string, string>, ops: FileOps = fs): string[] {
  let created: string | undefined;
  const stamp = randomBytes(6).toString('hex');
  const entries = Object.entries(files).map(([name, text]) => ({
    text,
    target: join(dir, name),
    tmp: join(dir, `.${name}.${stamp}.tmp`),
    backup: join(dir, `.${name}.${stamp}.bak`),
    backedUp: false,
    placed: false,
  }));
  try {
    created = ops.mkdirSync(dir, { recursive: true });
    // 0644 whatever the umask: manifests are meant to be read (and committed) by others.
    for (const e of entries) {
      ops.writeFileSync(e.tmp, e.text, { flag: 'wx', mode: 0o644 });
      ops.chmodSync(e.tmp, 0o644);
    }
    for (const e of entries) {
      if (ops.existsSync(e.target)) {
        ops.renameSync(e.target, e.backup);
        e.backedUp = true;
      }
      ops.renameSync(e.tmp, e.target);
      e.placed = true;
    }
  } catch (err) {
    for (const e of entries) {
      try {
        if (e.placed) ops.rmSync(e.target, { force: true });
        if (e.backedUp) ops.renameSync(e.backup, e.target);
        ops.rmSync(e.tmp, { force: true });
      } catch {
        // Best effort: keep undoing the others.
      }
    }
    if (created !== undefined) ops.rmSync(created, { recursive: true, force: true });
    throw new RuntimeError('WID_E_OUT_WRITE', `cannot write the manifests to ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const e of entries) if (e.backedUp) ops.rmSync(e.backup, { force: true });
  return entries.map((e) => e.target);
}
