/**
 * Cloud faults, end to end: for each provider's write steps, a transient fault (throttling, 5xx, a
 * dropped connection) is retried and setup (or teardown) converges; a persistent one ends with exit 1,
 * the cloud's error and how far the run got, and running setup again converges; a hanging endpoint
 * ends in a clear error within the time limit. Real SDKs against the emulators.
 *
 * A dropped connection comes in two kinds (see each emulator's SPEC.md): the request was lost before
 * the cloud handled it (failNext with status 0), or the cloud handled it and the answer was lost
 * (dropAnswerNext), so a resend meets its own effect: "already exists" after a create, "not found"
 * after a delete, a stale etag after a setIamPolicy. Both must end in the same state as a clean run.
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

let kube: KubeEmulator;
let tmp: string;
let kubeconfig: string;
const tally = { injected: 0, transientConverged: 0, persistentReported: 0, resumed: 0, timeouts: 0 };
/** The steps' actions of a JSON plan, by phase (for checks that must not depend on the step order). */
const actionsOf = (stdout: string): Record<string, string[]> => {
  const out: Record<string, string[]> = {};
  for (const s of (JSON.parse(stdout) as { steps: { phase: string; action: string }[] }).steps) (out[s.phase] ??= []).push(s.action);
  return out;
};

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
    env = { ...baseEnv(tmp), ...awsEnv(aws), KUBECONFIG: kubeconfig, WID_RETRY_DELAY_MS: '10' };
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

  const DROP = { status: 0, code: '', message: '' };
  const statementsOf = (role: string): Record<string, unknown>[] => (aws.getRole(role)!.trustPolicy as { Statement: Record<string, unknown>[] }).Statement;
  const subjectsOf = (role: string): unknown[] =>
    statementsOf(role).map((st) => (st.Condition as { StringEquals?: Record<string, unknown> } | undefined)?.StringEquals?.[`${ISSUER.slice('https://'.length)}:sub`] ?? st.Sid);

  for (const action of ['CreateOpenIDConnectProvider', 'CreateRole', 'AttachRolePolicy']) {
    it(`${action}: a lost request and a lost answer (dropped connections) are retried, and setup converges`, async () => {
      aws.faults.failNext(action, DROP, 1);
      aws.faults.dropAnswerNext(action, 1);
      tally.injected += 2;
      const r = await wid(SETUP, env);
      expect(r.stderr).toContain('Applied 4 changes.');
      expect(r.code).toBe(0);
      expect(aws.log.filter((x) => x.action === action).map((x) => x.status).slice(0, 2)).toEqual([0, 0]);
      // The resend met the first attempt's effect, and nothing is doubled.
      expect(subjectsOf('wid-apps-app')).toEqual(['system:serviceaccount:apps:app']);
      expect(aws.getRole('wid-apps-app')!.attachedPolicies).toEqual(['arn:aws:iam::aws:policy/ReadOnlyAccess']);
      const again = await wid([...SETUP, '-o', 'json'], env);
      expect(again.code).toBe(0);
      expect(new Set(Object.values(actionsOf(again.stdout)).flat())).toEqual(new Set(['noop']));
      tally.transientConverged++;
    });
  }

  describe('an existing role: setup updates its trust policy (UpdateAssumeRolePolicy)', () => {
    const unrelated = { Sid: 'Ec2', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };
    const SHARED = [...SETUP.slice(0, -1), '--role-name', 'shared-role', '--yes'];
    beforeEach(() => aws.seedRole({ name: 'shared-role', trustPolicy: { Version: '2012-10-17', Statement: [unrelated] } }));

    for (const [kind, inject] of [
      ['throttling and 503', () => {
        aws.faults.failNext('UpdateAssumeRolePolicy', { status: 400, code: 'Throttling', message: 'Rate exceeded' }, 1);
        aws.faults.failNext('UpdateAssumeRolePolicy', { status: 503, code: 'ServiceUnavailable', message: 'Service Unavailable' }, 1);
      }],
      ['a lost request and a lost answer (dropped connections)', () => {
        aws.faults.failNext('UpdateAssumeRolePolicy', DROP, 1);
        aws.faults.dropAnswerNext('UpdateAssumeRolePolicy', 1);
      }],
    ] as const) {
      it(`${kind} are retried (wid reads again and merges again), and setup converges`, async () => {
        inject();
        tally.injected += 2;
        const r = await wid(SHARED, env);
        expect(r.stderr).toContain('Applied 4 changes.');
        expect(r.code).toBe(0);
        expect(aws.log.filter((x) => x.action === 'UpdateAssumeRolePolicy').map((x) => x.status).slice(0, 2).every((st) => st !== 200)).toBe(true);
        expect(statementsOf('shared-role')[0]).toEqual(unrelated);
        expect(subjectsOf('shared-role')).toEqual(['Ec2', 'system:serviceaccount:apps:app']);
        tally.transientConverged++;
      });
    }

    it('a persistent throttle: exit 1 with the cloud error and how far it got; the next run converges', async () => {
      aws.faults.failNext('UpdateAssumeRolePolicy', { status: 400, code: 'Throttling', message: 'Rate exceeded' }, 50);
      tally.injected += 1;
      const r = await wid(SHARED, env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('Throttling: Rate exceeded');
      expect(r.stderr).toContain('1 of 4 changes were applied before it');
      // Bounded: a handful of writes, not an endless loop.
      const tries = aws.log.filter((x) => x.action === 'UpdateAssumeRolePolicy').length;
      expect(tries).toBeGreaterThan(1);
      expect(tries).toBeLessThanOrEqual(6);
      expect(subjectsOf('shared-role')).toEqual(['Ec2']);
      tally.persistentReported++;
      aws.faults.clear();
      const again = await wid([...SHARED, '-o', 'json'], env);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout).steps.map((st: { action: string }) => st.action)).toEqual(['noop', 'update', 'create', 'create']);
      expect(subjectsOf('shared-role')).toEqual(['Ec2', 'system:serviceaccount:apps:app']);
      tally.resumed++;
    });

    it('teardown: UpdateAssumeRolePolicy under throttling, 503 and a dropped connection converges', async () => {
      expect((await wid(SHARED, env)).code).toBe(0);
      aws.faults.failNext('UpdateAssumeRolePolicy', { status: 400, code: 'Throttling', message: 'Rate exceeded' }, 1);
      aws.faults.failNext('UpdateAssumeRolePolicy', { status: 503, code: 'ServiceUnavailable', message: 'Service Unavailable' }, 1);
      aws.faults.dropAnswerNext('UpdateAssumeRolePolicy', 1);
      tally.injected += 3;
      const TEARDOWN = ['teardown', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'apps', '--role-name', 'shared-role', '--yes'];
      const r = await wid(TEARDOWN, env);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/Applied \d+ changes?\./);
      expect(aws.getRole('shared-role')!.trustPolicy).toEqual({ Version: '2012-10-17', Statement: [unrelated] });
      const again = await wid([...TEARDOWN, '-o', 'json'], env);
      expect(again.code).toBe(0);
      expect(actionsOf(again.stdout)['iam-role']).toEqual(['noop']);
      tally.transientConverged++;
    });
  });

  it('teardown: DetachRolePolicy, DeleteRole and DeleteOpenIDConnectProvider under throttling, 503 and lost answers converge', async () => {
    expect((await wid(SETUP, env)).code).toBe(0);
    const providerArn = `arn:aws:iam::${aws.accountId}:oidc-provider/${ISSUER.slice('https://'.length)}`;
    expect(aws.getOidcProvider(providerArn)).toBeDefined();
    aws.faults.failNext('DetachRolePolicy', { status: 400, code: 'Throttling', message: 'Rate exceeded' }, 1);
    aws.faults.dropAnswerNext('DetachRolePolicy', 1);
    aws.faults.failNext('DeleteRole', { status: 503, code: 'ServiceUnavailable', message: 'Service Unavailable' }, 1);
    aws.faults.dropAnswerNext('DeleteRole', 1);
    aws.faults.failNext('DeleteOpenIDConnectProvider', { status: 400, code: 'Throttling', message: 'Rate exceeded' }, 1);
    aws.faults.failNext('DeleteOpenIDConnectProvider', DROP, 1);
    aws.faults.dropAnswerNext('DeleteOpenIDConnectProvider', 1);
    tally.injected += 7;
    const TEARDOWN = ['teardown', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'apps', '--delete-oidc-provider', '--yes'];
    const r = await wid(TEARDOWN, env);
    expect(r.stderr).toMatch(/Applied \d+ changes\./);
    expect(r.code).toBe(0);
    expect(aws.getRole('wid-apps-app')).toBeUndefined();
    expect(aws.getOidcProvider(providerArn)).toBeUndefined();
    const again = await wid([...TEARDOWN, '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(new Set(Object.values(actionsOf(again.stdout)).flat())).toEqual(new Set(['noop']));
    tally.transientConverged++;
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
  const AKS_IDENTITY = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id`;
  beforeAll(async () => {
    azure = await startAzureEmulator();
    env = {
      ...baseEnv(tmp),
      ...azureEnv(azure, SUB),
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

  for (const [step, path] of [
    ['identity', /userAssignedIdentities\/app-id$/],
    ['federated credential', /federatedIdentityCredentials\//],
    ['role assignment', /roleAssignments\//],
  ] as const) {
    it(`${step}: a lost request and a lost answer (dropped connections) are retried, and setup converges`, async () => {
      azure.faults.failNext('PUT', path, 0, '', '', 1);
      azure.faults.dropAnswerNext('PUT', path, 1);
      tally.injected += 2;
      const r = await wid(SETUP, env);
      expect(r.stderr).toContain('Applied 4 changes.');
      expect(r.code).toBe(0);
      expect(azure.log.filter((x) => x.method === 'PUT' && path.test(x.path)).map((x) => x.status).slice(0, 2)).toEqual([0, 0]);
      // One of each, and the ServiceAccount names the identity that exists.
      const identity = azure.getIdentity(AKS_IDENTITY)!;
      expect(azure.listFederatedCredentials(AKS_IDENTITY).map((f) => f.properties.subject)).toEqual(['system:serviceaccount:apps:app']);
      expect(azure.listRoleAssignments().filter((a) => a.properties.principalId === identity.properties.principalId)).toHaveLength(1);
      expect(kube.getServiceAccount('apps', 'app').metadata.annotations['azure.workload.identity/client-id']).toBe(identity.properties.clientId);
      tally.transientConverged++;
    });
  }

  it('teardown: the federated credential and role assignment DELETEs under 429, 503 and dropped connections converge', async () => {
    expect((await wid(SETUP, env)).code).toBe(0);
    azure.faults.throttle(/federatedIdentityCredentials\//, 1, 0);
    azure.faults.failNext('DELETE', /federatedIdentityCredentials\//, 503, 'ServiceUnavailable', 'The service is temporarily unavailable.', 1);
    azure.faults.failNext('DELETE', /federatedIdentityCredentials\//, 0, '', '', 1);
    azure.faults.dropAnswerNext('DELETE', /roleAssignments\//, 1);
    tally.injected += 4;
    const TEARDOWN = ['teardown', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'app', '-n', 'apps', '--identity', 'app-id', '--yes'];
    const r = await wid(TEARDOWN, env);
    expect(r.stderr).toMatch(/Applied \d+ changes\./);
    expect(r.code).toBe(0);
    expect(azure.log.filter((x) => x.method === 'DELETE' && /federatedIdentityCredentials\//.test(x.path)).map((x) => x.status)).toEqual([429, 503, 0, 200]);
    expect(azure.listFederatedCredentials(AKS_IDENTITY)).toEqual([]);
    expect(azure.listRoleAssignments().filter((a) => a.properties.principalId === azure.getIdentity(AKS_IDENTITY)!.properties.principalId)).toEqual([]);
    const again = await wid([...TEARDOWN, '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(new Set(Object.values(actionsOf(again.stdout)).flat())).toEqual(new Set(['noop']));
    tally.transientConverged++;
  });

  it('a hanging ARM endpoint ends in a clear error within the time limit', async () => {
    // Only ARM is slow: the sign-in answers, then the first ARM call runs out of its 300 ms.
    azure.faults.latencyMs = 2000;
    azure.faults.latencyExcept = /\/oauth2\/|openid-configuration|discovery/;
    tally.injected += 1;
    const started = Date.now();
    const r = await wid([...SETUP.slice(0, -1), '--dry-run'], { ...env, WID_TIMEOUT_MS: '300' });
    azure.faults.latencyMs = 0;
    azure.faults.latencyExcept = undefined;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('managedClusters.get failed: Timeout');
    expect(r.stderr).toContain('Azure did not answer in time');
    expect(r.stderr).not.toContain('bug in wid');
    expect(Date.now() - started).toBeLessThan(15_000);
    tally.timeouts++;
  });

  it('a hanging sign-in (Entra token endpoint) ends in a clear error within the time limit', async () => {
    azure.faults.latencyMs = 5000;
    tally.injected += 1;
    const started = Date.now();
    const r = await wid([...SETUP.slice(0, -1), '--dry-run'], { ...env, WID_TIMEOUT_MS: '300' });
    azure.faults.latencyMs = 0;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/signing in to Azure timed out: 127\.0\.0\.1:\d+ did not answer within 300 ms/);
    expect(r.stderr).toContain('WID_TIMEOUT_MS');
    expect(Date.now() - started).toBeLessThan(10_000);
    tally.timeouts++;
  });
});

describe('gke', () => {
  const PROJECT = 'my-project';
  let gcp: GcpEmulator;
  let env: Record<string, string>;
  const SETUP = ['setup', 'gke', '--cluster', 'prod', '--location', 'europe-west1', '--sa', 'app', '-n', 'apps', '--gsa', 'app-gsa', '--role', 'roles/viewer', '--yes'];
  beforeAll(async () => {
    gcp = await startGcpEmulator();
    env = {
      ...baseEnv(tmp),
      ...gcpEnv(gcp, tmp, PROJECT, '123456789012'),
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
      expect(r.stderr).toMatch(APPLIED);
      expect(r.code).toBe(0);
      tally.transientConverged++;
    });
  }

  // The step order and count of GKE plans are not fixed (the Kubernetes ServiceAccount may be planned
  // first, and carry a record of the grants): the checks below go by step and resource, not position.
  const APPLIED = /Applied \d+ changes\./;
  const GSA = `app-gsa@${PROJECT}.iam.gserviceaccount.com`;
  const cloudActions = (stdout: string): Record<string, string[]> => {
    const out: Record<string, string[]> = {};
    for (const s of (JSON.parse(stdout) as { steps: { phase: string; action: string; resource: string }[] }).steps) {
      if (s.resource.startsWith('namespaces/')) continue; // the Kubernetes ServiceAccount
      (out[s.phase] ??= []).push(s.action);
    }
    return out;
  };
  /** The setup's cloud state: the GSA, its workloadIdentityUser member, the project role; each once. */
  const expectConverged = (): void => {
    expect(gcp.getServiceAccount(GSA)).toBeDefined();
    const wiu = gcp.getPolicy(`projects/${PROJECT}/serviceAccounts/${GSA}`).bindings.filter((b) => b.role === 'roles/iam.workloadIdentityUser');
    expect(wiu.map((b) => b.members)).toEqual([[`serviceAccount:${PROJECT}.svc.id.goog[apps/app]`]]);
    const viewer = gcp.getPolicy(`projects/${PROJECT}`).bindings.filter((b) => b.role === 'roles/viewer');
    expect(viewer.map((b) => b.members)).toEqual([[`serviceAccount:${GSA}`]]);
    expect(kube.getServiceAccount('apps', 'app').metadata.annotations['iam.gke.io/gcp-service-account']).toBe(GSA);
  };

  it('a persistent 500 on the project policy: exit 1 with Google\'s error; the next run converges', async () => {
    gcp.faults.failNext('POST', /projects\/my-project:setIamPolicy$/, 500, 'INTERNAL', 'Internal error encountered.', 50);
    tally.injected += 1;
    const r = await wid(SETUP, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Internal error encountered.');
    expect(r.stderr).toMatch(/\d+ of \d+ changes were applied before it/);
    tally.persistentReported++;
    gcp.faults.clear();
    const again = await wid([...SETUP, '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(cloudActions(again.stdout)).toEqual({ 'service-account': ['noop'], 'iam-binding': ['noop'], 'project-role': ['update'] });
    expectConverged();
    tally.resumed++;
  });

  for (const [step, method, path] of [
    ['service account', 'POST', /\/serviceAccounts$/],
    ['iam-binding', 'POST', /serviceAccounts\/.+:setIamPolicy$/],
    ['project-role', 'POST', /projects\/my-project:setIamPolicy$/],
  ] as const) {
    it(`${step}: a lost request and a lost answer (dropped connections) are retried, and setup converges`, async () => {
      gcp.faults.failNext(method, path, 0, '', '', 1);
      gcp.faults.dropAnswerNext(method, path, 1);
      tally.injected += 2;
      const r = await wid(SETUP, env);
      expect(r.stderr).toMatch(APPLIED);
      expect(r.code).toBe(0);
      expect(gcp.log.filter((x) => x.method === method && path.test(x.path)).map((x) => x.status).slice(0, 2)).toEqual([0, 0]);
      expectConverged();
      const again = await wid([...SETUP, '-o', 'json'], env);
      expect(again.code).toBe(0);
      expect(new Set(Object.values(cloudActions(again.stdout)).flat())).toEqual(new Set(['noop']));
      tally.transientConverged++;
    });
  }

  it('teardown: the project\'s setIamPolicy under 429 and dropped connections converges', async () => {
    const up = await wid(SETUP, env);
    expect(up.code, up.stderr).toBe(0);
    const project = /projects\/my-project:setIamPolicy$/;
    // Three of the four attempts wid makes per call; the fourth replays the lost write: 409 ABORTED, so
    // wid reads the policy again and finds the member gone.
    gcp.faults.quotaExceeded('POST', project, 1);
    gcp.faults.failNext('POST', project, 0, '', '', 1);
    gcp.faults.dropAnswerNext('POST', project, 1);
    tally.injected += 3;
    const TEARDOWN = ['teardown', 'gke', '--cluster', 'prod', '--location', 'europe-west1', '--sa', 'app', '-n', 'apps', '--gsa', 'app-gsa', '--role', 'roles/viewer', '--yes'];
    const from = gcp.log.length;
    const r = await wid(TEARDOWN, env);
    expect(r.stderr).toMatch(APPLIED);
    expect(r.code).toBe(0);
    expect(gcp.log.slice(from).filter((x) => project.test(x.path)).map((x) => x.status)).toEqual([429, 0, 0, 409]);
    expect(gcp.getPolicy(`projects/${PROJECT}`).bindings.filter((b) => b.role === 'roles/viewer')).toEqual([]);
    expect(gcp.getPolicy(`projects/${PROJECT}`).bindings).toContainEqual({ role: 'roles/owner', members: ['user:owner@example.com'] });
    tally.transientConverged++;
  });

  it('Kubernetes: a dropped connection and a 503 are retried, and setup converges', async () => {
    kube.faults.failNext('GET', /\/serviceaccounts\/app$/, 503, 'ServiceUnavailable', 'the server is currently unable to handle the request', 1);
    kube.faults.failNext('POST', /\/serviceaccounts$/, 0, '', '', 1);
    tally.injected += 2;
    const r = await wid(SETUP, env);
    expect(r.stderr).toMatch(APPLIED);
    expect(r.code).toBe(0);
    expect(kube.getServiceAccount('apps', 'app').metadata.annotations['iam.gke.io/gcp-service-account']).toBe(`app-gsa@${PROJECT}.iam.gserviceaccount.com`);
    tally.transientConverged++;
  });

  it('hanging Google endpoints (the token exchange, then the APIs) end in a clear error within the time limit', async () => {
    gcp.faults.latencyMs = 5000;
    tally.injected += 1;
    const started = Date.now();
    const r = await wid([...SETUP.slice(0, -1), '--dry-run'], { ...env, WID_TIMEOUT_MS: '300' });
    gcp.faults.latencyMs = 0;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('clusters.get failed');
    expect(r.stderr).toContain('Google did not answer (after retries)');
    expect(r.stderr).toContain('WID_TIMEOUT_MS');
    expect(r.stderr).not.toContain('bug in wid');
    expect(Date.now() - started).toBeLessThan(20_000);
    tally.timeouts++;
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
