/**
 * AKS live, end to end: the built wid, the real Azure SDK (DefaultAzureCredential, arm-containerservice,
 * arm-msi, arm-authorization) and @kubernetes/client-node, against the local Azure (ARM + Entra, over
 * HTTPS with a test CA) and Kubernetes emulators. No SDK call is stubbed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.js';
import { startKubeEmulator, type KubeEmulator } from '../emulators/kube/server.js';
import { azureEnv } from '../helpers/cloud-env.js';
import { baseEnv, wid } from '../helpers/wid.js';

const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
const RG = 'prod-rg';
const ISSUER = 'https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/3a5f4c8e-1b2d-4e6f-9a8b-7c6d5e4f3a2b/';
const IDENTITY_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-id`;
const SCOPE = `/subscriptions/${SUB}/resourceGroups/${RG}`;
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const SUBJECT = 'system:serviceaccount:apps:my-sa';
/** A credential someone else gave the identity (another cluster); wid must leave it alone. */
const UNRELATED = { name: 'ci-pipeline', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:contoso/app:ref:refs/heads/main' };

let azure: AzureEmulator;
let kube: KubeEmulator;
let tmp: string;
let env: Record<string, string>;

beforeAll(async () => {
  azure = await startAzureEmulator();
  kube = await startKubeEmulator({ issuer: ISSUER });
  tmp = mkdtempSync(join(tmpdir(), 'wid-aks-'));
  const kubeconfig = join(tmp, 'kubeconfig');
  kube.writeKubeconfig(kubeconfig, { context: 'prod' });
  env = {
    ...baseEnv(tmp),
    // Sign-in: a service principal through EnvironmentCredential only, so nothing probes the
    // instance metadata address; ARM and the authority are the emulator, trusted through its CA.
    ...azureEnv(azure, SUB),
    KUBECONFIG: kubeconfig,
  };
});

afterAll(async () => {
  await azure?.close();
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  azure.reset();
  kube.reset();
  azure.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'prod', location: 'westeurope', issuer: ISSUER });
});

const SETUP = ['setup', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'my-sa', '-n', 'apps', '--identity', 'my-id', '--role', 'Reader', '--scope', SCOPE];
const TEARDOWN = ['teardown', 'aks', '--cluster', 'prod', '-g', RG, '--sa', 'my-sa', '-n', 'apps', '--identity', 'my-id'];

const armWrites = (): string[] => azure.writes().filter((r) => r.status < 300).map((r) => `${r.method} ${r.path.replace(/^.*\/providers\//, '')}`);

