/**
 * Preservation: a seeded state rich in unrelated content (other trust statements with conditions,
 * other credentials, role assignments, bindings with conditions, tags, ServiceAccount annotations and
 * labels) is unchanged, outside wid's own additions, after setup, after a re-run and after teardown
 * (with the delete flags).
 *
 * Per provider, every document the run could touch is snapshotted right after seeding, as the emulator
 * stores it (normalised: JSON in the emulator's own key order; Google etags, which change on every write
 * by design, and Kubernetes resourceVersions are left out). After each stage the same documents are
 * taken again, wid's own additions removed (its trust statement, credential, role assignment, IAM member,
 * annotations and managed-by label), and compared with the seed byte for byte. After teardown nothing of
 * wid's is left to remove except what teardown keeps by design (an EKS policy attachment on a role it did
 * not create, see below).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { AwsEmulator } from '../emulators/aws/server.js';
import type { AzureEmulator } from '../emulators/azure/server.js';
import type { GcpEmulator } from '../emulators/gcp/server.js';
import type { KubeEmulator } from '../emulators/kube/server.js';
import { AKS, EKS, GKE, aksRig, eksRig, gkeRig, tail, text, without, type Rig } from './rigs.js';

type Snapshot = Record<string, string>;

let documents = 0;

afterAll(() => {
  console.log(`preservation: ${documents} documents unchanged`);
});

const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** A Kubernetes object without its resourceVersion (bumped by every write, wid's included). */
function kubeDoc(o: Record<string, unknown> | undefined, widAnnotations: string[] = []): string {
  if (!o) return 'absent';
  const meta = { ...(o.metadata as Record<string, unknown>) };
  delete meta.resourceVersion;
  if (meta.annotations !== undefined) {
    const rest = without(meta.annotations as Record<string, unknown>, [...widAnnotations, 'wid/created']);
    // What wid added to a ServiceAccount without annotations goes, and the map with it.
    if (Object.keys(rest).length === 0 && Object.keys(meta.annotations as object).length > 0) delete meta.annotations;
    else meta.annotations = rest;
  }
  const labels = meta.labels as Record<string, string> | undefined;
  if (labels?.[MANAGED_BY_LABEL] === 'wid') {
    const rest = without(labels, [MANAGED_BY_LABEL]);
    if (Object.keys(rest).length === 0) delete meta.labels;
    else meta.labels = rest;
  }
  return text({ ...o, metadata: meta });
}

/** The three stages, each followed by a comparison with the seed; `check` adds per-stage assertions. */
async function stages(
  rig: Rig<unknown>,
  args: { setup: string[]; teardown: string[] },
  snapshot: () => Promise<Snapshot>,
  writes: () => number,
  check: { setup(): void; teardown(): void },
): Promise<void> {
  const seed = await snapshot();

  const up = await rig.run([...args.setup, '--yes']);
  expect(up.code, tail(up)).toBe(0);
  check.setup();
  expect(await snapshot()).toEqual(seed);

  const before = writes();
  const again = await rig.run([...args.setup, '--yes', '-o', 'json']);
  expect(again.code, tail(again)).toBe(0);
  expect(JSON.parse(again.stdout).steps.filter((s: { action: string }) => s.action !== 'noop')).toEqual([]);
  expect(writes()).toBe(before);
  check.setup();
  expect(await snapshot()).toEqual(seed);

  const down = await rig.run([...args.teardown, '--yes']);
  expect(down.code, tail(down)).toBe(0);
  check.teardown();
  expect(await snapshot()).toEqual(seed);

  documents += Object.keys(seed).length;
}

const saDoc = (kube: KubeEmulator, ns: string, name: string, wid: string[]): string => kubeDoc(kube.getServiceAccount(ns, name), wid);
/** The emulator has no namespace getter: read it over the API (a GET, not counted as a write). */
async function nsDoc(kube: KubeEmulator, ns: string): Promise<string> {
  const r = await fetch(`${kube.url}/api/v1/namespaces/${ns}`);
  return kubeDoc(r.ok ? ((await r.json()) as Record<string, unknown>) : undefined);
}

