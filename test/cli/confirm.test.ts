/**
 * Live setup in-process on a (pretend) terminal: the plan, then a confirmation prompt. Real AWS SDK
 * and client-node against the emulators.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAwsEmulator, type AwsEmulator } from '../emulators/aws/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { run } from '../helpers/io.js';

const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/CONFIRM0123456789ABCDEF0123456789';
let aws: AwsEmulator;
let kube: KubeEmulator;
let tmp: string;
let kubeconfig: string;

beforeAll(async () => {
  aws = await startAwsEmulator();
  kube = await startKubeEmulator();
  tmp = mkdtempSync(join(tmpdir(), 'wid-confirm-'));
  kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_IAM: aws.iamUrl,
    AWS_ENDPOINT_URL_EKS: aws.eksUrl,
    AWS_ENDPOINT_URL_STS: aws.stsUrl,
    AWS_ACCESS_KEY_ID: 'AKIDWIDTEST',
    AWS_SECRET_ACCESS_KEY: 'wid-test-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(tmp, 'none'),
    AWS_SHARED_CREDENTIALS_FILE: join(tmp, 'none'),
  });
});
afterAll(async () => {
  await aws.close();
  await kube.close();
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  aws.reset();
  kube.reset();
  aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: ISSUER });
});

const ARGS = () => ['setup', 'eks', '--cluster', 'prod', '--region', 'us-west-2', '--sa', 'app', '--kubeconfig', kubeconfig];

describe('confirmation on a terminal', () => {
  it('asks before applying, and applies on yes', async () => {
    const r = await run(ARGS(), { tty: true, confirms: [true] });
    expect(r.code).toBe(0);
    expect(r.io.prompts.map((p) => p.message)).toEqual(['Apply 3 changes?']);
    const plain = r.stderr.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain.indexOf('Plan: eks')).toBeGreaterThanOrEqual(0);
    expect(plain.indexOf('Plan: eks')).toBeLessThan(plain.indexOf('✓ create oidc-provider'));
    expect(aws.getRole('wid-default-app')).toBeDefined();
  });

  it('changes nothing on no, and says so', async () => {
    const r = await run(ARGS(), { tty: true, confirms: [false] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cancelled: nothing was changed');
    expect(aws.writes()).toEqual([]);
    expect(kube.writes()).toEqual([]);
  });

  it('does not ask with --yes, nor when there is nothing to change', async () => {
    expect((await run([...ARGS(), '--yes'], { tty: true })).code).toBe(0);
    const again = await run(ARGS(), { tty: true });
    expect(again.code).toBe(0);
    expect(again.io.prompts).toEqual([]);
    expect(again.stderr).toContain('Nothing to change');
  });

  it('uses colour on a terminal for the plan', async () => {
    const r = await run([...ARGS(), '--dry-run'], { tty: true });
    expect(r.stderr).toMatch(/\u001b\[/);
  });
});