describe('wid setup/teardown aks against the emulators', () => {
  it('plans from real reads, applies, converges with zero writes, and tears down only what is wid\'s', async () => {
    const seeded = azure.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'my-id', location: 'westeurope', tags: { team: 'payments' } });
    azure.seedFederatedCredential(IDENTITY_ID, UNRELATED);
    kube.seedServiceAccount({ namespace: 'apps', name: 'my-sa', annotations: { 'example.com/owner': 'team-a' } });

    const dry = await wid([...SETUP, '--dry-run', '-o', 'json'], env);
    expect(dry.stderr).toBe('Dry run: 3 changes planned; nothing was changed.\n');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.steps.map((s: { phase: string; action: string }) => `${s.action} ${s.phase}`)).toEqual([
      'noop managed-identity',
      'create federated-credential',
      'create role-assignment',
      'update service-account',
    ]);
    expect(plan.steps[1].desired.properties).toEqual({ issuer: ISSUER, subject: SUBJECT, audiences: ['api://AzureADTokenExchange'] });
    expect(plan.manifests[1].metadata.labels['azure.workload.identity/use']).toBe('true');
    expect(azure.writes()).toEqual([]);
    expect(kube.writes()).toEqual([]);

    const applied = await wid([...SETUP, '--yes'], env);
    expect(applied.stderr).toContain('Applied 3 changes.');
    expect(applied.stderr).toContain('a minute or two');
    expect(applied.code).toBe(0);
    const fics = azure.listFederatedCredentials(IDENTITY_ID);
    expect(fics).toHaveLength(2);
    expect(fics.map((f) => f.name)).toContain('ci-pipeline');
    const ours = fics.find((f) => f.name !== 'ci-pipeline')!;
    expect(ours.name).toMatch(/^wid-apps-my-sa-[0-9a-f]{8}$/);
    expect(ours.properties).toEqual({ issuer: ISSUER, subject: SUBJECT, audiences: ['api://AzureADTokenExchange'] });
    const assignments = azure.listRoleAssignments().filter((a) => a.properties.principalId === seeded.principalId);
    expect(assignments).toHaveLength(1);
    expect(assignments[0]!.properties.roleDefinitionId.toLowerCase()).toContain(READER);
    expect(assignments[0]!.properties.principalType).toBe('ServicePrincipal');
    const sa = kube.getServiceAccount('apps', 'my-sa');
    expect(sa.metadata.annotations).toEqual({ 'example.com/owner': 'team-a', 'azure.workload.identity/client-id': seeded.clientId, 'azure.workload.identity/tenant-id': seeded.tenantId });
    expect(azure.getIdentity(IDENTITY_ID)!.tags).toEqual({ team: 'payments' });

    const before = { arm: azure.writes().length, kube: kube.writes().length };
    const again = await wid([...SETUP, '--yes', '-o', 'json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).steps.every((s: { action: string }) => s.action === 'noop')).toBe(true);
    expect(again.stderr).toContain('Nothing to change');
    expect(azure.writes().length).toBe(before.arm);
    expect(kube.writes().length).toBe(before.kube);

    const down = await wid([...TEARDOWN, '--delete-identity', '--yes'], env);
    expect(down.code).toBe(0);
    expect(azure.listFederatedCredentials(IDENTITY_ID).map((f) => f.name)).toEqual(['ci-pipeline']);
    expect(azure.listRoleAssignments().filter((a) => a.properties.principalId === seeded.principalId)).toEqual([]);
    // Not wid's (no managed-by tag), and it holds another credential: kept.
    expect(azure.getIdentity(IDENTITY_ID)).toBeDefined();
    expect(kube.getServiceAccount('apps', 'my-sa').metadata.annotations).toEqual({ 'example.com/owner': 'team-a' });

    const w = { arm: azure.writes().length, kube: kube.writes().length };
    const twice = await wid([...TEARDOWN, '--delete-identity', '--yes'], env);
    expect(twice.code).toBe(0);
    expect(twice.stderr).toContain('Nothing to change');
    expect(azure.writes().length).toBe(w.arm);
    expect(kube.writes().length).toBe(w.kube);
  });

  it('creates the identity it needs (in the cluster\'s location), and teardown --delete-identity removes it', async () => {
    const dry = await wid([...SETUP, '--create-namespace', '--dry-run', '-o', 'json'], env);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.steps.map((s: { action: string }) => s.action)).toEqual(['create', 'create', 'create', 'create', 'create']);
    expect(plan.steps[0].desired).toEqual({ location: 'westeurope', tags: { 'managed-by': 'wid', 'wid-cluster': 'prod' } });
    // The identity's ids do not exist yet: the plan says where they will come from.
    const sa = plan.steps.find((s: { phase: string }) => s.phase === 'service-account');
    expect(sa.pending).toEqual({ 'metadata.annotations.azure.workload.identity/client-id': 'clientId of managed identity my-id, once created' });

    const up = await wid([...SETUP, '--create-namespace', '--yes'], env);
    expect(up.code).toBe(0);
    const identity = azure.getIdentity(IDENTITY_ID)!;
    expect(identity.location).toBe('westeurope');
    expect(kube.getServiceAccount('apps', 'my-sa').metadata.annotations['azure.workload.identity/client-id']).toBe(identity.properties.clientId);
    // stdout carries the manifests with the new identity's client id.
    expect(up.stdout).toContain(`azure.workload.identity/client-id: ${identity.properties.clientId}`);
    expect(armWrites()).toEqual([
      'PUT Microsoft.ManagedIdentity/userAssignedIdentities/my-id',
      expect.stringMatching(/^PUT Microsoft\.ManagedIdentity\/userAssignedIdentities\/my-id\/federatedIdentityCredentials\/wid-apps-my-sa-/),
      expect.stringMatching(/^PUT Microsoft\.Authorization\/roleAssignments\//),
    ]);

    const down = await wid([...TEARDOWN, '--delete-identity', '--yes'], env);
    expect(down.code).toBe(0);
    expect(azure.getIdentity(IDENTITY_ID)).toBeUndefined();
    expect(kube.getServiceAccount('apps', 'my-sa')).toBeUndefined();
  });

  it('teardown leaves a credential someone else made for the same issuer and subject', async () => {
    azure.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'my-id', location: 'westeurope' });
    azure.seedFederatedCredential(IDENTITY_ID, { name: 'hand-made', issuer: ISSUER, subject: SUBJECT });
    kube.seedNamespace('apps');
    const up = await wid([...SETUP, '--yes', '-o', 'json'], env);
    expect(JSON.parse(up.stdout).steps.find((s: { phase: string }) => s.phase === 'federated-credential').action).toBe('noop');
    const down = await wid([...TEARDOWN, '--yes'], env);
    expect(down.code).toBe(0);
    expect(azure.listFederatedCredentials(IDENTITY_ID).map((f) => f.name)).toEqual(['hand-made']);
  });

  it('refuses the 21st federated credential before changing anything', async () => {
    azure.seedIdentity({ subscription: SUB, resourceGroup: RG, name: 'my-id', location: 'westeurope' });
    for (let i = 0; i < 20; i++) azure.seedFederatedCredential(IDENTITY_ID, { name: `other-${i}`, issuer: `https://issuer-${i}.example/`, subject: 'system:serviceaccount:x:y' });
    kube.seedNamespace('apps');
    const r = await wid([...SETUP, '--yes'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('managed identity my-id already has 20 federated credentials, Entra\'s maximum of 20');
    expect(azure.writes()).toEqual([]);
  });

  it('a cluster without workload identity: exit 1 with the az command that enables it', async () => {
    azure.seedCluster({ subscription: SUB, resourceGroup: RG, name: 'old', location: 'westeurope', workloadIdentityEnabled: false });
    const r = await wid(['setup', 'aks', '--cluster', 'old', '-g', RG, '--sa', 'x', '--identity', 'my-id', '--dry-run'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('AKS cluster old does not have workload identity enabled');
    expect(r.stderr).toContain(`az aks update -g ${RG} -n old --enable-oidc-issuer --enable-workload-identity`);
  });

  it('a role name that does not exist fails the plan; a missing cluster keeps ARM\'s code', async () => {
    kube.seedNamespace('apps');
    const role = await wid([...SETUP.slice(0, -4), '--role', 'Blob Reader', '--scope', SCOPE, '--yes'], env);
    expect(role.code).toBe(1);
    expect(role.stderr).toContain('no role named "Blob Reader" is defined at');
    expect(azure.writes()).toEqual([]);
    const missing = await wid(['setup', 'aks', '--cluster', 'nope', '-g', RG, '--sa', 'x', '--identity', 'my-id', '--dry-run'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ResourceNotFound');
  });

  it('a wrong client secret is a sign-in error with a hint, not an ARM code', async () => {
    const r = await wid([...SETUP, '--dry-run'], { ...env, AZURE_CLIENT_SECRET: 'wrong' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('signing in to Azure failed');
    expect(r.stderr).toContain('hint: sign in to Azure');
    expect(r.stderr).not.toContain('wrong');
  });

  it('--cluster with --client-id is a contradiction, found before any request', async () => {
    const r = await wid([...SETUP, '--client-id', '33333333-3333-3333-3333-333333333333', '--dry-run'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--client-id cannot be used with --cluster');
    expect(azure.log).toEqual([]);
  });
});
