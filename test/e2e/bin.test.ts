/**
 * The built CLI as a child process: exit codes, stdout/stderr separation, the README's commands.
 * Needs `npm run build` first (`npm test` does it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { EKS_ISSUER } from '../helpers/io.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'wid.js');
const tmp = mkdtempSync(join(tmpdir(), 'wid-e2e-'));

function wid(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: tmp, AWS_EC2_METADATA_DISABLED: 'true', METADATA_SERVER_DETECTION: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does)');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('wid binary', () => {
  it('--version prints package.json\'s version', () => {
    const r = wid(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });

  it('--help and setup --help exit 0 with examples', () => {
    for (const args of [['--help'], ['setup', '--help'], ['setup', 'eks', '--help'], ['setup', 'aks', '--help'], ['setup', 'gke', '--help']]) {
      const r = wid(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:');
      expect(r.stdout).toContain('$ wid setup');
    }
  });

  it('no arguments is a usage error', () => {
    expect(wid([]).code).toBe(2);
  });

  it('the README quick start: manifests on stdout, plan on stderr, exit 0', () => {
    const r = wid(['setup', 'eks', '--sa', 's3-access-sa', '--issuer', EKS_ISSUER, '--account-id', '111122223333', '--dry-run']);
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['ServiceAccount', 'Pod']);
    expect(docs[0].metadata.annotations['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::111122223333:role/wid-default-s3-access-sa');
    expect(r.stderr).toContain('Plan: eks workload identity');
    expect(r.stderr).toContain('Dry run: nothing was changed');
  });

  it('the issue\'s show command: the iam-role step holds eksctl\'s trust policy', () => {
    const r = wid(['setup', 'eks', '--sa', 's3-access-sa', '--issuer', EKS_ISSUER, '--account-id', '111122223333', '--role-name', 's3-access-role', '--dry-run', '-o', 'json']);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    const role = plan.steps.find((s: { phase: string }) => s.phase === 'iam-role');
    expect(role.desired.AssumeRolePolicyDocument).toEqual({
      Statement: [
        {
          Action: ['sts:AssumeRoleWithWebIdentity'],
          Condition: {
            StringEquals: {
              'oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:aud': 'sts.amazonaws.com',
              'oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub': 'system:serviceaccount:default:s3-access-sa',
            },
          },
          Effect: 'Allow',
          Principal: { Federated: 'arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE' },
        },
      ],
      Version: '2012-10-17',
    });
    expect(plan.manifests[0].metadata.annotations['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::111122223333:role/s3-access-role');
  });

  it('bad input: exit 2, error on stderr naming the flag, nothing on stdout, nothing written', () => {
    const out = join(tmp, 'never');
    const r = wid(['setup', 'eks', '--sa', 'x', '--issuer', EKS_ISSUER, '--account-id', '12', '--dry-run', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: --account-id "12" is invalid/);
    expect(existsSync(out)).toBe(false);
  });

  it('without --dry-run: exit 2, says applying needs the cluster lookup', () => {
    const r = wid(['setup', 'eks', '--sa', 'x', '--issuer', EKS_ISSUER, '--account-id', '111122223333', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('applying needs the cluster lookup');
    expect(r.stdout).toBe('');
  });

  it('--out writes the files', () => {
    const out = join(tmp, 'out');
    const r = wid(['setup', 'gke', '--sa', 'ksa', '--project', 'my-project', '--gsa', 'my-gsa', '--dry-run', '--out', out]);
    expect(r.code).toBe(0);
    expect(parseAllDocuments(readFileSync(join(out, 'serviceaccount.yaml'), 'utf8'))[0]!.toJS().metadata.annotations).toEqual({
      'iam.gke.io/gcp-service-account': 'my-gsa@my-project.iam.gserviceaccount.com',
    });
    expect(parseAllDocuments(readFileSync(join(out, 'pod.yaml'), 'utf8'))[0]!.toJS().kind).toBe('Pod');
  });
});
