/**
 * `wid setup` run in-process: prompts on and off a terminal, output routing, --out, --templates.
 */
import * as fs from 'node:fs';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { writeFilesAtomically } from '../../src/output/files.js';
import { AKS_BASE, EKS_BASE, EKS_ISSUER, SUB, run } from '../helpers/io.js';

const tmp = mkdtempSync(join(tmpdir(), 'wid-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('prompts', () => {
  it('asks for missing required values on a terminal, in order, validating each', async () => {
    const r = await run(['setup', 'eks', '--dry-run', '-o', 'json'], { tty: true, answers: ['s3-access-sa', EKS_ISSUER, '111122223333'] });
    expect(r.code).toBe(0);
    expect(r.io.prompts.map((p) => p.message)).toEqual([
      'Kubernetes ServiceAccount name (--sa)',
      "the cluster's OIDC issuer URL (--issuer)",
      'the 12-digit AWS account id that owns the role (--account-id)',
    ]);
    expect(r.io.prompts[2]!.validate('123')).toContain('exactly 12 digits');
    expect(JSON.parse(r.stdout).binding.subject).toBe('system:serviceaccount:default:s3-access-sa');
  });

  it('does not prompt off a terminal: the missing flag is a usage error', async () => {
    const r = await run(['setup', 'eks', '--sa', 'x', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.io.prompts).toHaveLength(0);
    expect(r.stderr).toContain('missing required flag --issuer');
  });

  it('checks optional flags before asking anything', async () => {
    const r = await run(['setup', 'eks', '--dry-run', '--token-expiration', '5'], { tty: true, answers: [] });
    expect(r.code).toBe(2);
    expect(r.io.prompts).toHaveLength(0);
  });

  it('takes the subscription from AZURE_SUBSCRIPTION_ID when --subscription is absent', async () => {
    const args = AKS_BASE.filter((a, i) => a !== '--subscription' && AKS_BASE[i - 1] !== '--subscription');
    const r = await run([...args, '-o', 'json'], { env: { AZURE_SUBSCRIPTION_ID: SUB } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).steps[0].resource).toContain(`/subscriptions/${SUB}/`);
  });
});

describe('output routing', () => {
  it('text: manifests on stdout as multi-document YAML, SA first; the plan on stderr', async () => {
    const r = await run(EKS_BASE);
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'Pod']);
    expect(docs[1].spec.serviceAccountName).toBe('s3-access-sa');
    expect(r.stderr).toContain('Plan: eks workload identity for default/s3-access-sa');
    expect(r.stderr).toContain('* ensure iam-role');
    expect(r.stderr).toContain('"sts:AssumeRoleWithWebIdentity"');
    expect(r.stdout).not.toContain('Plan:');
  });

  it('json and yaml carry the same Plan', async () => {
    const j = await run([...EKS_BASE, '-o', 'json']);
    const y = await run([...EKS_BASE, '-o', 'yaml']);
    expect(parseAllDocuments(y.stdout)[0]!.toJS()).toEqual(JSON.parse(j.stdout));
    expect(j.stderr).not.toContain('Plan:');
  });

  it('no colour codes off a terminal', async () => {
    const r = await run(EKS_BASE);
    expect(r.stderr).not.toMatch(/\u001b\[/);
  });

  it('colour on a terminal, none with NO_COLOR or --no-color', async () => {
    expect((await run(EKS_BASE, { tty: true })).stderr).toMatch(/\u001b\[/);
    expect((await run(EKS_BASE, { tty: true, env: { NO_COLOR: '1' } })).stderr).not.toMatch(/\u001b\[/);
    expect((await run([...EKS_BASE, '--no-color'], { tty: true })).stderr).not.toMatch(/\u001b\[/);
  });
});

describe('--out', () => {
  it('writes serviceaccount.yaml and pod.yaml, creating the directory, and nothing else', async () => {
    const out = join(tmp, 'nested', 'out');
    const r = await run([...EKS_BASE, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(readdirSync(out).sort()).toEqual(['pod.yaml', 'serviceaccount.yaml']);
    expect(parseAllDocuments(readFileSync(join(out, 'serviceaccount.yaml'), 'utf8'))[0]!.toJS().metadata.annotations).toEqual({
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/wid-default-s3-access-sa',
    });
    expect(r.stderr).toContain(`wrote ${join(out, 'serviceaccount.yaml')}, ${join(out, 'pod.yaml')}`);
  });

  it('with -o json still prints the plan on stdout', async () => {
    const out = join(tmp, 'json-out');
    const r = await run([...EKS_BASE, '--out', out, '-o', 'json']);
    expect(JSON.parse(r.stdout).kind).toBe('Plan');
    expect(existsSync(join(out, 'pod.yaml'))).toBe(true);
  });

  it('refuses a DIR whose pod.yaml is a directory, before writing anything', async () => {
    const out = join(tmp, 'has-dir');
    mkdirSync(join(out, 'pod.yaml'), { recursive: true });
    const r = await run([...EKS_BASE, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pod.yaml is a directory');
    expect(readdirSync(out)).toEqual(['pod.yaml']);
  });
});

describe('writeFilesAtomically', () => {
  it('restores the previous files when a later rename fails', () => {
    const out = join(tmp, 'atomic');
    mkdirSync(out);
    writeFileSync(join(out, 'a.yaml'), 'old a');
    writeFileSync(join(out, 'b.yaml'), 'old b');
    let renames = 0;
    const faulty = {
      ...fs,
      renameSync: (from: fs.PathLike, to: fs.PathLike) => {
        // 1: a -> backup, 2: tmp -> a, 3: b -> backup, 4: tmp -> b (fails)
        if (++renames === 4) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
        fs.renameSync(from, to);
      },
    };
    expect(() => writeFilesAtomically(out, { 'a.yaml': 'new a', 'b.yaml': 'new b' }, faulty)).toThrow(/cannot write the manifests.*simulated/);
    expect(readdirSync(out).sort()).toEqual(['a.yaml', 'b.yaml']);
    expect(readFileSync(join(out, 'a.yaml'), 'utf8')).toBe('old a');
    expect(readFileSync(join(out, 'b.yaml'), 'utf8')).toBe('old b');
  });

  it('removes a directory it created when writing fails', () => {
    const out = join(tmp, 'fresh', 'dir');
    const faulty = { ...fs, writeFileSync: () => { throw new Error('ENOSPC: simulated'); } };
    expect(() => writeFilesAtomically(out, { 'a.yaml': 'x' }, faulty)).toThrow(/ENOSPC/);
    expect(existsSync(join(tmp, 'fresh'))).toBe(false);
  });

  it('replaces existing files and leaves no temporary or backup files', () => {
    const out = join(tmp, 'replace');
    mkdirSync(out);
    writeFileSync(join(out, 'a.yaml'), 'old');
    writeFilesAtomically(out, { 'a.yaml': 'new', 'b.yaml': 'b' });
    expect(readdirSync(out).sort()).toEqual(['a.yaml', 'b.yaml']);
    expect(readFileSync(join(out, 'a.yaml'), 'utf8')).toBe('new');
  });
});

describe('--templates', () => {
  it('overrides file by file and keeps template fields, with wid values set on the parsed document', async () => {
    const dir = join(tmp, 'tpl');
    mkdirSync(join(dir, 'eks'), { recursive: true });
    writeFileSync(
      join(dir, 'eks', 'pod.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: ignored\n  labels: {team: payments}\n  annotations: {note: "keep me"}\nspec:\n  serviceAccountName: wrong\n  containers:\n    - name: app\n      image: registry.example/app:1\n',
    );
    const r = await run([...EKS_BASE, '--templates', dir, '--sa', 'a.b', '-n', 'apps']);
    expect(r.code).toBe(0);
    const [sa, pod] = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(sa.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'wid' });
    expect(pod.metadata).toEqual({
      name: 'wid-check-a.b',
      namespace: 'apps',
      labels: { team: 'payments', 'app.kubernetes.io/managed-by': 'wid' },
      annotations: { note: 'keep me' },
    });
    expect(pod.spec).toEqual({ serviceAccountName: 'a.b', containers: [{ name: 'app', image: 'registry.example/app:1' }] });
  });

  it('a hostile value stays a value: YAML cannot be injected through inputs', async () => {
    const r = await run([...EKS_BASE.slice(0, -1), '--audience', 'x"\n  evil: true', '--dry-run']);
    // Whitespace is not a valid audience; the value never reaches a template.
    expect(r.code).toBe(2);
    const ok = await run([...EKS_BASE, '--role-name', 'a=b,c@d', '--templates', join(tmp, 'tpl')]);
    const sa = parseAllDocuments(ok.stdout)[0]!.toJS();
    expect(sa.metadata.annotations['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::111122223333:role/a=b,c@d');
  });
});
