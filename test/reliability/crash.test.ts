/**
 * Crash and resume: wid is SIGKILLed right after each write request of a setup (the emulator has
 * answered it, wid has not seen the answer yet); the next setup must converge to exactly the state of
 * an uninterrupted run (no duplicate statement, credential, binding or role assignment), and teardown
 * must then leave nothing of wid's behind. One scenario per provider, each with its own emulators,
 * run concurrently. The built binary, the real SDKs, the emulators of test/emulators.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IAMClient, ListOpenIDConnectProvidersCommand, ListRolesCommand } from '@aws-sdk/client-iam';
import { afterAll, describe, expect, it } from 'vitest';
import { startAwsEmulator } from '../emulators/aws/server.js';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.js';
import { startGcpEmulator } from '../emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { awsEnv, azureEnv, gcpEnv } from '../helpers/cloud-env.js';
import { baseEnv } from '../helpers/wid.js';
import { runCrashResume, type CrashReport, type CrashScenario } from './harness.js';

const reports = new Map<string, CrashReport>();

afterAll(() => {
  const c = (p: string): number => reports.get(p)?.crashes ?? 0;
  const all = [...reports.values()];
  const total = all.reduce((sum, r) => sum + r.crashes, 0);
  const ok = all.length === 3 && all.every((r) => r.findings.length === 0);
  console.log(`crash-resume: ${total} crashes resumed (eks ${c('eks')}, aks ${c('aks')}, gke ${c('gke')}), ${ok ? 'all converged' : 'NOT all converged'}`);
});

// ---------------------------------------------------------------------------------------------
// Shared normalisation
// ---------------------------------------------------------------------------------------------

/** A ServiceAccount without what the API server makes up (uid, resourceVersion, creationTimestamp). */
function normSa(sa: any): unknown {
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, managedFields: _m, ...metadata } = sa.metadata;
  return { ...sa, metadata };
}

function kubeSnapshot(kube: KubeEmulator): unknown {
  return { namespaces: kube.namespaces(), serviceAccounts: kube.listServiceAccounts().map(normSa) };
}

/** wid's marks on a ServiceAccount still there after teardown. */
function kubeLeftovers(kube: KubeEmulator, ns: string, name: string, annotationPrefix: string): string[] {
  const sa = kube.getServiceAccount(ns, name);
  if (!sa) return [];
  const out: string[] = [];
  const ann: Record<string, string> = sa.metadata.annotations ?? {};
  const labels: Record<string, string> = sa.metadata.labels ?? {};
  for (const k of Object.keys(ann)) if (k.startsWith(annotationPrefix) || k.startsWith('wid/')) out.push(`ServiceAccount ${ns}/${name} annotation ${k}=${ann[k]}`);
  for (const k of Object.keys(labels)) if (labels[k] === 'wid') out.push(`ServiceAccount ${ns}/${name} label ${k}=${labels[k]}`);
  return out;
}

function tempDir(provider: string): string {
  return mkdtempSync(join(tmpdir(), `wid-crash-${provider}-`));
}

// ---------------------------------------------------------------------------------------------
// EKS: OIDC provider create, trust-policy update on an existing role with an unrelated statement,
// policy attach, ServiceAccount patch.
// ---------------------------------------------------------------------------------------------

