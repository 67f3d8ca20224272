import { describe, expect, it } from 'vitest';
import { addMember, hasMember, removeMember, rolesOf } from '../../src/providers/gke/policy.js';

const COND = { title: 'weekdays', expression: 'request.time.getDayOfWeek() < 5' };
const base = () => ({
  version: 1,
  etag: 'BwXhqDs1abc=',
  bindings: [
    { role: 'roles/viewer', members: ['user:alice@example.com'] },
    { role: 'roles/iam.workloadIdentityUser', members: ['serviceAccount:p.svc.id.goog[other/sa]'], condition: COND },
  ],
});
const M = 'serviceAccount:p.svc.id.goog[apps/ksa]';

describe('IAM policy edits', () => {
  it('a conditional binding does not count as the unconditional grant', () => {
    expect(hasMember(base(), 'roles/iam.workloadIdentityUser', 'serviceAccount:p.svc.id.goog[other/sa]')).toBe(false);
  });

  it('adds a member in a new unconditional binding, keeps the conditional one and writes version 3', () => {
    const p = addMember(base(), 'roles/iam.workloadIdentityUser', M);
    expect(p.bindings).toEqual([...base().bindings, { role: 'roles/iam.workloadIdentityUser', members: [M] }]);
    expect(p.version).toBe(3);
    expect(p.etag).toBe('BwXhqDs1abc=');
    expect(hasMember(p, 'roles/iam.workloadIdentityUser', M)).toBe(true);
  });

  it('adds to an existing binding of the same role, once', () => {
    const p = addMember(addMember(base(), 'roles/viewer', M), 'roles/viewer', M);
    expect(p.bindings?.[0]).toEqual({ role: 'roles/viewer', members: ['user:alice@example.com', M] });
  });

  it('removes only that member, dropping a binding it empties, never touching conditional ones', () => {
    const added = addMember(addMember(base(), 'roles/viewer', M), 'roles/iam.workloadIdentityUser', M);
    const removed = removeMember(removeMember(added, 'roles/viewer', M), 'roles/iam.workloadIdentityUser', M);
    expect(removed.bindings).toEqual(base().bindings);
    expect(rolesOf(added, M).sort()).toEqual(['roles/iam.workloadIdentityUser', 'roles/viewer']);
  });

  it('does not mutate its input', () => {
    const p = base();
    addMember(p, 'roles/viewer', M);
    expect(p).toEqual(base());
  });
});
