/**
 * Concurrency: two wid processes, started at the same moment, set up two different ServiceAccounts
 * (`a-i`, `b-i`) on one shared cloud object. Afterwards both must be there and both must exit 0.
 *
 * - EKS: the same existing role (`--role-name`). IAM has no etag, so wid re-reads the trust policy
 *   after writing it and merges again while its statement is missing.
 * - AKS: the same managed identity (`--identity`): two federated credentials; ARM's 409 for
 *   concurrent credential writes on one identity is retried.
 * - GKE gsa mode: the same Google service account (`--gsa`) and the same `--role` on the project:
 *   read-modify-writes with the etag, retried on 409 ABORTED. A third writer (raceNextPolicyWrite)
 *   strikes between one of wid's reads and its write.
 *
 * Every emulator answers with latency, so reads and writes of the two processes interleave. In the
 * even pairs the emulator also gathers the two processes' first writes to the shared object
 * (faults.gather): each is held until the other has arrived too, so both have read before either
 * writes, the schedule that loses an update unless the client handles it. The odd pairs race as they
 * come. Pairs of different indices run in parallel (PARALLEL pairs in flight) to stay within the time
 * budget; each pair has its own role, identity, or service account and project, so pairs never
 * interfere (the EKS pairs share only the OIDC provider, which the first two processes race to create).
 * A lost update is a pair after which one of the two ServiceAccounts (or the third writer's member) is
 * missing although both processes exited 0.
 *
 * WID_REL_PAIRS (default 20) and WID_REL_PARALLEL (default 6) tune the run. Each wid start costs about
 * 1 s of CPU; this machine gets about one core's worth out of two, so 120 starts take about 2.5 minutes.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { AwsEmulator } from '../emulators/aws/server.js';
import type { AzureEmulator } from '../emulators/azure/server.js';
import type { GcpEmulator } from '../emulators/gcp/server.js';
import type { WidResult } from '../helpers/wid.js';
import { AKS, EKS, GKE, aksRig, eksRig, gkeRig, pool, tail, type Rig } from './rigs.js';

const PAIRS = Number(process.env.WID_REL_PAIRS ?? 20);
const PARALLEL = Number(process.env.WID_REL_PARALLEL ?? 6);
/** Emulator latency per answer (ms): long enough that the two processes' reads and writes overlap. */
const LATENCY_MS = 40;
/** wid's retry base (ms): its re-reads after a trust-policy write land after the other writer's write. */
const RETRY_ENV = { WID_RETRY_DELAY_MS: '100' };

const TIMEOUT = 240_000;

interface PairOutcome {
  index: number;
  results: [WidResult, WidResult];
  /** What is missing afterwards although wid said it was done (the lost updates). */
  lost: string[];
  /** Other wrong results: non-zero exits, duplicates, unrelated content gone. */
  problems: string[];
  /** How contended the pair was (re-merges after an overwrite, 409s retried). */
  contention: number;
  /** The cloud requests on the shared object, in order, for a repro. */
  trace: string[];
}

const indices = Array.from({ length: PAIRS }, (_, i) => i);
/** Pairs whose first writes the emulator gathers (see above). */
const forced = (i: number): boolean => i % 2 === 0;
const figures = { eks: 0, aks: 0, gke: 0, lost: 0 };
const contention: Record<string, string> = {};
const started = Date.now();

