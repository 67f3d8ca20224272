/**
 * EKS live, end to end: the built wid, the real AWS SDK and @kubernetes/client-node, against the
 * local AWS (IAM, EKS, STS) and Kubernetes emulators. No SDK call is stubbed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAwsEmulator, type AwsEmulator } from '../emulators/aws/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { awsEnv } from '../helpers/cloud-env.js';
import { baseEnv, wid } from '../helpers/wid.js';

const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/E2E0123456789ABCDEF0123456789ABCD';
const HOSTPATH = 'oidc.eks.us-west-2.amazonaws.com/id/E2E0123456789ABCDEF0123456789ABCD';
const ACCOUNT = '111122223333';
const PROVIDER_ARN = `arn:aws:iam::${ACCOUNT}:oidc-provider/${HOSTPATH}`;
const POLICY = 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess';
const SUBJECT = 'system:serviceaccount:apps:s3-access-sa';

/** A statement someone else put in the role's trust policy; wid must keep it byte for byte. */
const UNRELATED = { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };

let aws: AwsEmulator;
let kube: KubeEmulator;
let tmp: string;
let env: Record<string, string>;

beforeAll(async () => {
  aws = await startAwsEmulator({ accountId: ACCOUNT });
  kube = await startKubeEmulator({ issuer: ISSUER });
  tmp = mkdtempSync(join(tmpdir(), 'wid-eks-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'prod' });
  env = {
    ...baseEnv(tmp),
    ...awsEnv(aws),
    KUBECONFIG: kubeconfig,
    WID_RETRY_DELAY_MS: '20',
  };
});

afterAll(async () => {
  await aws?.close();
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  aws.reset();
  kube.reset();
  aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: ISSUER });
});

const SETUP = ['setup', 'eks', '--cluster', 'prod', '--sa', 's3-access-sa', '-n', 'apps', '--role-name', 's3-access-role', '--attach-policy-arn', POLICY];
const TEARDOWN = ['teardown', 'eks', '--cluster', 'prod', '--sa', 's3-access-sa', '-n', 'apps', '--role-name', 's3-access-role'];

function seedExisting(): void {
  aws.seedRole({ name: 's3-access-role', trustPolicy: { Version: '2012-10-17', Statement: [UNRELATED] } });
  kube.seedServiceAccount({ namespace: 'apps', name: 's3-access-sa', annotations: { 'example.com/owner': 'team-a' }, labels: { team: 'a' } });
}

const awsWrites = (): string[] => aws.writes().filter((r) => r.status < 300).map((r) => r.action);
const kubeWrites = (): string[] => kube.writes().filter((r) => r.status < 300).map((r) => `${r.method} ${r.path}`);

