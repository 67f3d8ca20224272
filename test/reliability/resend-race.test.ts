/**
 * The throttled resend race (EKS). IAM has no etag: UpdateAssumeRolePolicy replaces the whole trust
 * policy with the document sent. If a write of wid's fails transiently (throttled, 5xx, or its answer
 * lost on a dropped connection) and someone else changes the trust policy before wid tries again, a
 * resend of the same document (what the SDK's own retries do) would put back the policy as wid read it,
 * over the other writer's statement. So wid sends trust-policy writes through an IAM client with
 * maxAttempts 1 and retries in its own loop: read again, merge again, write (src/providers/eks/).
 *
 * Here the other writer strikes from the emulator's onResponse hook, synchronously, right after wid's
 * first UpdateAssumeRolePolicy was answered (or its connection dropped): before wid can send anything
 * else. It adds an IRSA statement for another ServiceAccount, as a concurrent `wid setup` would. After
 * wid converges, the trust policy must hold the unrelated statement, the other writer's and wid's.
 *
 * With a blind resend, the SDK would send [unrelated, wid's] again after its retry delay: the other
 * writer's statement would be gone, and wid's loop (which finds its own statement) would not notice.
 * Checked by hand by pointing updateTrustPolicy at the retrying client: every case here then fails.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AwsEmulator } from '../emulators/aws/server.js';
import { EKS, eksRig, tail, type Rig } from './rigs.js';

const ROLE = 'shared-role';
const unrelated = { Sid: 'Ec2', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };
/** The other writer's statement: another ServiceAccount's IRSA trust, as wid would write it. */
const other = {
  Effect: 'Allow',
  Principal: { Federated: EKS.providerArn },
  Action: 'sts:AssumeRoleWithWebIdentity',
  Condition: { StringEquals: { [`${EKS.hostPath}:sub`]: 'system:serviceaccount:apps:other', [`${EKS.hostPath}:aud`]: 'sts.amazonaws.com' } },
};

type Statement = Record<string, unknown>;
const subjectOf = (s: Statement): unknown => (s.Condition as { StringEquals?: Record<string, unknown> } | undefined)?.StringEquals?.[`${EKS.hostPath}:sub`];

let rig: Rig<AwsEmulator>;
let aws: AwsEmulator;
beforeAll(async () => {
  rig = await eksRig();
  aws = rig.cloud;
});
afterAll(() => rig?.close());
beforeEach(() => {
  aws.reset();
  rig.kube.reset();
  aws.seedCluster({ name: 'prod', region: 'us-west-2', issuer: EKS.issuer });
  // The provider exists, so the only write to the role is the trust-policy update.
  aws.seedOidcProvider({ url: EKS.issuer, clientIds: ['sts.amazonaws.com'] });
  rig.kube.seedNamespace('apps');
  aws.seedRole({ name: ROLE, trustPolicy: { Version: '2012-10-17', Statement: [unrelated] } });
});

describe('EKS: a trust-policy write that failed transiently is not resent over a concurrent change', () => {
  for (const [kind, inject, status] of [
    ['throttled', () => aws.faults.failNext('UpdateAssumeRolePolicy', { status: 400, code: 'Throttling', message: 'Rate exceeded' }), 400],
    ['answered 503', () => aws.faults.failNext('UpdateAssumeRolePolicy', { status: 503, code: 'ServiceUnavailable', message: 'Service Unavailable' }), 503],
    // The write went through; only its answer was lost. The other writer then adds to wid's result.
    ['lost on a dropped connection after it was applied', () => aws.faults.dropAnswerNext('UpdateAssumeRolePolicy'), 0],
  ] as const) {
    it(`wid's first UpdateAssumeRolePolicy is ${kind}; another writer adds a statement; both statements survive`, async () => {
      inject();
      let struck = -1;
      aws.onResponse = (rec) => {
        if (rec.action !== 'UpdateAssumeRolePolicy' || struck >= 0) return;
        struck = aws.log.indexOf(rec);
        // The other writer, between wid's failed write and whatever wid sends next.
        const role = aws.getRole(ROLE)!;
        const doc = role.trustPolicy as { Version: string; Statement: Statement[] };
        aws.seedRole({ name: ROLE, trustPolicy: { ...doc, Statement: [...doc.Statement, other] }, tags: role.tags, attachedPolicies: role.attachedPolicies, path: role.path });
      };
      let r;
      try {
        r = await rig.run(['setup', 'eks', '--cluster', 'prod', '--sa', 'app', '-n', 'apps', '--role-name', ROLE, '--yes']);
      } finally {
        aws.onResponse = undefined;
      }
      expect(r.code, tail(r)).toBe(0);
      // The race happened as staged: wid's first write failed the chosen way, and the other writer struck then.
      expect(struck).toBeGreaterThanOrEqual(0);
      expect(aws.log[struck]!.status).toBe(status);

      const statements = (aws.getRole(ROLE)!.trustPolicy as { Statement: Statement[] }).Statement;
      expect(statements[0]).toEqual(unrelated);
      expect(statements.filter((s) => subjectOf(s) === 'system:serviceaccount:apps:other')).toEqual([other]);
      expect(statements.filter((s) => subjectOf(s) === 'system:serviceaccount:apps:app')).toHaveLength(1);
      expect(statements).toHaveLength(3);

      // After the failed write, wid read the trust policy again before any other write to the role.
      const next = aws.log.slice(struck + 1).filter((x) => x.params.RoleName === ROLE).map((x) => x.action);
      expect(next[0]).toBe('GetRole');
      // Every trust-policy document wid sent after the strike kept the other writer's statement.
      for (const sent of aws.log.slice(struck + 1).filter((x) => x.action === 'UpdateAssumeRolePolicy')) {
        expect(sent.params.PolicyDocument).toContain('system:serviceaccount:apps:other');
      }
    });
  }
});
