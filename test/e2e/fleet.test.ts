/**
 * `wid apply -f` and `wid teardown -f` against all four emulators at once: three clusters (one per
 * cloud, each with its own kubeconfig), bindings sharing an OIDC provider, a role, an identity, a GSA
 * and a project policy. Real SDKs, the built CLI.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAwsEmulator, type AwsEmulator } from '../emulators/aws/server.js';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.js';
import { startGcpEmulator, type GcpEmulator } from '../emulators/gcp/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { awsEnv, azureEnv, gcpEnv } from '../helpers/cloud-env.js';
import { baseEnv, wid } from '../helpers/wid.js';
import { AKS, EKS, GKE } from '../reliability/rigs.js';

let aws: AwsEmulator;
let azure: AzureEmulator;
let gcp: GcpEmulator;
const kube: Record<'eks' | 'aks' | 'gke', KubeEmulator> = {} as never;
const kubeconfig: Record<'eks' | 'aks' | 'gke', string> = {} as never;
let tmp: string;
let env: Record<string, string>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'wid-fleet-'));
  [aws, azure, gcp] = await Promise.all([startAwsEmulator({ accountId: EKS.account }), startAzureEmulator(), startGcpEmulator()]);
  for (const p of ['eks', 'aks', 'gke'] as const) {
    kube[p] = await startKubeEmulator(p === 'eks' ? { issuer: EKS.issuer } : p === 'aks' ? { issuer: AKS.issuer } : {});
    kubeconfig[p] = join(tmp, `kubeconfig-${p}`);
    kube[p].writeKubeconfig(kubeconfig[p], { context: `${p}-prod` });
  }
  env = {
    ...baseEnv(tmp),
    ...awsEnv(aws),
    ...azureEnv(azure, AKS.sub),
    ...gcpEnv(gcp, tmp, GKE.project, GKE.number),
    WID_RETRY_DELAY_MS: '20',
  };
});

afterAll(async () => {
  await Promise.all([aws?.close(), azure?.close(), gcp?.close(), ...Object.values(kube).map((k) => k.close())]);
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  aws.reset();
  azure.reset();
  gcp.reset();
  for (const k of Object.values(kube)) {
    k.reset();
    k.seedNamespace('apps');
  }
  aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: EKS.issuer });
  azure.seedCluster({ subscription: AKS.sub, resourceGroup: AKS.rg, name: 'prod', location: 'westeurope', issuer: AKS.issuer });
  gcp.seedProject({ projectId: GKE.project, projectNumber: GKE.number });
  gcp.seedCluster({ project: GKE.project, location: GKE.location, name: 'prod', workloadPool: GKE.pool(GKE.project), nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }] });
});

/** N bindings per provider; EKS bindings 0 and 1 share a role, AKS ones share an identity in pairs, GKE ones share one GSA. */
function fleet(n: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ provider: 'eks', cluster: 'prod', kubeconfig: kubeconfig.eks, sa: `app-${i}`, 'role-name': i < 2 ? 'shared-role' : `app-${i}-role`, 'attach-policy-arn': ['arn:aws:iam::aws:policy/ReadOnlyAccess'] });
    out.push({ provider: 'aks', cluster: 'prod', 'resource-group': AKS.rg, kubeconfig: kubeconfig.aks, sa: `app-${i}`, identity: `id-${Math.floor(i / 2)}`, role: ['Reader'], scope: [AKS.scope] });
    out.push({ provider: 'gke', cluster: 'prod', location: GKE.location, project: GKE.project, kubeconfig: kubeconfig.gke, sa: `app-${i}`, gsa: 'fleet-gsa', role: ['roles/storage.objectViewer', `roles/custom.r${i % 3}`] });
  }
  return out;
}

function writeFleet(name: string, bindings: Record<string, unknown>[], defaults: Record<string, unknown> = { namespace: 'apps' }): string {
  const path = join(tmp, name);
  writeFileSync(path, stringify({ defaults, bindings }));
  return path;
}

const writes = (): number => aws.writes().length + azure.writes().length + gcp.writes().length + Object.values(kube).reduce((n, k) => n + k.writes().length, 0);