describe('unrelated content is unchanged after setup, re-run and teardown', () => {
  it('EKS: a shared role, its trust policy, tags and attachments, both OIDC providers, the ServiceAccount and namespace', async () => {
    const rig = await eksRig();
    try {
      const aws: AwsEmulator = rig.cloud;
      const kube = rig.kube;
      const other = { url: 'https://oidc.eks.eu-west-1.amazonaws.com/id/OTHERCLUSTER0123456789ABCDEF0123', hostPath: 'oidc.eks.eu-west-1.amazonaws.com/id/OTHERCLUSTER0123456789ABCDEF0123' };
      aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: EKS.issuer });
      // This cluster's provider exists already, not wid's (no managed-by=wid), with another client id.
      aws.seedOidcProvider({ url: EKS.issuer, clientIds: ['sts.amazonaws.com', 'vault.example.com'], tags: { team: 'platform' } });
      const otherArn = aws.seedOidcProvider({ url: other.url, clientIds: ['sts.amazonaws.com'], tags: { 'managed-by': 'wid', 'wid/cluster': 'other' } });
      // With wid's statement this stays just under IAM's 2048-character quota.
      const trust = {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Ec2', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
          {
            Sid: 'CrossAccount',
            Effect: 'Allow',
            Principal: { AWS: 'arn:aws:iam::444455556666:root' },
            Action: 'sts:AssumeRole',
            Condition: { StringEquals: { 'sts:ExternalId': 'ext-7f3a' } },
          },
          // Two other ServiceAccounts of this cluster in one statement.
          {
            Effect: 'Allow',
            Principal: { Federated: EKS.providerArn },
            Action: 'sts:AssumeRoleWithWebIdentity',
            Condition: { StringEquals: { [`${EKS.hostPath}:aud`]: 'sts.amazonaws.com', [`${EKS.hostPath}:sub`]: ['system:serviceaccount:jobs:loader', 'system:serviceaccount:jobs:exporter'] } },
          },
          // A wildcard over another namespace.
          {
            Sid: 'Batch',
            Effect: 'Allow',
            Principal: { Federated: EKS.providerArn },
            Action: 'sts:AssumeRoleWithWebIdentity',
            Condition: { StringLike: { [`${EKS.hostPath}:sub`]: 'system:serviceaccount:batch:*' } },
          },
          // The same namespace/name in another cluster: not this subject.
          {
            Effect: 'Allow',
            Principal: { Federated: otherArn },
            Action: 'sts:AssumeRoleWithWebIdentity',
            Condition: { StringEquals: { [`${other.hostPath}:sub`]: 'system:serviceaccount:apps:s3-sa', [`${other.hostPath}:aud`]: 'sts.amazonaws.com' } },
          },
        ],
      };
      aws.seedRole({
        name: 'shared-role',
        path: '/data/',
        description: 'Shared by the data jobs',
        trustPolicy: JSON.stringify(trust),
        tags: { team: 'data', 'managed-by': 'terraform', 'cost-center': '4711' },
        attachedPolicies: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
      });
      kube.seedNamespace('apps', { labels: { team: 'data', 'kubernetes.io/metadata.name': 'apps' }, annotations: { 'scheduler.alpha.kubernetes.io/node-selector': 'pool=data' } });
      kube.seedServiceAccount({
        namespace: 'apps',
        name: 's3-sa',
        annotations: { 'example.com/owner': 'team-data', 'meta.helm.sh/release-name': 'loader', 'meta.helm.sh/release-namespace': 'apps' },
        labels: { [MANAGED_BY_LABEL]: 'Helm', 'app.kubernetes.io/name': 'loader', 'helm.sh/chart': 'loader-1.2.3' },
        automountServiceAccountToken: false,
      });

      const POLICY = 'arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess';
      const subject = 'system:serviceaccount:apps:s3-sa';
      const isWids = (s: Record<string, unknown>): boolean =>
        text(s) === text({ Action: ['sts:AssumeRoleWithWebIdentity'], Condition: { StringEquals: { [`${EKS.hostPath}:aud`]: 'sts.amazonaws.com', [`${EKS.hostPath}:sub`]: subject } }, Effect: 'Allow', Principal: { Federated: EKS.providerArn } });
      const owned = ['eks.amazonaws.com/role-arn', 'eks.amazonaws.com/audience', 'eks.amazonaws.com/sts-regional-endpoints', 'eks.amazonaws.com/token-expiration'];

      const snapshot = async (): Promise<Snapshot> => {
        const role = aws.getRole('shared-role')!;
        const doc = role.trustPolicy as { Statement: Record<string, unknown>[] };
        return {
          // Byte for byte: wid writes the document back compactly, as it was seeded.
          'trust policy': role.trustPolicyText === JSON.stringify({ ...doc, Statement: doc.Statement }) ? text({ ...doc, Statement: doc.Statement.filter((s) => !isWids(s)) }) : `not compact JSON: ${role.trustPolicyText}`,
          'role (path, id, description, tags, session)': text(without(role as unknown as Record<string, unknown>, ['trustPolicy', 'trustPolicyText', 'attachedPolicies'])),
          // wid's attachment stays on a role teardown keeps (README: detached only when the role is deleted).
          'role attachments': text(role.attachedPolicies.filter((p) => p !== POLICY)),
          'oidc provider (this cluster)': text(aws.getOidcProvider(EKS.providerArn)),
          'oidc provider (other cluster)': text(aws.getOidcProvider(otherArn)),
          'ServiceAccount apps/s3-sa': saDoc(kube, 'apps', 's3-sa', owned),
          'Namespace apps': await nsDoc(kube, 'apps'),
        };
      };
      const seedTrustText = aws.getRole('shared-role')!.trustPolicyText;

      const common = ['--cluster', 'prod', '--sa', 's3-sa', '-n', 'apps', '--role-name', 'shared-role'];
      await stages(
        rig,
        { setup: ['setup', 'eks', ...common, '--attach-policy-arn', POLICY], teardown: ['teardown', 'eks', ...common, '--delete-oidc-provider'] },
        snapshot,
        () => aws.writes().length + kube.writes().length,
        {
          setup() {
            const role = aws.getRole('shared-role')!;
            expect((role.trustPolicy as { Statement: Record<string, unknown>[] }).Statement.filter(isWids)).toHaveLength(1);
            expect(role.attachedPolicies).toContain(POLICY);
            expect(kube.getServiceAccount('apps', 's3-sa').metadata.annotations['eks.amazonaws.com/role-arn']).toBe(`arn:aws:iam::${EKS.account}:role/data/shared-role`);
          },
          teardown() {
            // The trust policy is the seeded text again, byte for byte.
            expect(aws.getRole('shared-role')!.trustPolicyText).toBe(seedTrustText);
            expect(kube.getServiceAccount('apps', 's3-sa').metadata.annotations).not.toHaveProperty('eks.amazonaws.com/role-arn');
          },
        },
      );
    } finally {
      await rig.close();
    }
  });

  it('AKS: a shared identity, its tags, other credentials, role assignments, the ServiceAccount and namespace', async () => {
    const rig = await aksRig();
    try {
      const azure: AzureEmulator = rig.cloud;
      const kube = rig.kube;
      azure.seedCluster({ subscription: AKS.sub, resourceGroup: AKS.rg, name: 'prod', location: 'westeurope', issuer: AKS.issuer });
      const identity = azure.seedIdentity({ subscription: AKS.sub, resourceGroup: AKS.rg, name: 'shared-id', location: 'westeurope', tags: { team: 'payments', 'managed-by': 'terraform', env: 'prod' } });
      const subject = 'system:serviceaccount:apps:pay-sa';
      azure.seedFederatedCredential(identity.id, { name: 'ci-pipeline', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:contoso/payments:environment:prod' });
      // The same namespace/name in another cluster, another ServiceAccount of this cluster, another audience.
      azure.seedFederatedCredential(identity.id, { name: 'other-cluster', issuer: 'https://northeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/0f0e0d0c-0b0a-4909-8807-060504030201/', subject });
      azure.seedFederatedCredential(identity.id, { name: 'same-cluster-other-sa', issuer: AKS.issuer, subject: 'system:serviceaccount:apps:ledger' });
      azure.seedFederatedCredential(identity.id, { name: 'custom-audience', issuer: 'https://vault.example.com/v1/identity/oidc', subject: 'payments', audiences: ['api://custom-exchange'] });
      const otherPrincipal = '5a5a5a5a-1111-2222-3333-444455556666';
      azure.seedPrincipal(otherPrincipal, 'Group');
      // A Reader grant someone else made (wid will find it and not make its own), a grant at the
      // subscription, and another principal's grant at the same scope.
      azure.seedRoleAssignment({ scope: AKS.scope, roleName: 'Reader', principalId: identity.principalId, description: 'granted by the platform team' });
      azure.seedRoleAssignment({ scope: `/subscriptions/${AKS.sub}`, roleName: 'Key Vault Secrets User', principalId: identity.principalId });
      azure.seedRoleAssignment({ scope: AKS.scope, roleName: 'Contributor', principalId: otherPrincipal, principalType: 'Group', description: 'ops' });
      kube.seedNamespace('apps', { labels: { team: 'payments' } });
      // Labels only, no annotations: what wid adds (and removes) must not leave an empty map behind.
      kube.seedServiceAccount({ namespace: 'apps', name: 'pay-sa', labels: { [MANAGED_BY_LABEL]: 'Helm', 'app.kubernetes.io/name': 'payments' } });

      const ficOfWid = (f: { properties: { issuer: string; subject: string } }): boolean => f.properties.issuer === AKS.issuer && f.properties.subject === subject;
      const WID_DESCRIPTION = 'workload identity [managed by wid]';
      const snapshot = async (): Promise<Snapshot> => ({
        identity: text(azure.getIdentity(identity.id)),
        'federated credentials': text(azure.listFederatedCredentials(identity.id).filter((f) => !ficOfWid(f))),
        'role assignments': text(azure.listRoleAssignments().filter((a) => a.properties.description !== WID_DESCRIPTION)),
        'ServiceAccount apps/pay-sa': saDoc(kube, 'apps', 'pay-sa', ['azure.workload.identity/client-id', 'azure.workload.identity/tenant-id']),
        'Namespace apps': await nsDoc(kube, 'apps'),
      });

      const common = ['--cluster', 'prod', '-g', AKS.rg, '--sa', 'pay-sa', '-n', 'apps', '--identity', 'shared-id', '--role', 'Reader', '--scope', AKS.scope, '--role', 'Storage Blob Data Reader', '--scope', AKS.scope];
      await stages(
        rig,
        { setup: ['setup', 'aks', ...common], teardown: ['teardown', 'aks', ...common, '--delete-identity'] },
        snapshot,
        () => azure.writes().length + kube.writes().length,
        {
          setup() {
            expect(azure.listFederatedCredentials(identity.id).filter(ficOfWid)).toHaveLength(1);
            const ours = azure.listRoleAssignments().filter((a) => a.properties.description === WID_DESCRIPTION);
            expect(ours.map((a) => a.properties.roleDefinitionId.split('/').pop())).toEqual(['2a2b9908-6ea1-4ae2-8e65-a410df84e7d1']);
            expect(kube.getServiceAccount('apps', 'pay-sa').metadata.annotations['azure.workload.identity/client-id']).toBe(identity.clientId);
          },
          teardown() {
            expect(azure.listFederatedCredentials(identity.id).filter(ficOfWid)).toEqual([]);
            expect(azure.listRoleAssignments().filter((a) => a.properties.description === WID_DESCRIPTION)).toEqual([]);
            expect(kube.getServiceAccount('apps', 'pay-sa').metadata).not.toHaveProperty('annotations');
          },
        },
      );
    } finally {
      await rig.close();
    }
  });

  it('GKE: a shared Google service account and the project, their conditional bindings, the ServiceAccount and namespace', async () => {
    const rig = await gkeRig();
    try {
      const gcp: GcpEmulator = rig.cloud;
      const kube = rig.kube;
      const project = GKE.project;
      const pool = GKE.pool(project);
      gcp.seedProject({ projectId: project, projectNumber: GKE.number });
      gcp.seedCluster({ project, location: GKE.location, name: 'prod', workloadPool: pool });
      const gsa = gcp.seedServiceAccount({ project, accountId: 'app-gsa', displayName: 'App', description: 'Data team app (owned by data)' });
      gcp.seedServiceAccount({ project, accountId: 'etl-gsa', displayName: 'ETL' });
      const gsaResource = `projects/${project}/serviceAccounts/${gsa}`;
      const member = `serviceAccount:${pool}[apps/my-ksa]`;
      gcp.setPolicy(gsaResource, {
        bindings: [
          { role: 'roles/iam.serviceAccountTokenCreator', members: ['user:alice@example.com'], condition: { title: 'weekdays', expression: 'request.time.getDayOfWeek() < 5', description: 'office hours' } },
          // Another ServiceAccount already bound, unconditionally: wid adds its member to this binding.
          { role: 'roles/iam.workloadIdentityUser', members: [`serviceAccount:${pool}[other/ksa]`] },
          // This very member, but only until a date: grants less, so it is not wid's and stays.
          { role: 'roles/iam.workloadIdentityUser', members: [member], condition: { title: 'until-2027', expression: 'request.time < timestamp("2027-01-01T00:00:00Z")' } },
          { role: 'roles/iam.serviceAccountUser', members: ['group:devs@example.com'] },
        ],
      });
      gcp.setPolicy(`projects/${project}`, {
        bindings: [
          { role: 'roles/owner', members: ['user:owner@example.com'] },
          { role: 'roles/storage.objectViewer', members: ['user:dave@example.com', `serviceAccount:etl-gsa@${project}.iam.gserviceaccount.com`] },
          { role: 'roles/storage.objectViewer', members: [`serviceAccount:${gsa}`], condition: { title: 'raw-bucket', expression: 'resource.name.startsWith("projects/_/buckets/raw")' } },
          { role: 'roles/bigquery.dataViewer', members: ['group:analysts@example.com'], condition: { title: 'eu', expression: 'resource.name.startsWith("projects/rel-project/datasets/eu_")' } },
          { role: 'roles/logging.viewer', members: ['group:ops@example.com'] },
        ],
      });
      kube.seedNamespace('apps', { annotations: { 'iam.gke.io/note': 'namespace level, not wid\'s' } });
      // Annotations only, no labels: the managed-by label wid adds must go without leaving an empty map.
      kube.seedServiceAccount({ namespace: 'apps', name: 'my-ksa', annotations: { 'example.com/owner': 'data', 'iam.gke.io/credential-quota': 'high' } });

      const roles = ['roles/storage.objectViewer', 'roles/bigquery.dataViewer'];
      /** A policy without wid's member in `role`'s unconditional binding (and the binding if it empties); no etag. */
      const minus = (resource: string, grants: [string, string][]): string => {
        const p = gcp.getPolicy(resource);
        const bindings = p.bindings
          .map((b) => (b.condition === undefined && grants.some(([r, m]) => r === b.role && b.members.includes(m)) ? { ...b, members: b.members.filter((m) => !grants.some(([r, x]) => r === b.role && x === m)) } : b))
          .filter((b) => b.members.length > 0);
        return text({ version: p.version, bindings });
      };
      const snapshot = async (): Promise<Snapshot> => ({
        'project policy': minus(`projects/${project}`, roles.map((r) => [r, `serviceAccount:${gsa}`])),
        'service account policy': minus(gsaResource, [['roles/iam.workloadIdentityUser', member]]),
        'service account': text(gcp.getServiceAccount(gsa)),
        'ServiceAccount apps/my-ksa': saDoc(kube, 'apps', 'my-ksa', ['iam.gke.io/gcp-service-account', 'wid/gcp-grants']),
        'Namespace apps': await nsDoc(kube, 'apps'),
      });

      const common = ['--cluster', 'prod', '--location', GKE.location, '--project', project, '--sa', 'my-ksa', '-n', 'apps', '--gsa', 'app-gsa', ...roles.flatMap((r) => ['--role', r])];
      const holds = (resource: string, role: string, m: string): boolean => gcp.getPolicy(resource).bindings.some((b) => b.role === role && !b.condition && b.members.includes(m));
      await stages(
        rig,
        { setup: ['setup', 'gke', ...common], teardown: ['teardown', 'gke', ...common, '--delete-gsa'] },
        snapshot,
        () => gcp.writes().length + kube.writes().length,
        {
          setup() {
            expect(holds(gsaResource, 'roles/iam.workloadIdentityUser', member)).toBe(true);
            for (const r of roles) expect(holds(`projects/${project}`, r, `serviceAccount:${gsa}`)).toBe(true);
            expect(kube.getServiceAccount('apps', 'my-ksa').metadata.annotations['iam.gke.io/gcp-service-account']).toBe(gsa);
          },
          teardown() {
            expect(holds(gsaResource, 'roles/iam.workloadIdentityUser', member)).toBe(false);
            for (const r of roles) expect(holds(`projects/${project}`, r, `serviceAccount:${gsa}`)).toBe(false);
            expect(gcp.getServiceAccount(gsa)).toBeDefined();
            expect(kube.getServiceAccount('apps', 'my-ksa').metadata).not.toHaveProperty('labels');
          },
        },
      );
    } finally {
      await rig.close();
    }
  });
});