afterAll(() => {
  const n = figures.eks + figures.aks + figures.gke;
  console.log(`concurrency: ${n} pairs (eks ${figures.eks}, aks ${figures.aks}, gke ${figures.gke}), ${figures.lost} lost updates`);
  console.log(`concurrency contention: ${Object.entries(contention).map(([k, v]) => `${k} ${v}`).join('; ')}; ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

/** Both processes of one pair, started in the same tick. */
function pairRun(rig: Rig<unknown>, args: (sa: string) => string[], i: number): Promise<[WidResult, WidResult]> {
  return Promise.all([rig.run(args(`a-${i}`), RETRY_ENV), rig.run(args(`b-${i}`), RETRY_ENV)]);
}

function exitProblems(i: number, results: [WidResult, WidResult]): string[] {
  return results.flatMap((r, k) => (r.code === 0 ? [] : [`${k === 0 ? 'a' : 'b'}-${i} exited ${r.code}: ${tail(r)}`]));
}

/** Fails with every lost update and problem spelled out (pair, what is missing, the request trace). */
function report(provider: string, outcomes: PairOutcome[]): void {
  const bad = outcomes.filter((o) => o.lost.length > 0 || o.problems.length > 0);
  figures.lost += outcomes.reduce((n, o) => n + (o.lost.length > 0 && o.results.every((r) => r.code === 0) ? 1 : 0), 0);
  const text = bad.map((o) => `${provider} pair ${o.index}:\n  lost: ${o.lost.join('; ') || '-'}\n  problems: ${o.problems.join('; ') || '-'}\n  trace:\n    ${o.trace.join('\n    ')}`).join('\n');
  expect(text).toBe('');
}

describe('two wid processes on one shared cloud object: no lost update', () => {
  it(`EKS: ${PAIRS} pairs on one existing role each: both subjects end up in the trust policy`, { timeout: TIMEOUT }, async () => {
    const rig = await eksRig();
    try {
      const aws: AwsEmulator = rig.cloud;
      aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: EKS.issuer });
      rig.kube.seedNamespace('apps');
      // The OIDC provider is left absent: the first two processes to create it are gathered, so one of
      // them gets EntityAlreadyExists and must carry on.
      aws.faults.gather('CreateOpenIDConnectProvider', 2, { timeoutMs: 3000 });
      const unrelated = { Sid: 'Ec2', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };
      for (const i of indices) aws.seedRole({ name: `shared-role-${i}`, trustPolicy: { Version: '2012-10-17', Statement: [unrelated] } });
      aws.faults.latencyMs = LATENCY_MS;

      const outcomes = await pool(indices, PARALLEL, async (i): Promise<PairOutcome> => {
        const role = `shared-role-${i}`;
        if (forced(i)) aws.faults.gather('UpdateAssumeRolePolicy', 2, { where: { RoleName: role } });
        const results = await pairRun(rig, (sa) => ['setup', 'eks', '--cluster', 'prod', '--sa', sa, '-n', 'apps', '--role-name', role, '--yes'], i);
        const doc = aws.getRole(role)!.trustPolicy as { Statement: Record<string, unknown>[] };
        const subOf = (s: Record<string, unknown>): unknown => (s.Condition as { StringEquals?: Record<string, unknown> } | undefined)?.StringEquals?.[`${EKS.hostPath}:sub`];
        const lost: string[] = [];
        const problems = exitProblems(i, results);
        for (const sa of [`a-${i}`, `b-${i}`]) {
          const n = doc.Statement.filter((s) => subOf(s) === `system:serviceaccount:apps:${sa}`).length;
          if (n === 0) lost.push(`trust statement for apps/${sa}`);
          if (n > 1) problems.push(`${n} trust statements for apps/${sa}`);
          const ann = rig.kube.getServiceAccount('apps', sa)?.metadata?.annotations?.['eks.amazonaws.com/role-arn'];
          if (ann !== `arn:aws:iam::${EKS.account}:role/${role}`) problems.push(`ServiceAccount apps/${sa} role-arn annotation is ${String(ann)}`);
        }
        if (JSON.stringify(doc.Statement[0]) !== JSON.stringify(unrelated)) problems.push('the unrelated statement changed or moved');
        if (doc.Statement.length !== 3) problems.push(`${doc.Statement.length} statements, expected 3`);
        const calls = aws.log.filter((r) => (r.params as Record<string, unknown> | undefined)?.RoleName === role);
        const updates = calls.filter((r) => r.action === 'UpdateAssumeRolePolicy' && r.status === 200).length;
        return { index: i, results, lost, problems, contention: updates > 2 ? 1 : 0, trace: calls.map((r) => `${r.action} ${r.status}`) };
      });

      figures.eks = outcomes.length;
      const remerged = outcomes.filter((o) => o.contention > 0);
      const creates = aws.log.filter((r) => r.action === 'CreateOpenIDConnectProvider').map((r) => r.status);
      contention.eks = `${remerged.length}/${outcomes.length} pairs had the trust policy overwritten by the other process and merged again (${remerged.filter((o) => !forced(o.index)).length} unforced); CreateOpenIDConnectProvider answered ${creates.join(',')}`;
      report('eks', outcomes);
      // The races were real: every gathered pair had one statement overwritten, and wid put it back.
      expect(outcomes.filter((o) => forced(o.index) && o.contention === 0).map((o) => o.index)).toEqual([]);
    } finally {
      await rig.close();
    }
  });

  it(`AKS: ${PAIRS} pairs on one managed identity each: both federated credentials end up on it`, { timeout: TIMEOUT }, async () => {
    const rig = await aksRig();
    try {
      const azure: AzureEmulator = rig.cloud;
      azure.seedCluster({ subscription: AKS.sub, resourceGroup: AKS.rg, name: 'prod', location: 'westeurope', issuer: AKS.issuer });
      rig.kube.seedNamespace('apps');
      const unrelated = { name: 'ci-pipeline', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:contoso/app:ref:refs/heads/main' };
      const clientIds = new Map<number, string>();
      for (const i of indices) {
        const seeded = azure.seedIdentity({ subscription: AKS.sub, resourceGroup: AKS.rg, name: `shared-id-${i}`, location: 'westeurope', tags: { team: 'payments' } });
        azure.seedFederatedCredential(seeded.id, unrelated);
        clientIds.set(i, seeded.clientId);
      }
      azure.faults.latencyMs = LATENCY_MS;

      const outcomes = await pool(indices, PARALLEL, async (i): Promise<PairOutcome> => {
        const identity = `shared-id-${i}`;
        if (forced(i)) azure.faults.gather('PUT', new RegExp(`/userAssignedIdentities/${identity}/federatedIdentityCredentials/`, 'i'), 2);
        const results = await pairRun(rig, (sa) => ['setup', 'aks', '--cluster', 'prod', '-g', AKS.rg, '--sa', sa, '-n', 'apps', '--identity', identity, '--yes'], i);
        const fics = azure.listFederatedCredentials(AKS.identityId(identity));
        const lost: string[] = [];
        const problems = exitProblems(i, results);
        for (const sa of [`a-${i}`, `b-${i}`]) {
          const n = fics.filter((f) => f.properties.issuer === AKS.issuer && f.properties.subject === `system:serviceaccount:apps:${sa}`).length;
          if (n === 0) lost.push(`federated credential for apps/${sa}`);
          if (n > 1) problems.push(`${n} federated credentials for apps/${sa}`);
          const ann = rig.kube.getServiceAccount('apps', sa)?.metadata?.annotations?.['azure.workload.identity/client-id'];
          if (ann !== clientIds.get(i)) problems.push(`ServiceAccount apps/${sa} client-id annotation is ${String(ann)}`);
        }
        const ci = fics.find((f) => f.name === unrelated.name);
        if (!ci || ci.properties.subject !== unrelated.subject || ci.properties.issuer !== unrelated.issuer) problems.push('the unrelated credential changed or went');
        if (fics.length !== 3) problems.push(`${fics.length} credentials, expected 3`);
        const needle = `/userassignedidentities/${identity}/`.toLowerCase();
        const calls = azure.log.filter((r) => `${r.path.toLowerCase()}/`.includes(needle));
        const conflicts = calls.filter((r) => r.status === 409).length;
        return { index: i, results, lost, problems, contention: conflicts, trace: calls.map((r) => `${r.method} ${r.path.replace(/^.*\/userAssignedIdentities\//i, '')} ${r.status}`) };
      });

      figures.aks = outcomes.length;
      const raced = outcomes.filter((o) => o.contention > 0);
      contention.aks = `${raced.length}/${outcomes.length} pairs got ARM's 409 for concurrent credential writes (${raced.filter((o) => !forced(o.index)).length} unforced; ${raced.reduce((n, o) => n + o.contention, 0)} 409s retried)`;
      report('aks', outcomes);
      expect(outcomes.filter((o) => forced(o.index) && o.contention === 0).map((o) => o.index)).toEqual([]);
    } finally {
      await rig.close();
    }
  });

  it(`GKE: ${PAIRS} pairs on one Google service account (and project role) each: both members end up bound`, { timeout: TIMEOUT }, async () => {
    const rig = await gkeRig();
    try {
      const gcp: GcpEmulator = rig.cloud;
      rig.kube.seedNamespace('apps');
      const role = 'roles/storage.objectViewer';
      const unrelated = { role: 'roles/iam.serviceAccountTokenCreator', members: ['user:alice@example.com'], condition: { title: 'weekdays', expression: 'request.time.getDayOfWeek() < 5' } };
      const projectOf = (i: number): string => `rel-proj-${i}`;
      const gsaOf = (i: number): string => GKE.gsaEmail(`shared-gsa-${i}`, projectOf(i));
      for (const i of indices) {
        const project = projectOf(i);
        gcp.seedProject({ projectId: project, projectNumber: `31000000${String(i).padStart(4, '0')}` });
        gcp.seedCluster({ project, location: GKE.location, name: 'prod', workloadPool: GKE.pool(project) });
        gcp.seedServiceAccount({ project, accountId: `shared-gsa-${i}`, displayName: 'shared' });
        gcp.setPolicy(`projects/${project}/serviceAccounts/${gsaOf(i)}`, { bindings: [unrelated] });
      }
      gcp.faults.latencyMs = LATENCY_MS;

      /** A third writer strikes right after the n-th read of `resource`, between that reader's read and write. */
      const raceNth = (resource: string, n: number, mutate: (p: { bindings: { role: string; members: string[] }[] }) => void): void => {
        if (n <= 1) gcp.faults.raceNextPolicyWrite(resource, mutate);
        else gcp.faults.raceNextPolicyWrite(resource, () => raceNth(resource, n - 1, mutate));
      };

      const outcomes = await pool(indices, PARALLEL, async (i): Promise<PairOutcome> => {
        const project = projectOf(i);
        const gsa = gsaOf(i);
        const gsaResource = `projects/${project}/serviceAccounts/${gsa}`;
        const third = `user:carol-${i}@example.com`;
        // Reads of the GSA policy: two plans, then the two apply reads; the third read is an apply read.
        raceNth(gsaResource, 3, (p) => {
          p.bindings.push({ role: 'roles/iam.serviceAccountUser', members: [third] });
        });
        if (forced(i)) {
          gcp.faults.gather('POST', new RegExp(`/serviceAccounts/${gsa}:setIamPolicy$`), 2);
          gcp.faults.gather('POST', new RegExp(`/projects/${project}:setIamPolicy$`), 2);
        }
        const results = await pairRun(rig, (sa) => ['setup', 'gke', '--cluster', 'prod', '--location', GKE.location, '--project', project, '--sa', sa, '-n', 'apps', '--gsa', `shared-gsa-${i}`, '--role', role, '--yes'], i);
        const lost: string[] = [];
        const problems = exitProblems(i, results);
        const gsaPolicy = gcp.getPolicy(gsaResource);
        const wiu = gsaPolicy.bindings.filter((b) => b.role === 'roles/iam.workloadIdentityUser' && !b.condition);
        for (const sa of [`a-${i}`, `b-${i}`]) {
          const member = `serviceAccount:${GKE.pool(project)}[apps/${sa}]`;
          if (!wiu.some((b) => b.members.includes(member))) lost.push(`workloadIdentityUser member ${member}`);
          const ann = rig.kube.getServiceAccount('apps', sa)?.metadata?.annotations?.['iam.gke.io/gcp-service-account'];
          if (ann !== gsa) problems.push(`ServiceAccount apps/${sa} gcp-service-account annotation is ${String(ann)}`);
        }
        if (!gsaPolicy.bindings.some((b) => b.role === 'roles/iam.serviceAccountUser' && b.members.includes(third))) lost.push(`the third writer's member ${third}`);
        if (!gsaPolicy.bindings.some((b) => isDeepStrictEqual(b, unrelated))) {
          problems.push('the unrelated conditional binding changed or went');
        }
        // The project role: granted once, to the shared GSA, and the owner kept.
        const projectPolicy = gcp.getPolicy(`projects/${project}`);
        const grants = projectPolicy.bindings.filter((b) => b.role === role && !b.condition);
        if (grants.length !== 1 || JSON.stringify(grants[0]!.members) !== JSON.stringify([`serviceAccount:${gsa}`])) lost.push(`project grant ${role} is ${JSON.stringify(grants)}`);
        if (!projectPolicy.bindings.some((b) => b.role === 'roles/owner' && b.members.includes('user:owner@example.com'))) problems.push('the project owner binding went');
        // What wid sent: never the member twice in one binding (the emulator would hide that).
        const calls = gcp.log.filter((r) => r.path.includes(`/projects/${project}`));
        for (const r of calls.filter((c) => c.path.endsWith(':setIamPolicy'))) {
          const sent = ((r.body as { policy?: { bindings?: { role: string; members: string[] }[] } } | undefined)?.policy?.bindings ?? []);
          for (const b of sent) if (new Set(b.members).size !== b.members.length) problems.push(`setIamPolicy ${r.path} sent ${b.role} with a repeated member`);
        }
        const conflicts = calls.filter((r) => r.path.endsWith(':setIamPolicy') && r.status === 409).length;
        return { index: i, results, lost, problems, contention: conflicts, trace: calls.map((r) => `${r.method} ${r.path.replace(/^\/v\d\/projects\/[^/]+/, '')} ${r.status}`) };
      });

      figures.gke = outcomes.length;
      const raced = outcomes.filter((o) => o.contention > 0);
      contention.gke = `${raced.length}/${outcomes.length} pairs got 409 ABORTED on a stale etag (${raced.reduce((n, o) => n + o.contention, 0)} read-modify-writes redone; a third writer struck in every pair)`;
      report('gke', outcomes);
      expect(outcomes.filter((o) => o.contention === 0).map((o) => o.index)).toEqual([]);
    } finally {
      await rig.close();
    }
  });
});
