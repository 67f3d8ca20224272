/**
 * Cloud faults, end to end: for each provider's write steps, a transient fault (throttling, 5xx) is
 * retried and setup converges; a persistent one ends with exit 1, the cloud's error and how far the
 * run got, and running setup again converges; a hanging endpoint ends in a clear error within the
 * time limit. Real SDKs against the emulators.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAwsEmulator, type AwsEmulator } from '../emulators/aws/server.js';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.js';
import { startGcpEmulator, type GcpEmulator } from '../emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { baseEnv, wid } from '../helpers/wid.js';

let kube: KubeEmulator;
let tmp: string;
let kubeconfig: string;
const tally = { injected: 0, transientConverged: 0, persistentReported: 0, resumed: 0, timeouts: 0 };

beforeAll(async () => {
  kube = await startKubeEmulator();
  tmp = mkdtempSync(join(tmpdir(), 'wid-faults-'));
  kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig);
});
afterAll(async () => {
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
  console.log(`faults: ${tally.injected} faults injected; ${tally.transientConverged} transient runs converged, ${tally.persistentReported} persistent failures reported and ${tally.resumed} resumed, ${tally.timeouts} hanging endpoints timed out`);
});

describe('eks', () => {
  const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/FAULTS0123456789ABCDEF0123456789AB';
  let aws: AwsEmulator;
  let env: Record<string, string>;
  const SETUP = ['setup', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'apps', '--attach-policy-arn', 'arn:aws:iam::aws:policy/ReadOnlyAccess', '--yes'];
  beforeAll(async () => {
    aws = await startAwsEmulator();
    env = { ...baseEnv(tmp), AWS_ENDPOINT_URL_IAM: aws.iamUrl, AWS_ENDPOINT_URL_EKS: aws.eksUrl, AWS_ENDPOINT_URL_STS: aws.stsUrl, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'test-secret-key', AWS_REGION: 'us-west-2', KUBECONFIG: kubeconfig, WID_RETRY_DELAY_MS: '10' };
  });
  afterAll(() => aws.close());
  beforeEach(() => {
    aws.reset();
    kube.reset();
    kube.seedNamespace('apps');
    aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: ISSUER });
  });

  for (const action of ['CreateOpenIDConnectProvider', 'CreateRole', 'AttachRolePolicy']) {
    it(`${action}: throttling and 503 are retried, and setup converges`, async () => {
      aws.faults.failNext(action, { status: 400, code: 'Throttling', message: 'Rate exceeded' }, 1);
      aws.faults.failNext(action, { status: 503, code: 'ServiceUnavailable', message: 'Service Unavailable' }, 1);
      tally.injected += 2;
      const r = await wid(SETUP, env);
      expect(r.stderr).toContain('Applied 4 changes.');
      expect(r.code).toBe(0);
      expect(aws.getRole('wid-apps-app')!.attachedPolicies).toEqual(['arn:aws:iam::aws:policy/ReadOnlyAccess']);
      tally.transientConverged++;
    });
  }

  it('a persistent 500 on CreateRole: exit 1 with the cloud error and how far it got; the next run converges', async () => {
    aws.faults.failNext('CreateRole', { status: 500, code: 'ServiceFailure', message: 'Request processing has failed due to an unknown error.' }, 20);
    tally.injected += 1;
    const r = await wid(SETUP, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ServiceFailure: Request processing has failed due to an unknown error.');
    expect(r.stderr).toContain('1 of 4 changes were applied before it');
    tally.persistentReported++;
    aws.faults.clear();
    const again = await wid([...SETUP, '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps.map((s: { action: string }) => s.action)).toEqual(['noop', 'create', 'create', 'create']);
    tally.resumed++;
  });

  it('a hanging IAM endpoint ends in a clear error within the time limit', async () => {
    aws.faults.latencyMs = 5000;
    tally.injected += 1;
    const started = Date.now();
    const r = await wid([...SETUP.slice(0, -1), '--dry-run'], { ...env, WID_TIMEOUT_MS: '300' });
    aws.faults.latencyMs = 0;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not answer in time|timed? ?out/i);
    expect(Date.now() - started).toBeLessThan(15_000);
    tally.timeouts++;
  });
});

describe('aks', () => {
  const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
  const RG = 'prod-rg';
  let azure: AzureEmulator;
  let env: Record<string, string>;
  const SETUP = ['setup', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'app', '-n', 'apps', '--identity', 'app-id', '--role', 'Reader', '--scope', `/subscriptions/${SUB}/resourceGroups/${RG}`, '--yes'];
  beforeAll(async () => {
    azure = await startAzureEmulator();
    env = {
      ...baseEnv(tmp),
      AZURE_TOKEN_CREDENTIALS: 'EnvironmentCredential',
      AZURE_TENANT_ID: azure.tenantId,
      AZURE_CLIENT_ID: azure.clientId,
      AZURE_CLIENT_SECRET: azure.clientSecret,
      AZURE_AUTHORITY_HOST: azure.url,
      AZURE_RESOURCE_MANAGER_ENDPOINT: azure.url,
      AZURE_SUBSCRIPTION_ID: SUB,
      NODE_EXTRA_CA_CERTS: azure.caPath,
      KUBECONFIG: kubeconfig,
      WID_RETRY_DELAY_MS: '10',
    };
  });
  afterAll(() => azure.close());
  beforeEach(() => {
    azure.reset();
    kube.reset();
    kube.seedNamespace('apps');
    azure.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'prod', location: 'westeurope' });
  });

  for (const [step, path] of [
    ['identity', /userAssignedIdentities\/app-id$/],
    ['federated credential', /federatedIdentityCredentials\//],
    ['role assignment', /roleAssignments\//],
  ] as const) {
    it(`${step}: 429 with Retry-After and 503 are retried, and setup converges`, async () => {
      azure.faults.throttle(path, 1, 0);
      azure.faults.failNext('PUT', path, 503, 'ServiceUnavailable', 'The service is temporarily unavailable.', 1);
      tally.injected += 2;
      const r = await wid(SETUP, env);
      expect(r.stderr).toContain('Applied 4 changes.');
      expect(r.code).toBe(0);
      tally.transientConverged++;
    });
  }

  it('a persistent 500 on the federated credential: exit 1 with ARM\'s error; the next run converges', async () => {
    azure.faults.failNext('PUT', /federatedIdentityCredentials\//, 500, 'InternalServerError', 'Encountered internal server error.', 50);
    tally.injected += 1;
    const r = await wid(SETUP, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('InternalServerError');
    expect(r.stderr).toContain('1 of 4 changes were applied before it');
    tally.persistentReported++;
    azure.faults.clear();
    const again = await wid([...SETUP, '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps.map((s: { action: string }) => s.action)).toEqual(['noop', 'create', 'create', 'create']);
    tally.resumed++;
  });
});

describe('gke', () => {
  const PROJECT = 'my-project';
  let gcp: GcpEmulator;
  let env: Record<string, string>;
  const SETUP = ['setup', 'gke', '--cluster', 'prod', '--location', 'europe-west1', '--sa', 'app', '-n', 'apps', '--gsa', 'app-gsa', '--role', 'roles/viewer', '--yes'];
  beforeAll(async () => {
    gcp = await startGcpEmulator();
    const creds = join(tmp, 'adc.json');
    gcp.writeCredentialsFile(creds, { projectNumber: '123456789012' });
    env = {
      ...baseEnv(tmp),
      GOOGLE_APPLICATION_CREDENTIALS: creds,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM: gcp.url,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER: gcp.url,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER: gcp.url,
      CLOUDSDK_CORE_PROJECT: PROJECT,
      KUBECONFIG: kubeconfig,
      WID_RETRY_DELAY_MS: '10',
    };
  });
  afterAll(() => gcp.close());
  beforeEach(() => {
    gcp.reset();
    kube.reset();
    kube.seedNamespace('apps');
    gcp.seedProject({ projectId: PROJECT, projectNumber: '123456789012' });
    gcp.seedCluster({ project: PROJECT, location: 'europe-west1', name: 'prod', workloadPool: `${PROJECT}.svc.id.goog`, nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }] });
  });

  for (const [step, method, path] of [
    ['service account', 'POST', /\/serviceAccounts$/],
    ['iam-binding', 'POST', /serviceAccounts\/.+:setIamPolicy$/],
    ['project-role', 'POST', /projects\/my-project:setIamPolicy$/],
  ] as const) {
    it(`${step}: 429 RESOURCE_EXHAUSTED and 503 are retried, and setup converges`, async () => {
      gcp.faults.quotaExceeded(method, path, 1);
      gcp.faults.failNext(method, path, 503, 'UNAVAILABLE', 'The service is currently unavailable.', 1);
      tally.injected += 2;
      const r = await wid(SETUP, env);
      expect(r.stderr).toContain('Applied 4 changes.');
      expect(r.code).toBe(0);
      tally.transientConverged++;
    });
  }

  it('a persistent 500 on the project policy: exit 1 with Google\'s error; the next run converges', async () => {
    gcp.faults.failNext('POST', /projects\/my-project:setIamPolicy$/, 500, 'INTERNAL', 'Internal error encountered.', 50);
    tally.injected += 1;
    const r = await wid(SETUP, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Internal error encountered.');
    expect(r.stderr).toContain('2 of 4 changes were applied before it');
    tally.persistentReported++;
    gcp.faults.clear();
    const again = await wid([...SETUP, '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps.map((s: { action: string }) => s.action)).toEqual(['noop', 'noop', 'update', 'create']);
    tally.resumed++;
  });

  it('Kubernetes: a dropped connection and a 503 are retried, and setup converges', async () => {
    kube.faults.failNext('GET', /\/serviceaccounts\/app$/, 503, 'ServiceUnavailable', 'the server is currently unable to handle the request', 1);
    kube.faults.failNext('POST', /\/serviceaccounts$/, 0, '', '', 1);
    tally.injected += 2;
    const r = await wid(SETUP, env);
    expect(r.stderr).toContain('Applied 4 changes.');
    expect(r.code).toBe(0);
    expect(kube.getServiceAccount('apps', 'app').metadata.annotations['iam.gke.io/gcp-service-account']).toBe(`app-gsa@${PROJECT}.iam.gserviceaccount.com`);
    tally.transientConverged++;
  });

  it('a hanging Kubernetes API ends in a clear error within the time limit', async () => {
    kube.faults.latencyMs = 5000;
    tally.injected += 1;
    const started = Date.now();
    const r = await wid([...SETUP.slice(0, -1), '--dry-run'], { ...env, WID_TIMEOUT_MS: '300' });
    kube.faults.latencyMs = 0;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('did not answer');
    expect(Date.now() - started).toBeLessThan(15_000);
    tally.timeouts++;
  });
});
