/**
 * GKE live, end to end: the built wid, the real Google REST clients (with Application Default
 * Credentials of type external_account) and @kubernetes/client-node, against the local Google
 * (IAM, Container, Resource Manager, STS) and Kubernetes emulators. No SDK call is stubbed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGcpEmulator, type GcpEmulator } from '../emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { gcpEnv } from '../helpers/cloud-env.js';
import { baseEnv, wid } from '../helpers/wid.js';

const PROJECT = 'my-project';
const NUMBER = '123456789012';
const POOL = `${PROJECT}.svc.id.goog`;
const GSA = `app-gsa@${PROJECT}.iam.gserviceaccount.com`;
const GSA_RESOURCE = `projects/${PROJECT}/serviceAccounts/${GSA}`;
const KSA_MEMBER = `serviceAccount:${POOL}[apps/my-ksa]`;
const PRINCIPAL = `principal://iam.googleapis.com/projects/${NUMBER}/locations/global/workloadIdentityPools/${POOL}/subject/ns/apps/sa/my-ksa`;
/** Someone else's binding on the GSA, with a condition: wid must keep it exactly. */
const UNRELATED = { role: 'roles/iam.serviceAccountTokenCreator', members: ['user:alice@example.com'], condition: { title: 'weekdays', expression: 'request.time.getDayOfWeek() < 5' } };

let gcp: GcpEmulator;
let kube: KubeEmulator;
let tmp: string;
let env: Record<string, string>;

beforeAll(async () => {
  gcp = await startGcpEmulator();
  kube = await startKubeEmulator();
  tmp = mkdtempSync(join(tmpdir(), 'wid-gke-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'gke_prod' });
  env = {
    ...baseEnv(tmp),
    ...gcpEnv(gcp, tmp, PROJECT, NUMBER),
    KUBECONFIG: kubeconfig,
    WID_RETRY_DELAY_MS: '20',
  };
});

afterAll(async () => {
  await gcp?.close();
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  gcp.reset();
  kube.reset();
  gcp.seedProject({ projectId: PROJECT, projectNumber: NUMBER });
  gcp.seedCluster({ project: PROJECT, location: 'europe-west1', name: 'prod', workloadPool: POOL, nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }, { name: 'legacy-pool', mode: 'GCE_METADATA' }] });
});

