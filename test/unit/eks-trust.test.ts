import { describe, expect, it } from 'vitest';
import { addStatement, evaluateTrust, grants, policySize, removeStatement, statementGrants, trustsProvider } from '../../src/providers/eks/trust.js';

const P = 'arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC';
const H = 'oidc.eks.us-west-2.amazonaws.com/id/ABC';
const SUB = 'system:serviceaccount:default:app';

const stmt = (cond: Record<string, Record<string, unknown>>, over: Record<string, unknown> = {}) => ({
  Effect: 'Allow',
  Principal: { Federated: P },
  Action: 'sts:AssumeRoleWithWebIdentity',
  Condition: cond,
  ...over,
});

describe('statementGrants', () => {
  it('matches StringEquals on sub and aud', () => {
    expect(statementGrants(stmt({ StringEquals: { [`${H}:sub`]: SUB, [`${H}:aud`]: 'sts.amazonaws.com' } }), P, H, SUB, 'sts.amazonaws.com')).toBe(true);
  });
  it('rejects another subject, audience, provider, effect or action', () => {
    const s = stmt({ StringEquals: { [`${H}:sub`]: SUB, [`${H}:aud`]: 'sts.amazonaws.com' } });
    expect(statementGrants(s, P, H, 'system:serviceaccount:default:other', 'sts.amazonaws.com')).toBe(false);
    expect(statementGrants(s, P, H, SUB, 'other')).toBe(false);
    expect(statementGrants(s, `${P}X`, H, SUB, 'sts.amazonaws.com')).toBe(false);
    expect(statementGrants({ ...s, Effect: 'Deny' }, P, H, SUB, 'sts.amazonaws.com')).toBe(false);
    expect(statementGrants({ ...s, Action: 'sts:AssumeRole' }, P, H, SUB, 'sts.amazonaws.com')).toBe(false);
  });
  it('honours value lists, StringLike wildcards and absent conditions', () => {
    expect(statementGrants(stmt({ StringEquals: { [`${H}:sub`]: ['x', SUB] } }), P, H, SUB, 'any')).toBe(true);
    expect(statementGrants(stmt({ StringLike: { [`${H}:sub`]: 'system:serviceaccount:default:*' } }), P, H, SUB, 'a')).toBe(true);
    expect(statementGrants(stmt({ StringLike: { [`${H}:sub`]: 'system:serviceaccount:prod:*' } }), P, H, SUB, 'a')).toBe(false);
    expect(statementGrants(stmt({}), P, H, SUB, 'a')).toBe(true);
  });
});

describe('addStatement and removeSubject', () => {
  const other = { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' };
  const ours = stmt({ StringEquals: { [`${H}:aud`]: 'sts.amazonaws.com', [`${H}:sub`]: SUB } });

  it('adds without touching other statements, and a single-object Statement becomes a list', () => {
    const doc = { Version: '2012-10-17', Statement: other };
    const merged = addStatement(doc, ours);
    expect(merged.Statement).toEqual([other, ours]);
    expect(grants(merged, P, H, SUB, 'sts.amazonaws.com')).toBe(true);
  });

  it('removes our statement (whatever its key order) and keeps the rest', () => {
    const doc = { Version: '2012-10-17', Statement: [other, ours] };
    expect(removeStatement(doc, ours)).toEqual({ Version: '2012-10-17', Statement: [other] });
    const reordered = { Condition: ours.Condition, Principal: ours.Principal, Effect: 'Allow', Action: 'sts:AssumeRoleWithWebIdentity' };
    expect(removeStatement({ Statement: [reordered, other] }, ours)).toEqual({ Statement: [other] });
  });

  it('leaves statements wid did not write alone: a shared subject list, a wildcard, another provider', () => {
    const shared = stmt({ StringEquals: { [`${H}:aud`]: 'sts.amazonaws.com', [`${H}:sub`]: [SUB, 'system:serviceaccount:default:b'] } });
    const wild = stmt({ StringLike: { [`${H}:sub`]: 'system:serviceaccount:default:*' } });
    const elsewhere = stmt({ StringEquals: { [`${H}:sub`]: SUB } }, { Principal: { Federated: `${P}-other` } });
    const doc = { Statement: [shared, wild, elsewhere] };
    expect(removeStatement(doc, ours)).toBe(doc);
  });

  it('counts size without whitespace, and sees which provider a policy trusts', () => {
    expect(policySize({ Statement: [ours] })).toBe(JSON.stringify({ Statement: [ours] }).length);
    expect(trustsProvider({ Statement: [ours] }, P)).toBe(true);
    expect(trustsProvider({ Statement: [other] }, P)).toBe(false);
  });
});

describe('evaluateTrust (how IAM judges AssumeRoleWithWebIdentity)', () => {
  const claims = { sub: SUB, aud: ['sts.amazonaws.com'] };
  const doc = (cond: Record<string, Record<string, unknown>>) => ({ Statement: [stmt(cond)] });

  it('allows the statement wid writes', () => {
    expect(evaluateTrust(doc({ StringEquals: { [`${H}:sub`]: SUB, [`${H}:aud`]: 'sts.amazonaws.com' } }), P, H, claims)).toEqual({ allowed: true, statementsForProvider: 1, failures: [] });
  });

  it('names the condition that fails, with what it wants and what the token has', () => {
    const v = evaluateTrust(doc({ StringEquals: { [`${H}:sub`]: 'system:serviceaccount:prod:app' } }), P, H, claims);
    expect(v.allowed).toBe(false);
    expect(v.failures).toEqual([`StringEquals ${H}:sub: wants "system:serviceaccount:prod:app", the token has "${SUB}"`]);
  });

  it('handles StringLike, ForAnyValue and ForAllValues, and IfExists', () => {
    expect(evaluateTrust(doc({ StringLike: { [`${H}:sub`]: 'system:serviceaccount:default:*' } }), P, H, claims).allowed).toBe(true);
    expect(evaluateTrust(doc({ 'ForAnyValue:StringEquals': { [`${H}:aud`]: ['x', 'sts.amazonaws.com'] } }), P, H, claims).allowed).toBe(true);
    expect(evaluateTrust(doc({ 'ForAllValues:StringEquals': { [`${H}:aud`]: ['x'] } }), P, H, { sub: SUB, aud: ['sts.amazonaws.com', 'x'] }).allowed).toBe(false);
    expect(evaluateTrust(doc({ StringEqualsIfExists: { [`${H}:amr`]: 'authenticated' } }), P, H, claims).allowed).toBe(true);
    expect(evaluateTrust(doc({ StringEquals: { [`${H}:amr`]: 'authenticated' } }), P, H, claims).failures[0]).toContain('no such claim');
  });

  it('counts only statements for this provider', () => {
    const v = evaluateTrust({ Statement: [stmt({}, { Principal: { Federated: `${P}-other` } })] }, P, H, claims);
    expect(v).toEqual({ allowed: false, statementsForProvider: 0, failures: [] });
  });
});