async function eks(): Promise<CrashReport> {
  const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/C4A5E0123456789ABCDEF0123456789A';
  const ACCOUNT = '111122223333';
  const POLICY = 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess';
  const SUBJECT = 'system:serviceaccount:apps:s3-access-sa';
  const UNRELATED = { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };

  const aws = await startAwsEmulator({ accountId: ACCOUNT });
  const kube = await startKubeEmulator({ issuer: ISSUER });
  const tmp = tempDir('eks');
  const iam = new IAMClient({ endpoint: aws.iamUrl, region: 'us-west-2', credentials: { accessKeyId: 'AKIDWIDTEST', secretAccessKey: 'wid-test-secret' }, maxAttempts: 1 });
  try {
    const kubeconfig = join(tmp, 'kubeconfig');
    kube.writeKubeconfig(kubeconfig, { context: 'prod' });
    const env = {
      ...baseEnv(tmp),
      ...awsEnv(aws),
      KUBECONFIG: kubeconfig,
      WID_RETRY_DELAY_MS: '20',
    };
    const roleNames = async (): Promise<string[]> => ((await iam.send(new ListRolesCommand({ MaxItems: 1000 }))).Roles ?? []).map((r) => r.RoleName!);
    const providerArns = async (): Promise<string[]> => ((await iam.send(new ListOpenIDConnectProvidersCommand({}))).OpenIDConnectProviderList ?? []).map((p) => p.Arn!);

    const scenario: CrashScenario = {
      provider: 'eks',
      env,
      setup: ['setup', 'eks', '--cluster', 'prod', '--sa', 's3-access-sa', '-n', 'apps', '--role-name', 's3-access-role', '--attach-policy-arn', POLICY, '--yes'],
      teardown: ['teardown', 'eks', '--cluster', 'prod', '--sa', 's3-access-sa', '-n', 'apps', '--role-name', 's3-access-role', '--delete-oidc-provider', '--yes'],
      fresh() {
        aws.reset();
        kube.reset();
        aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: ISSUER });
        aws.seedRole({ name: 's3-access-role', trustPolicy: { Version: '2012-10-17', Statement: [UNRELATED] } });
        kube.seedServiceAccount({ namespace: 'apps', name: 's3-access-sa', annotations: { 'example.com/owner': 'team-a' }, labels: { team: 'a' } });
      },
      hook(fn) {
        aws.onResponse = fn && ((r) => fn(r.write, `${r.service}:${r.action}`, r.status));
        kube.onResponse = fn && ((r) => fn(r.write, `kube ${r.method} ${r.path}`, r.status));
      },
      records: () => [...aws.log, ...kube.log],
      async snapshot() {
        const providers = (await providerArns()).map((arn) => aws.getOidcProvider(arn));
        const roles = (await roleNames()).map((name) => {
          const { roleId: _id, trustPolicyText: _text, ...role } = aws.getRole(name)!;
          return role;
        });
        return { providers, roles, kube: kubeSnapshot(kube) };
      },
      async leftovers() {
        const out: string[] = [];
        for (const arn of await providerArns()) if (aws.getOidcProvider(arn)?.tags['managed-by'] === 'wid') out.push(`wid-tagged OIDC provider ${arn}`);
        for (const name of await roleNames()) {
          const role = aws.getRole(name)!;
          if (role.tags['managed-by'] === 'wid') out.push(`wid-tagged role ${name}`);
          if (JSON.stringify(role.trustPolicy).includes(SUBJECT)) out.push(`role ${name} still trusts ${SUBJECT}`);
        }
        return [...out, ...kubeLeftovers(kube, 'apps', 's3-access-sa', 'eks.amazonaws.com/')];
      },
    };
    return await runCrashResume(scenario);
  } finally {
    iam.destroy();
    await aws.close();
    await kube.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// AKS: identity create, federated credential, role assignment, namespace + ServiceAccount create.
// ---------------------------------------------------------------------------------------------

/** ARM GET with a token the emulator minted, over its test CA. */
function armGet(azure: AzureEmulator, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request(`${azure.url}${path}`, { method: 'GET', ca: azure.ca, headers: { Authorization: `Bearer ${azure.issueToken()}` } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`GET ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function aks(): Promise<CrashReport> {
  const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
  const RG = 'prod-rg';
  const ISSUER = 'https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/3a5f4c8e-1b2d-4e6f-9a8b-7c6d5e4f3a2b/';
  const SCOPE = `/subscriptions/${SUB}/resourceGroups/${RG}`;
  const SUBJECT = 'system:serviceaccount:apps:my-sa';
  const WID_DESCRIPTION = 'workload identity [managed by wid]';
  /** Someone else's assignment on the same scope: must stay exactly. */
  const OTHER_PRINCIPAL = '6f1c2b4a-9d3e-4c5b-8a7f-0e1d2c3b4a59';

  const azure = await startAzureEmulator();
  const kube = await startKubeEmulator({ issuer: ISSUER });
  const tmp = tempDir('aks');
  try {
    const kubeconfig = join(tmp, 'kubeconfig');
    kube.writeKubeconfig(kubeconfig, { context: 'prod' });
    const env = {
      ...baseEnv(tmp),
      ...azureEnv(azure, SUB),
      KUBECONFIG: kubeconfig,
      WID_RETRY_DELAY_MS: '20',
    };
    const identities = async (): Promise<any[]> => (await armGet(azure, `/subscriptions/${SUB}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31`)).value;

    const scenario: CrashScenario = {
      provider: 'aks',
      env,
      setup: ['setup', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'my-sa', '-n', 'apps', '--identity', 'my-id', '--role', 'Reader', '--scope', SCOPE, '--create-namespace', '--yes'],
      teardown: ['teardown', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'my-sa', '-n', 'apps', '--identity', 'my-id', '--delete-identity', '--yes'],
      fresh() {
        azure.reset();
        kube.reset();
        azure.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'prod', location: 'westeurope', issuer: ISSUER });
        azure.seedPrincipal(OTHER_PRINCIPAL, 'User');
        azure.seedRoleAssignment({ scope: SCOPE, roleName: 'Reader', principalId: OTHER_PRINCIPAL, principalType: 'User', name: '1d1b6f3e-5a7c-4e2b-9c8d-7f6e5d4c3b2a', description: 'team access' });
      },
      hook(fn) {
        azure.onResponse = fn && ((r) => fn(r.write, `arm ${r.method} ${r.path.replace(/^.*?\/providers\//, '')}`, r.status));
        kube.onResponse = fn && ((r) => fn(r.write, `kube ${r.method} ${r.path}`, r.status));
      },
      records: () => [...azure.log, ...kube.log],
      async snapshot() {
        const ids = await identities();
        return {
          identities: ids.map((i) => ({ ...i, federatedCredentials: azure.listFederatedCredentials(i.id) })),
          roleAssignments: azure.listRoleAssignments().map(({ properties: { createdOn: _c, updatedOn: _u, ...properties }, ...a }) => ({ ...a, properties })),
          kube: kubeSnapshot(kube),
        };
      },
      async leftovers() {
        const out: string[] = [];
        for (const i of await identities()) {
          if (i.tags?.['managed-by'] === 'wid') out.push(`wid-tagged identity ${i.id}`);
          for (const f of azure.listFederatedCredentials(i.id)) if (f.properties.subject === SUBJECT || f.name.startsWith('wid-')) out.push(`federated credential ${f.id}`);
        }
        for (const a of azure.listRoleAssignments()) if (a.properties.description === WID_DESCRIPTION) out.push(`wid-described role assignment ${a.id} (principal ${a.properties.principalId})`);
        return [...out, ...kubeLeftovers(kube, 'apps', 'my-sa', 'azure.workload.identity/')];
      },
    };
    return await runCrashResume(scenario);
  } finally {
    await azure.close();
    await kube.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// GKE gsa mode: Google service account create, iam-binding, project-role, ServiceAccount create.
// ---------------------------------------------------------------------------------------------

async function gke(): Promise<CrashReport> {
  const PROJECT = 'my-project';
  const NUMBER = '123456789012';
  const POOL = `${PROJECT}.svc.id.goog`;
  const GSA = `app-gsa@${PROJECT}.iam.gserviceaccount.com`;
  const GSA_RESOURCE = `projects/${PROJECT}/serviceAccounts/${GSA}`;
  const KSA_MEMBER = `serviceAccount:${POOL}[apps/my-ksa]`;
  const CLUSTER = ['--cluster', 'prod', '--location', 'europe-west1'];

  const gcp = await startGcpEmulator();
  const kube = await startKubeEmulator();
  const tmp = tempDir('gke');
  try {
    const kubeconfig = join(tmp, 'kubeconfig');
    kube.writeKubeconfig(kubeconfig, { context: 'gke_prod' });
    const env = {
      ...baseEnv(tmp),
      ...gcpEnv(gcp, tmp, PROJECT, NUMBER),
      KUBECONFIG: kubeconfig,
      WID_RETRY_DELAY_MS: '20',
    };
    const policy = (resource: string): unknown => {
      const { etag: _e, ...p } = gcp.getPolicy(resource);
      return p;
    };

    const scenario: CrashScenario = {
      provider: 'gke',
      env,
      setup: ['setup', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', '--role', 'roles/storage.objectViewer', '--yes'],
      teardown: ['teardown', 'gke', ...CLUSTER, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', '--delete-gsa', '--yes'],
      fresh() {
        gcp.reset();
        kube.reset();
        gcp.seedProject({ projectId: PROJECT, projectNumber: NUMBER });
        gcp.seedCluster({ project: PROJECT, location: 'europe-west1', name: 'prod', workloadPool: POOL, nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }] });
        kube.seedNamespace('apps');
      },
      hook(fn) {
        gcp.onResponse = fn && ((r) => fn(r.write, `gcp ${r.method} ${r.path}`, r.status));
        kube.onResponse = fn && ((r) => fn(r.write, `kube ${r.method} ${r.path}`, r.status));
      },
      records: () => [...gcp.log, ...kube.log],
      async snapshot() {
        const gsa = gcp.getServiceAccount(GSA);
        return {
          gsa: gsa === undefined ? null : { ...gsa, etag: undefined, policy: policy(GSA_RESOURCE) },
          projectPolicy: policy(`projects/${PROJECT}`),
          kube: kubeSnapshot(kube),
        };
      },
      async leftovers() {
        const out: string[] = [];
        const gsa = gcp.getServiceAccount(GSA);
        if (gsa) out.push(`Google service account ${GSA} (${String(gsa.description)})`);
        const policies = [`projects/${PROJECT}`, ...(gsa ? [GSA_RESOURCE] : [])];
        for (const resource of policies) {
          for (const b of gcp.getPolicy(resource).bindings) {
            for (const m of b.members) if (m === KSA_MEMBER || m.includes(GSA)) out.push(`${resource}: ${b.role} member ${m}`);
          }
        }
        return [...out, ...kubeLeftovers(kube, 'apps', 'my-ksa', 'iam.gke.io/')];
      },
    };
    return await runCrashResume(scenario);
  } finally {
    await gcp.close();
    await kube.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

const formatFindings = (r: CrashReport): string =>
  r.findings.map((f) => `${r.provider} k=${f.k} (killed after ${f.write}): ${f.what}\n  ${f.detail.replace(/\n/g, '\n  ')}`).join('\n');

// 45 wid starts in all (per provider: setup + teardown uninterrupted, then killed run + resumed setup +
// teardown for each k), about 1 s each; the three providers run side by side. The timeout leaves room
// for a loaded machine.
describe.concurrent('wid setup survives SIGKILL after every write request and converges on re-run', () => {
  for (const [provider, run] of [['eks', eks], ['aks', aks], ['gke', gke]] as const) {
    it(provider, async () => {
      const t0 = Date.now();
      const report = await run();
      reports.set(provider, report);
      console.log(
        `${provider}: ${report.crashes} writes in the uninterrupted setup (${report.baselineWrites.join(', ')}); ` +
          `the resumed runs sent ${report.resumedWrites} writes; ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      expect(report.crashes).toBeGreaterThanOrEqual(4);
      expect(formatFindings(report)).toBe('');
    }, 300_000);
  }
});