const CLUSTER = ['--cluster', 'prod', '--location', 'europe-west1'];
const GSA_SETUP = ['setup', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', '--role', 'roles/storage.objectViewer'];
const DIRECT_SETUP = ['setup', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--role', 'roles/storage.objectViewer'];

const bindingsOf = (resource: string) => gcp.getPolicy(resource).bindings;
const members = (resource: string, role: string): string[] => bindingsOf(resource).filter((b) => b.role === role && !b.condition).flatMap((b) => b.members);

describe('wid setup/teardown gke against the emulators', () => {
  it('gsa mode: plans from real reads, applies, converges, survives a concurrent writer, and tears down only wid\'s parts', async () => {
    gcp.seedServiceAccount({ project: PROJECT, accountId: 'app-gsa', displayName: 'app' });
    gcp.setPolicy(GSA_RESOURCE, { bindings: [UNRELATED] });
    kube.seedServiceAccount({ namespace: 'apps', name: 'my-ksa', annotations: { 'example.com/owner': 'team-a' } });

    const dry = await wid([...GSA_SETUP, '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain('warning: node pool legacy-pool runs without the GKE metadata server');
    expect(dry.stderr).toContain('gcloud container node-pools update legacy-pool --cluster=prod --location=europe-west1 --workload-metadata=GKE_METADATA');
    expect(dry.stderr).toMatch(/= noop\s+service-account\s+projects\/my-project\/serviceAccounts\/app-gsa@/);
    expect(dry.stderr).toMatch(/~ update iam-binding/);
    expect(dry.stderr).toMatch(/~ update project-role/);
    expect(dry.stderr).toMatch(/~ update service-account\s+namespaces\/apps\/serviceaccounts\/my-ksa/);
    expect(gcp.writes()).toEqual([]);
    expect(kube.writes()).toEqual([]);

    // The record is written ahead of the grants: each Google write finds it on the ServiceAccount already.
    const recordAtWrite: (string | undefined)[] = [];
    gcp.onResponse = (r) => {
      if (r.method === 'POST' && r.path.endsWith(':setIamPolicy')) recordAtWrite.push(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations?.['wid/gcp-grants']);
    };
    const up = await wid([...GSA_SETUP, '--yes'], env);
    gcp.onResponse = undefined;
    expect(recordAtWrite).toHaveLength(2);
    for (const r of recordAtWrite) expect(r).toContain('roles/iam.workloadIdentityUser');
    expect(up.stderr).toContain('Applied 3 changes.');
    expect(up.code).toBe(0);
    expect(bindingsOf(GSA_RESOURCE)).toContainEqual(UNRELATED);
    expect(members(GSA_RESOURCE, 'roles/iam.workloadIdentityUser')).toEqual([KSA_MEMBER]);
    expect(members(`projects/${PROJECT}`, 'roles/storage.objectViewer')).toEqual([`serviceAccount:${GSA}`]);
    // The ServiceAccount records, ahead of them, the grants wid adds (teardown removes only those).
    expect(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations).toEqual({
      'example.com/owner': 'team-a',
      'iam.gke.io/gcp-service-account': GSA,
      'wid/gcp-grants': JSON.stringify([
        { resource: `projects/${PROJECT}`, role: 'roles/storage.objectViewer', member: `serviceAccount:${GSA}` },
        { resource: GSA_RESOURCE, role: 'roles/iam.workloadIdentityUser', member: KSA_MEMBER },
      ]),
    });

    const w = { gcp: gcp.writes().length, kube: kube.writes().length };
    const again = await wid([...GSA_SETUP, '--yes', '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps.every((s: { action: string }) => s.action === 'noop')).toBe(true);
    expect(gcp.writes().length).toBe(w.gcp);
    expect(kube.writes().length).toBe(w.kube);

    // Another writer changes the project policy between wid's read and its write: wid's write gets
    // 409 ABORTED, it reads again and writes again, and both changes are there. wid reads the policy
    // twice (once to plan, once in the read-modify-write), so the writer strikes after the second read.
    gcp.faults.raceNextPolicyWrite(`projects/${PROJECT}`, () => {
      gcp.faults.raceNextPolicyWrite(`projects/${PROJECT}`, (p) => {
        p.bindings.push({ role: 'roles/logging.viewer', members: ['user:bob@example.com'] });
      });
    });
    const raced = await wid([...GSA_SETUP, '--role', 'roles/secretmanager.secretAccessor', '--yes'], env);
    expect(raced.code).toBe(0);
    expect(gcp.writes().filter((r) => r.path.endsWith(':setIamPolicy')).map((r) => r.status).slice(-2)).toEqual([409, 200]);
    expect(members(`projects/${PROJECT}`, 'roles/logging.viewer')).toEqual(['user:bob@example.com']);
    expect(members(`projects/${PROJECT}`, 'roles/secretmanager.secretAccessor')).toEqual([`serviceAccount:${GSA}`]);

    // Teardown removes the grants wid recorded; the GSA is not wid's, so it stays.
    const down = await wid(['teardown', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', '--delete-gsa', '--yes'], env);
    expect(down.code).toBe(0);
    expect(bindingsOf(GSA_RESOURCE)).toEqual([UNRELATED]);
    expect(members(`projects/${PROJECT}`, 'roles/storage.objectViewer')).toEqual([]);
    expect(members(`projects/${PROJECT}`, 'roles/secretmanager.secretAccessor')).toEqual([]);
    expect(members(`projects/${PROJECT}`, 'roles/logging.viewer')).toEqual(['user:bob@example.com']);
    expect(gcp.getServiceAccount(GSA)).toBeDefined();
    expect(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations).toEqual({ 'example.com/owner': 'team-a' });

    const w2 = { gcp: gcp.writes().length, kube: kube.writes().length };
    const twice = await wid(['teardown', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', '--delete-gsa', '--yes'], env);
    expect(twice.code).toBe(0);
    expect(twice.stderr).toContain('Nothing to change');
    expect(gcp.writes().length).toBe(w2.gcp);
    expect(kube.writes().length).toBe(w2.kube);
  });

  it('direct mode: grants the principal (by project number), converges, tears down', async () => {
    kube.seedNamespace('apps');
    const up = await wid([...DIRECT_SETUP, '--yes', '-o', 'json'], env);
    expect(up.code).toBe(0);
    const plan = JSON.parse(up.stdout);
    expect(plan.steps.map((s: { phase: string; action: string }) => `${s.action} ${s.phase}`)).toEqual(['create service-account', 'update project-role']);
    expect(plan.binding.audience).toBe(POOL);
    expect(plan.binding.issuer).toBe(`https://container.googleapis.com/v1/projects/${PROJECT}/locations/europe-west1/clusters/prod`);
    expect(members(`projects/${PROJECT}`, 'roles/storage.objectViewer')).toEqual([PRINCIPAL]);
    expect(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations).toEqual({
      'wid/created': 'true',
      'wid/gcp-grants': JSON.stringify([{ resource: `projects/${PROJECT}`, role: 'roles/storage.objectViewer', member: PRINCIPAL }]),
    });
    expect(up.stderr).toContain(`name the principal ${PRINCIPAL}`);

    const w = gcp.writes().length;
    const again = await wid([...DIRECT_SETUP, '--yes'], env);
    expect(again.stderr).toContain('Nothing to change');
    expect(gcp.writes().length).toBe(w);

    const down = await wid(['teardown', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--yes'], env);
    expect(down.code).toBe(0);
    expect(members(`projects/${PROJECT}`, 'roles/storage.objectViewer')).toEqual([]);
    expect(kube.getServiceAccount('apps', 'my-ksa')).toBeUndefined();
  });

  it('gsa mode creates the account it needs, waits until IAM sees it, and --delete-gsa removes it', async () => {
    kube.seedNamespace('apps');
    gcp.faults.newServiceAccountNotFoundFor(2);
    const up = await wid(['setup', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'new-gsa', '--role', 'roles/viewer', '--yes'], { ...env, WID_RETRY_DELAY_MS: '10' });
    expect(up.code).toBe(0);
    const email = `new-gsa@${PROJECT}.iam.gserviceaccount.com`;
    expect(gcp.getServiceAccount(email)).toBeDefined();
    expect(members(`projects/${PROJECT}/serviceAccounts/${email}`, 'roles/iam.workloadIdentityUser')).toEqual([KSA_MEMBER]);

    const down = await wid(['teardown', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'new-gsa', '--delete-gsa', '--yes'], env);
    expect(down.code).toBe(0);
    expect(gcp.getServiceAccount(email)).toBeUndefined();
    expect(members(`projects/${PROJECT}`, 'roles/viewer')).toEqual([]);
  });

  it('a cluster without Workload Identity: exit 1 with the gcloud command that enables it', async () => {
    gcp.seedCluster({ project: PROJECT, location: 'europe-west1', name: 'plain' });
    const r = await wid(['setup', 'gke', '--cluster', 'plain', '--location', 'europe-west1', '--sa', 'x', '--dry-run'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GKE cluster plain does not have Workload Identity Federation enabled');
    expect(r.stderr).toContain(`gcloud container clusters update plain --location=europe-west1 --project=${PROJECT} --workload-pool=${POOL}`);
  });

  it('direct mode refuses a ServiceAccount annotated with a GSA, unless --override removes it', async () => {
    kube.seedServiceAccount({ namespace: 'apps', name: 'my-ksa', annotations: { 'iam.gke.io/gcp-service-account': GSA } });
    const r = await wid([...DIRECT_SETUP, '--yes'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('in direct mode the pods would impersonate that service account instead');
    expect(gcp.writes()).toEqual([]);
    const o = await wid([...DIRECT_SETUP, '--yes', '--override'], env);
    expect(o.code).toBe(0);
    expect(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations ?? {}).toEqual({
      'wid/gcp-grants': JSON.stringify([{ resource: `projects/${PROJECT}`, role: 'roles/storage.objectViewer', member: PRINCIPAL }]),
    });
  });

  it('teardown removes only the grants wid made: identical members that were there before setup stay', async () => {
    gcp.seedServiceAccount({ project: PROJECT, accountId: 'app-gsa', displayName: 'app' });
    gcp.setPolicy(GSA_RESOURCE, { bindings: [UNRELATED, { role: 'roles/iam.workloadIdentityUser', members: [KSA_MEMBER] }] });
    gcp.setPolicy(`projects/${PROJECT}`, { bindings: [{ role: 'roles/storage.objectViewer', members: [`serviceAccount:${GSA}`] }] });
    kube.seedNamespace('apps');
    const setup = [...GSA_SETUP, '--role', 'roles/viewer', '--yes', '-o', 'json'];
    const up = await wid(setup, env);
    expect(up.code).toBe(0);
    expect(JSON.parse(up.stdout).steps.map((s: { phase: string; action: string }) => `${s.action} ${s.phase}`)).toEqual([
      'create service-account',
      'noop service-account',
      'noop iam-binding',
      'noop project-role',
      'update project-role',
    ]);
    expect(JSON.parse(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations['wid/gcp-grants'])).toEqual([
      { resource: `projects/${PROJECT}`, role: 'roles/viewer', member: `serviceAccount:${GSA}` },
    ]);

    const down = await wid(['teardown', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', '--role', 'roles/storage.objectViewer', '--role', 'roles/viewer', '--yes'], env);
    expect(down.code).toBe(0);
    expect(down.stderr).toContain('granted before wid (not in its wid/gcp-grants record); kept: roles/storage.objectViewer');
    expect(members(`projects/${PROJECT}`, 'roles/viewer')).toEqual([]);
    expect(members(`projects/${PROJECT}`, 'roles/storage.objectViewer')).toEqual([`serviceAccount:${GSA}`]);
    expect(members(GSA_RESOURCE, 'roles/iam.workloadIdentityUser')).toEqual([KSA_MEMBER]);
    expect(bindingsOf(GSA_RESOURCE)).toContainEqual(UNRELATED);
    expect(kube.getServiceAccount('apps', 'my-ksa')).toBeUndefined();
  });

  it('--cluster with --workload-pool is a contradiction, found before any request', async () => {
    const r = await wid([...DIRECT_SETUP, '--workload-pool', POOL, '--dry-run'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--workload-pool cannot be used with --cluster');
    expect(gcp.log).toEqual([]);
  });
});