describe('wid apply -f / wid teardown -f', () => {
  it('one combined plan, applied concurrently; shared resources written once; re-run all noop; teardown removes it all', async () => {
    const file = writeFleet('fleet.yaml', fleet(6));

    const text = await wid(['apply', '-f', file, '--dry-run'], env);
    expect(text.code, text.stderr).toBe(0);
    // The OIDC provider is one change however many bindings need it; so is an identity two share.
    expect(text.stderr).toMatch(/shared by several bindings:\n(.*\n)*.*\+ create oidc-provider .*\[6 bindings\]/);
    expect(text.stderr).toMatch(/\+ create managed-identity\s+\/subscriptions\/.*\/userAssignedIdentities\/id-0\s+\[2 bindings\]/);
    expect(text.stderr).toMatch(/  bindings\[0\] eks prod apps\/app-0  2 shared\n    \+ create iam-role/);
    expect(text.stderr).toMatch(/~ update project-role\s+projects\/rel-project roles\/storage.objectViewer\s+\[6 bindings\]/);
    expect(text.stderr).toMatch(/Dry run: \d+ changes planned over 18 bindings; nothing was changed/);

    const dry = await wid(['apply', '-f', file, '--dry-run', '-o', 'json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(writes()).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.kind).toBe('FleetPlan');
    expect(plan.summary.bindings).toBe(18);
    const oidc = plan.changes.filter((c: { step: { phase: string } }) => c.step.phase === 'oidc-provider');
    expect(oidc).toHaveLength(1);
    expect(oidc[0].bindings).toHaveLength(6);
    expect(plan.bindings.every((b: { status: string }) => b.status === 'planned')).toBe(true);
    const asYaml = await wid(['apply', '-f', file, '--dry-run', '-o', 'yaml'], env);
    expect(asYaml.code, asYaml.stderr).toBe(0);
    expect(parse(asYaml.stdout)).toEqual(plan);

    const up = await wid(['apply', '-f', file, '--yes', '-o', 'json'], env);
    expect(up.code, up.stderr).toBe(0);
    const result = JSON.parse(up.stdout);
    expect(result.summary).toMatchObject({ bindings: 18, applied: 18, failed: 0 });

    // EKS: one OIDC provider; the shared role trusts both its ServiceAccounts.
    expect(aws.writes().filter((r) => r.action === 'CreateOpenIDConnectProvider')).toHaveLength(1);
    const shared = JSON.stringify(aws.getRole('shared-role')!.trustPolicy);
    expect(shared).toContain('system:serviceaccount:apps:app-0');
    expect(shared).toContain('system:serviceaccount:apps:app-1');
    for (let i = 2; i < 6; i++) expect(JSON.stringify(aws.getRole(`app-${i}-role`)!.trustPolicy)).toContain(`system:serviceaccount:apps:app-${i}`);
    expect(kube.eks.getServiceAccount('apps', 'app-0').metadata.annotations['eks.amazonaws.com/role-arn']).toBe(`arn:aws:iam::${EKS.account}:role/shared-role`);

    // AKS: three identities, each with the two credentials of its pair.
    for (let j = 0; j < 3; j++) {
      const creds = azure.listFederatedCredentials(AKS.identityId(`id-${j}`));
      expect(creds.map((c) => c.properties.subject).sort()).toEqual([`system:serviceaccount:apps:app-${2 * j}`, `system:serviceaccount:apps:app-${2 * j + 1}`]);
    }

    // GKE: one GSA bound to all six KSAs; the project policy holds every role, written together.
    const gsa = GKE.gsaEmail('fleet-gsa', GKE.project);
    const wiu = gcp.getPolicy(`projects/${GKE.project}/serviceAccounts/${gsa}`).bindings.find((b) => b.role === 'roles/iam.workloadIdentityUser')!;
    expect(wiu.members.sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `serviceAccount:${GKE.pool(GKE.project)}[apps/app-${i}]`).sort());
    const project = gcp.getPolicy(`projects/${GKE.project}`).bindings;
    for (const role of ['roles/storage.objectViewer', 'roles/custom.r0', 'roles/custom.r1', 'roles/custom.r2']) {
      expect(project.find((b) => b.role === role)?.members).toEqual([`serviceAccount:${gsa}`]);
    }
    const projectWrites = gcp.writes().filter((r) => r.path === `/v1/projects/${GKE.project}:setIamPolicy`);
    expect(projectWrites.length).toBeLessThan(6);
    // Six bindings planned the GSA; it was created once (the others found it).
    expect(gcp.writes().filter((r) => r.method === 'POST' && r.path === `/v1/projects/${GKE.project}/serviceAccounts`)).toHaveLength(1);

    // Re-run: every binding unchanged, not one write.
    const before = writes();
    const again = await wid(['apply', '-f', file, '--yes'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('Nothing to change');
    expect(writes()).toBe(before);

    // Teardown -f: everything wid made goes.
    const down = await wid(['teardown', '-f', file, '--yes', '--concurrency', '4'], env);
    expect(down.code, down.stderr).toBe(0);
    expect(aws.getRole('app-2-role')).toBeUndefined();
    expect(JSON.stringify(aws.getRole('shared-role')?.trustPolicy ?? {})).not.toContain('system:serviceaccount:apps:');
    expect(gcp.getPolicy(`projects/${GKE.project}`).bindings.flatMap((b) => b.members)).not.toContain(`serviceAccount:${gsa}`);
    for (const p of ['eks', 'aks', 'gke'] as const) expect(kube[p].getServiceAccount('apps', 'app-3')).toBeUndefined();
    const twice = await wid(['teardown', '-f', file, '--yes'], env);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stderr).toContain('Nothing to change');
  });

  it('a failing binding does not stop the others: it is named, exit 1, and the next run finishes it', async () => {
    const file = writeFleet('partial.yaml', fleet(3));
    // A binding wid may not complete (403 is not retried): the AKS credentials of this file.
    azure.faults.failNext('PUT', /federatedIdentityCredentials/, 403, 'AuthorizationFailed', 'The client does not have authorization to perform action Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write.', 50);
    const r = await wid(['apply', '-f', file, '--yes'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/✗ bindings\[\d+\] aks prod apps\/app-\d/);
    expect(r.stderr).toMatch(/bindings failed/);
    // The EKS and GKE bindings are done.
    expect(kube.eks.getServiceAccount('apps', 'app-2')).toBeDefined();
    expect(kube.gke.getServiceAccount('apps', 'app-2')).toBeDefined();
    azure.faults.clear();
    const again = await wid(['apply', '-f', file, '--yes', '-o', 'json'], env);
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(again.stdout);
    expect(doc.bindings.filter((b: { provider: string; status: string }) => b.provider !== 'aks').every((b: { status: string }) => b.status === 'unchanged')).toBe(true);
    expect(doc.bindings.filter((b: { provider: string; status: string }) => b.provider === 'aks').every((b: { status: string }) => b.status === 'applied')).toBe(true);
  });

  it('bad input anywhere in the file: exit 2 naming the binding and field, no client built, nothing written', async () => {
    const cases: [Record<string, unknown>[] | string, RegExp][] = [
      [[{ provider: 'eks', cluster: 'prod', sa: 'Bad_Name' }], /bindings\[0\] \(eks prod apps\/Bad_Name\): --sa/],
      [[{ provider: 'eks', cluster: 'prod', sa: 'a' }, { provider: 'oci', sa: 'b' }], /bindings\[1\]\.provider "oci" is invalid/],
      [[{ provider: 'gke', cluster: 'prod', sa: 'a', rolez: ['x'] }], /bindings\[0\]\.rolez: unknown field for gke/],
      [[{ provider: 'aks', cluster: 'prod', sa: 'a', yes: true }], /bindings\[0\]\.yes: set it once on the command line/],
      [[{ provider: 'eks', sa: 'a' }], /bindings\[0\] .*cluster is required/],
      [[{ provider: 'eks', cluster: 'prod', sa: 'a' }, { provider: 'eks', cluster: 'prod', sa: 'a' }], /bindings\[1\] .* repeats bindings\[0\]/],
      [[{ provider: 'eks', cluster: 'prod', sa: 'a', 'attach-policy-arn': 'arn:aws:iam::aws:policy/X\nY' }], /--attach-policy-arn/],
      ['bindings: [', /is not valid YAML/],
      ['bindings: []', /"bindings" must be a non-empty list/],
    ];
    for (const [bindings, message] of cases) {
      const path = typeof bindings === 'string' ? join(tmp, 'bad.yaml') : writeFleet('bad.yaml', bindings);
      if (typeof bindings === 'string') writeFileSync(path, bindings);
      const r = await wid(['apply', '-f', path, '--yes'], env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const missing = await wid(['apply', '-f', join(tmp, 'nope.yaml'), '--yes'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--file');
    const conc = await wid(['apply', '-f', writeFleet('ok.yaml', fleet(1)), '--concurrency', '0'], env);
    expect(conc.code).toBe(2);
    expect(conc.stderr).toContain('--concurrency "0" is invalid');
    expect(aws.log.length + azure.log.length + gcp.log.length).toBe(0);
    expect(writes()).toBe(0);
  });
});
