/**
 * wid doctor end to end: a healthy setup made by `wid setup` passes every check; each link broken on
 * purpose is named, exactly, with exit 3. Real SDKs against the emulators.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAwsEmulator, type AwsEmulator } from '../emulators/aws/server.js';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.js';
import { startGcpEmulator, type GcpEmulator } from '../emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { awsEnv, azureEnv, gcpEnv } from '../helpers/cloud-env.js';
import { baseEnv, wid } from '../helpers/wid.js';

interface Report {
  ok: boolean;
  provider: string | null;
  checks: { id: string; status: string; message: string; expected?: string; found?: string; fix?: string }[];
}

let kube: KubeEmulator;
let tmp: string;
let kubeconfig: string;

beforeAll(async () => {
  kube = await startKubeEmulator();
  tmp = mkdtempSync(join(tmpdir(), 'wid-doctor-'));
  kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'test' });
});
afterAll(async () => {
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function doctor(args: string[], env: Record<string, string>): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await wid(['doctor', ...args, '-o', 'json'], env);
  return { code: r.code, report: JSON.parse(r.stdout || '{}') as Report, stderr: r.stderr };
}
const failed = (r: Report): string[] => r.checks.filter((c) => c.status === 'fail').map((c) => c.id);

describe('doctor eks', () => {
  const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/DOCTOR0123456789ABCDEF0123456789A';
  const HP = ISSUER.replace('https://', '');
  let aws: AwsEmulator;
  let env: Record<string, string>;
  beforeAll(async () => {
    aws = await startAwsEmulator();
    env = { ...baseEnv(tmp), ...awsEnv(aws), KUBECONFIG: kubeconfig, WID_RETRY_DELAY_MS: '20' };
  });
  afterAll(() => aws.close());
  beforeEach(async () => {
    aws.reset();
    kube.reset();
    kube.issuer = ISSUER;
    aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: ISSUER });
    kube.seedMutatingWebhook({ name: 'pod-identity-webhook', webhooks: [{ name: 'iam-for-pods.amazonaws.com' }] });
    const up = await wid(['setup', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'apps', '--create-namespace', '--yes'], env);
    expect(up.code).toBe(0);
  });

  it('passes every check on a healthy setup made by wid setup', async () => {
    kube.seedPod({ namespace: 'apps', name: 'app-1', serviceAccountName: 'app', containers: [{ name: 'app', image: 'x', env: [{ name: 'AWS_ROLE_ARN', value: 'arn' }, { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/t' }] }] });
    const r = await doctor(['--sa', 'app', '-n', 'apps'], env);
    expect(r.report.provider).toBe('eks');
    expect(failed(r.report)).toEqual([]);
    expect(r.report.checks.map((c) => c.id)).toEqual(['service-account', 'annotation', 'issuer-discovery', 'token', 'oidc-provider', 'trust-policy', 'webhook', 'pods']);
    expect(r.code).toBe(0);
  });

  it('names a trust policy written for another namespace, with the condition and both values', async () => {
    const role = aws.getRole('wid-apps-app')!;
    const stmt = role.trustPolicy.Statement[0];
    stmt.Condition.StringEquals[`${HP}:sub`] = 'system:serviceaccount:aps:app';
    aws.seedRole({ name: 'wid-apps-app', trustPolicy: role.trustPolicy, tags: role.tags });
    const r = await doctor(['--sa', 'app', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    expect(failed(r.report)).toEqual(['trust-policy']);
    const c = r.report.checks.find((x) => x.id === 'trust-policy')!;
    expect(c.found).toBe(`StringEquals ${HP}:sub: wants "system:serviceaccount:aps:app", the token has "system:serviceaccount:apps:app"`);
  });

  it('names an OIDC provider registered with a trailing slash', async () => {
    aws.reset();
    aws.seedOidcProvider({ url: `${ISSUER}/`, clientIds: ['sts.amazonaws.com'] });
    aws.seedRole({ name: 'wid-apps-app', trustPolicy: { Version: '2012-10-17', Statement: [] } });
    const r = await doctor(['--sa', 'app', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    const c = r.report.checks.find((x) => x.id === 'oidc-provider')!;
    expect(c.status).toBe('fail');
    expect(c.message).toContain('the trailing "/" differs');
  });

  it('names a provider without the audience', async () => {
    aws.reset();
    const role = { Version: '2012-10-17', Statement: [] };
    aws.seedOidcProvider({ url: ISSUER, clientIds: ['other-audience'] });
    aws.seedRole({ name: 'wid-apps-app', trustPolicy: role });
    const r = await doctor(['--sa', 'app', '-n', 'apps'], env);
    const c = r.report.checks.find((x) => x.id === 'oidc-provider')!;
    expect(c.status).toBe('fail');
    expect(c.expected).toBe('sts.amazonaws.com');
    expect(c.found).toBe('["other-audience"]');
    expect(r.code).toBe(3);
  });

  it('names a missing webhook and pods started before the role was set', async () => {
    kube.reset();
    kube.issuer = ISSUER;
    kube.seedServiceAccount({ namespace: 'apps', name: 'app', annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/wid-apps-app' } });
    kube.seedPod({ namespace: 'apps', name: 'old-pod', serviceAccountName: 'app' });
    const r = await doctor(['eks', '--sa', 'app', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    expect(failed(r.report)).toEqual(['webhook', 'pods']);
    expect(r.report.checks.find((x) => x.id === 'pods')!.message).toContain('old-pod');
  });

  it('names a token signed by a key the cluster does not publish', async () => {
    kube.faults.signWithUnknownKey();
    const r = await doctor(['--sa', 'app', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    expect(failed(r.report)).toEqual(['token']);
    expect(r.report.checks.find((x) => x.id === 'token')!.message).toContain('signature does not verify');
  });

  it('text output names the broken link, what was expected and found, and the fix; never a token', async () => {
    kube.faults.signWithUnknownKey();
    const r = await wid(['doctor', '--sa', 'app', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/✗ fail\s+token/);
    expect(r.stdout).toContain('fix:');
    expect(r.stdout + r.stderr).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
  });

  it('a missing ServiceAccount fails the first check', async () => {
    const r = await doctor(['--sa', 'nope', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    expect(failed(r.report)).toEqual(['service-account']);
  });
});

describe('doctor aks', () => {
  const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
  const RG = 'prod-rg';
  const ISSUER = 'https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/4c6bde49-0f8b-4f52-9b15-21c8a6f43a1e/';
  let azure: AzureEmulator;
  let env: Record<string, string>;
  const IDENTITY_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-id`;
  beforeAll(async () => {
    azure = await startAzureEmulator();
    env = {
      ...baseEnv(tmp),
      ...azureEnv(azure, SUB),
      KUBECONFIG: kubeconfig,
    };
  });
  afterAll(() => azure.close());
  beforeEach(async () => {
    azure.reset();
    kube.reset();
    kube.issuer = ISSUER;
    azure.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'prod', location: 'westeurope', issuer: ISSUER });
    kube.seedMutatingWebhook({ name: 'azure-wi-webhook-mutating-webhook-configuration', webhooks: [{ name: 'mutation.azure-workload-identity.io' }] });
    const up = await wid(['setup', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'my-sa', '-n', 'apps', '--identity', 'my-id', '--create-namespace', '--yes'], env);
    expect(up.code).toBe(0);
  });

  it('passes every check on a healthy setup, finding the identity by its client id', async () => {
    kube.seedPod({ namespace: 'apps', name: 'web-1', serviceAccountName: 'my-sa', labels: { 'azure.workload.identity/use': 'true' }, containers: [{ name: 'web', image: 'x', env: [{ name: 'AZURE_FEDERATED_TOKEN_FILE', value: '/t' }] }] });
    const r = await doctor(['--sa', 'my-sa', '-n', 'apps'], env);
    expect(r.report.provider).toBe('aks');
    expect(failed(r.report)).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('names an issuer whose only difference is the trailing slash', async () => {
    const [fic] = azure.listFederatedCredentials(IDENTITY_ID);
    azure.reset();
    azure.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'prod', location: 'westeurope', issuer: ISSUER });
    const id = azure.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'my-id', location: 'westeurope' });
    azure.seedFederatedCredential(id.id, { name: fic!.name, issuer: ISSUER.slice(0, -1), subject: 'system:serviceaccount:apps:my-sa' });
    kube.seedServiceAccount({ namespace: 'apps', name: 'my-sa', annotations: { 'azure.workload.identity/client-id': id.clientId } });
    const r = await doctor(['--sa', 'my-sa', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    expect(failed(r.report)).toEqual(['federated-credential']);
    expect(r.report.checks.find((x) => x.id === 'federated-credential')!.message).toContain('the trailing "/" differs');
  });

  it('names pods without the label, and ones the webhook did not mutate', async () => {
    kube.seedPod({ namespace: 'apps', name: 'nolabel', serviceAccountName: 'my-sa' });
    kube.seedPod({ namespace: 'apps', name: 'stale', serviceAccountName: 'my-sa', labels: { 'azure.workload.identity/use': 'true' } });
    const r = await doctor(['--sa', 'my-sa', '-n', 'apps'], env);
    expect(r.code).toBe(3);
    const pods = r.report.checks.filter((x) => x.id === 'pods');
    expect(pods.map((p) => p.message).join('\n')).toMatch(/nolabel lacks the label azure\.workload\.identity\/use/);
    expect(pods.map((p) => p.message).join('\n')).toMatch(/stale was not mutated/);
  });
});

describe('doctor gke', () => {
  const PROJECT = 'my-project';
  const NUMBER = '123456789012';
  const POOL = `${PROJECT}.svc.id.goog`;
  let gcp: GcpEmulator;
  let env: Record<string, string>;
  const ARGS = ['gke', '--cluster', 'prod', '--location', 'europe-west1', '--project', PROJECT];
  beforeAll(async () => {
    gcp = await startGcpEmulator();
    env = {
      ...baseEnv(tmp),
      ...gcpEnv(gcp, tmp, PROJECT, NUMBER),
      KUBECONFIG: kubeconfig,
      WID_RETRY_DELAY_MS: '10',
    };
  });
  afterAll(() => gcp.close());
  beforeEach(() => {
    gcp.reset();
    kube.reset();
    gcp.seedProject({ projectId: PROJECT, projectNumber: NUMBER });
    gcp.seedCluster({ project: PROJECT, location: 'europe-west1', name: 'prod', workloadPool: POOL, nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }] });
    kube.seedNamespace('apps');
  });

  it('gsa mode: healthy passes; a missing binding is named with the member it needs', async () => {
    expect((await wid(['setup', ...ARGS, '--sa', 'ksa', '-n', 'apps', '--gsa', 'app-gsa', '--yes'], env)).code).toBe(0);
    const ok = await doctor(['--sa', 'ksa', '-n', 'apps', ...ARGS.slice(1)], env);
    expect(ok.report.provider).toBe('gke');
    expect(failed(ok.report)).toEqual([]);
    expect(ok.code).toBe(0);

    gcp.setPolicy(`projects/${PROJECT}/serviceAccounts/app-gsa@${PROJECT}.iam.gserviceaccount.com`, { bindings: [] });
    const broken = await doctor(['--sa', 'ksa', '-n', 'apps', ...ARGS.slice(1)], env);
    expect(broken.code).toBe(3);
    expect(failed(broken.report)).toEqual(['iam-binding']);
    expect(broken.report.checks.find((c) => c.id === 'iam-binding')!.expected).toBe(`serviceAccount:${POOL}[apps/ksa]`);
  });

  it('direct mode: healthy passes; a node pool off the metadata server and host-network pods are named', async () => {
    expect((await wid(['setup', ...ARGS, '--sa', 'ksa', '-n', 'apps', '--role', 'roles/storage.objectViewer', '--yes'], env)).code).toBe(0);
    const ok = await doctor([...ARGS, '--sa', 'ksa', '-n', 'apps'], env);
    expect(failed(ok.report)).toEqual([]);
    expect(ok.code).toBe(0);

    gcp.seedCluster({ project: PROJECT, location: 'europe-west1', name: 'prod', workloadPool: POOL, nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }, { name: 'legacy', mode: 'GCE_METADATA' }] });
    kube.seedPod({ namespace: 'apps', name: 'hostnet', serviceAccountName: 'ksa', hostNetwork: true });
    const broken = await doctor([...ARGS, '--sa', 'ksa', '-n', 'apps'], env);
    expect(broken.code).toBe(3);
    expect(failed(broken.report)).toEqual(['node-pools', 'pods']);
    expect(broken.report.checks.find((c) => c.id === 'node-pools')!.fix).toContain('gcloud container node-pools update legacy');
  });
});