describe('wid setup/teardown eks against the emulators', () => {
  it('plans from real reads, applies, converges with zero writes, and tears down only what is wid\'s', async () => {
    seedExisting();

    // 1. dry run: real reads, truthful actions, no write request.
    const dry = await wid([...SETUP, '--dry-run', '-o', 'json'], env);
    expect(dry.stderr).toBe('Dry run: 4 changes planned; nothing was changed.\n');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.steps.map((s: { phase: string; action: string }) => `${s.action} ${s.phase}`)).toEqual([
      'create oidc-provider',
      'update iam-role',
      'create policy-attachment',
      'update service-account',
    ]);
    expect(plan.binding).toEqual({ issuer: ISSUER, namespace: 'apps', serviceAccount: 's3-access-sa', subject: SUBJECT, audience: 'sts.amazonaws.com' });
    expect(aws.writes()).toEqual([]);
    expect(kube.writes()).toEqual([]);

    // 2. apply.
    const applied = await wid([...SETUP, '--yes'], env);
    expect(applied.stderr).toContain('Applied 4 changes.');
    expect(applied.stderr).toContain('keep their old credentials until restarted');
    expect(applied.code).toBe(0);
    expect(awsWrites()).toEqual(['CreateOpenIDConnectProvider', 'UpdateAssumeRolePolicy', 'AttachRolePolicy']);
    const provider = aws.getOidcProvider(PROVIDER_ARN)!;
    expect(provider.clientIds).toEqual(['sts.amazonaws.com']);
    expect(provider.tags).toEqual({ 'managed-by': 'wid', 'wid/cluster': 'prod' });
    const role = aws.getRole('s3-access-role')!;
    expect(role.trustPolicy.Statement).toEqual([
      UNRELATED,
      {
        Action: ['sts:AssumeRoleWithWebIdentity'],
        Condition: { StringEquals: { [`${HOSTPATH}:aud`]: 'sts.amazonaws.com', [`${HOSTPATH}:sub`]: SUBJECT } },
        Effect: 'Allow',
        Principal: { Federated: PROVIDER_ARN },
      },
    ]);
    expect(role.attachedPolicies).toEqual([POLICY]);
    const sa = kube.getServiceAccount('apps', 's3-access-sa');
    expect(sa.metadata.annotations).toEqual({ 'example.com/owner': 'team-a', 'eks.amazonaws.com/role-arn': `arn:aws:iam::${ACCOUNT}:role/s3-access-role` });
    expect(sa.metadata.labels).toEqual({ team: 'a', 'app.kubernetes.io/managed-by': 'wid' });

    // 3. run again: every step noop, zero write requests.
    const before = { aws: aws.writes().length, kube: kube.writes().length };
    const again = await wid([...SETUP, '--yes', '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps.every((s: { action: string }) => s.action === 'noop')).toBe(true);
    expect(again.stderr).toContain('Nothing to change');
    expect(aws.writes().length).toBe(before.aws);
    expect(kube.writes().length).toBe(before.kube);

    // 4. teardown: the subject leaves the trust policy, the annotation goes, the rest stays.
    const down = await wid([...TEARDOWN, '--delete-oidc-provider', '--yes'], env);
    expect(down.code).toBe(0);
    expect(aws.getRole('s3-access-role')!.trustPolicy.Statement).toEqual([UNRELATED]);
    expect(aws.getOidcProvider(PROVIDER_ARN)).toBeUndefined();
    const after = kube.getServiceAccount('apps', 's3-access-sa');
    expect(after.metadata.annotations).toEqual({ 'example.com/owner': 'team-a' });
    expect(after.metadata.labels).toEqual({ team: 'a' });

    // 5. teardown again: nothing to do.
    const w = { aws: aws.writes().length, kube: kube.writes().length };
    const twice = await wid([...TEARDOWN, '--delete-oidc-provider', '--yes'], env);
    expect(twice.code).toBe(0);
    expect(twice.stderr).toContain('Nothing to change');
    expect(aws.writes().length).toBe(w.aws);
    expect(kube.writes().length).toBe(w.kube);
  });

  it('creates the role and ServiceAccount (and namespace) it needs, and teardown deletes exactly those', async () => {
    const up = await wid(['setup', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'fresh', '--create-namespace', '--attach-policy-arn', POLICY, '--yes'], env);
    expect(up.code).toBe(0);
    const role = aws.getRole('wid-fresh-app')!;
    expect(role.tags).toEqual({ 'managed-by': 'wid', 'wid/cluster': 'prod', 'wid/namespace': 'fresh', 'wid/service-account': 'app' });
    expect(kube.namespaces()).toContain('fresh');
    const sa = kube.getServiceAccount('fresh', 'app');
    expect(sa.metadata.annotations['eks.amazonaws.com/role-arn']).toBe(`arn:aws:iam::${ACCOUNT}:role/wid-fresh-app`);
    expect(sa.metadata.annotations['wid/created']).toBe('true');
    // stdout still carries the manifests, ready for kubectl apply (the check Pod among them).
    expect(up.stdout).toContain('kind: Pod');

    const down = await wid(['teardown', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'fresh', '--yes'], env);
    expect(down.code).toBe(0);
    expect(awsWrites().slice(-2)).toEqual(['DetachRolePolicy', 'DeleteRole']);
    expect(aws.getRole('wid-fresh-app')).toBeUndefined();
    expect(kube.getServiceAccount('fresh', 'app')).toBeUndefined();
    // Kept without --delete-oidc-provider.
    expect(aws.getOidcProvider(PROVIDER_ARN)).toBeDefined();
  });

  it('off a terminal, without --yes: prints the plan, changes nothing, exit 2', async () => {
    seedExisting();
    const r = await wid(SETUP, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Plan: eks workload identity for apps/s3-access-sa');
    expect(r.stderr).toContain('off a terminal wid applies them only with --yes');
    expect(aws.writes()).toEqual([]);
    expect(kube.writes()).toEqual([]);
  });

  it('a missing namespace fails before any change unless --create-namespace', async () => {
    const r = await wid([...SETUP, '--yes'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('namespace apps does not exist in kube context prod');
    expect(r.stderr).toContain('--create-namespace');
    expect(aws.writes()).toEqual([]);
  });

  it('--out writes the manifests and leaves the cluster alone', async () => {
    const out = join(tmp, 'out');
    const r = await wid([...SETUP, '--out', out, '--yes'], env);
    expect(r.code).toBe(0);
    expect(kube.log).toEqual([]);
    expect(r.stderr).toContain(`wrote ${join(out, 'serviceaccount.yaml')}`);
  });

  it('a ServiceAccount annotated with another role is a conflict, unless --override', async () => {
    kube.seedServiceAccount({ namespace: 'apps', name: 's3-access-sa', annotations: { 'eks.amazonaws.com/role-arn': `arn:aws:iam::${ACCOUNT}:role/other` } });
    const r = await wid([...SETUP, '--yes'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is annotated eks.amazonaws.com/role-arn: arn:aws:iam::${ACCOUNT}:role/other, not arn:aws:iam::${ACCOUNT}:role/s3-access-role`);
    expect(aws.writes()).toEqual([]);
    const o = await wid([...SETUP, '--yes', '--override'], env);
    expect(o.code).toBe(0);
    expect(kube.getServiceAccount('apps', 's3-access-sa').metadata.annotations['eks.amazonaws.com/role-arn']).toBe(`arn:aws:iam::${ACCOUNT}:role/s3-access-role`);
  });

  it('errors keep the cloud\'s code and say what to do, before anything changes', async () => {
    kube.seedNamespace('apps');
    const missing = await wid([...SETUP, '--cluster', 'prod', '--region', 'eu-west-1', '--dry-run'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('EKS cluster prod not found in region eu-west-1');
    expect(missing.stderr).toContain('ResourceNotFoundException: No cluster found for name: prod.');

    aws.seedCluster({ name: 'old', region: 'us-west-2' });
    const noIssuer = await wid(['setup', 'eks', '--cluster', 'old', '--sa', 'x', '--dry-run'], env);
    expect(noIssuer.code).toBe(1);
    expect(noIssuer.stderr).toContain('EKS cluster old has no OIDC issuer');

    const badPolicy = await wid([...SETUP, '--attach-policy-arn', 'arn:aws:iam::111122223333:policy/nope', '--yes'], env);
    expect(badPolicy.code).toBe(1);
    expect(badPolicy.stderr).toContain('Policy arn:aws:iam::111122223333:policy/nope does not exist or is not attachable.');
    expect(aws.writes()).toEqual([]);

    aws.faults.deny('CreateRole');
    const denied = await wid(['setup', 'eks', '--cluster', 'prod', '--sa', 'denied', '-n', 'apps', '--yes'], env);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('AccessDenied');
    expect(denied.stderr).toContain('needs iam:CreateRole');
    expect(denied.stderr).toContain('1 of 3 changes were applied before it');
    aws.faults.clear();
    const resumed = await wid(['setup', 'eks', '--cluster', 'prod', '--sa', 'denied', '-n', 'apps', '--yes', '-o', 'json'], env);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout).steps.map((s: { action: string }) => s.action)).toEqual(['noop', 'create', 'create']);
  });

  it('refuses a trust policy over the 2048-character quota before sending it', async () => {
    const filler = Array.from({ length: 12 }, (_, i) => ({
      Effect: 'Allow',
      Principal: { Federated: PROVIDER_ARN },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { [`${HOSTPATH}:sub`]: `system:serviceaccount:other:sa-${i}` } },
    }));
    aws.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'] });
    aws.seedRole({ name: 's3-access-role', trustPolicy: { Version: '2012-10-17', Statement: filler.slice(0, 6) } });
    const r = await wid([...SETUP, '--dry-run'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the trust policy of role s3-access-role would be \d+ characters, over IAM's quota of 2048/);
    expect(aws.writes()).toEqual([]);
  });

  it('annotates the real ARN of an existing role that has a path', async () => {
    aws.seedRole({ name: 's3-access-role', path: '/team/', trustPolicy: { Version: '2012-10-17', Statement: [UNRELATED] } });
    kube.seedNamespace('apps');
    const r = await wid([...SETUP, '--yes'], env);
    expect(r.code).toBe(0);
    expect(kube.getServiceAccount('apps', 's3-access-sa').metadata.annotations['eks.amazonaws.com/role-arn']).toBe(`arn:aws:iam::${ACCOUNT}:role/team/s3-access-role`);
    const again = await wid([...SETUP, '--yes'], env);
    expect(again.stderr).toContain('Nothing to change');
  });

  it('teardown leaves a statement it did not write, even one that also trusts this ServiceAccount', async () => {
    const shared = {
      Effect: 'Allow',
      Principal: { Federated: PROVIDER_ARN },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { [`${HOSTPATH}:aud`]: 'sts.amazonaws.com', [`${HOSTPATH}:sub`]: [SUBJECT, 'system:serviceaccount:apps:other'] } },
    };
    aws.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'] });
    aws.seedRole({ name: 's3-access-role', trustPolicy: { Version: '2012-10-17', Statement: [shared] } });
    kube.seedNamespace('apps');
    const up = await wid([...SETUP.slice(0, -2), '--yes', '-o', 'json'], env);
    expect(JSON.parse(up.stdout).steps.find((s: { phase: string }) => s.phase === 'iam-role').action).toBe('noop');
    const down = await wid([...TEARDOWN, '--yes'], env);
    expect(down.code).toBe(0);
    expect(aws.getRole('s3-access-role')!.trustPolicy.Statement).toEqual([shared]);
  });

  it('--context naming a missing context is bad input', async () => {
    const r = await wid([...SETUP, '--context', 'nope', '--dry-run'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--context "nope" is invalid: the kubeconfig has no such context (it has: prod)');
    expect(aws.log).toEqual([]);
  });

  it('--cluster with --issuer is a contradiction', async () => {
    const r = await wid([...SETUP, '--issuer', ISSUER, '--dry-run'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--issuer cannot be used with --cluster');
    expect(aws.log).toEqual([]);
  });
});
