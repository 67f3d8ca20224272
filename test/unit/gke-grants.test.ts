import { describe, expect, it } from 'vitest';
import { GRANTS_ANNOTATION, formatGrants, mergeGrants, parseGrants, recorded } from '../../src/providers/gke/grants.js';

const a = { resource: 'projects/p', role: 'roles/viewer', member: 'serviceAccount:g@p.iam.gserviceaccount.com' };
const b = { resource: 'projects/p/serviceAccounts/g@p.iam.gserviceaccount.com', role: 'roles/iam.workloadIdentityUser', member: 'serviceAccount:p.svc.id.goog[apps/x]' };

describe('the wid/gcp-grants record', () => {
  it('merges without duplicates, in a stable order whatever the input order', () => {
    expect(mergeGrants([b, a], [a])).toEqual([a, b]);
    expect(formatGrants([b, a, b])).toBe(formatGrants([a, b]));
  });

  it('round-trips through the annotation and ignores unknown keys', () => {
    const annotations = { [GRANTS_ANNOTATION]: formatGrants([a, b]) };
    expect(parseGrants(annotations)).toEqual([a, b]);
    expect(parseGrants({ [GRANTS_ANNOTATION]: JSON.stringify([{ ...a, note: 'x' }]) })).toEqual([a]);
  });

  it('tells a missing record from an unreadable one', () => {
    expect(parseGrants(undefined)).toBeUndefined();
    expect(parseGrants({ other: '1' })).toBeUndefined();
    expect(parseGrants({ [GRANTS_ANNOTATION]: 'roles/viewer' })).toBe('unreadable');
    expect(parseGrants({ [GRANTS_ANNOTATION]: '[{"resource":"projects/p","role":"roles/viewer"}]' })).toBe('unreadable');
    expect(parseGrants({ [GRANTS_ANNOTATION]: '{}' })).toBe('unreadable');
  });

  it('finds a grant only by its exact resource, role and member', () => {
    expect(recorded([a], { ...a })).toBe(true);
    expect(recorded([a], { ...a, member: 'serviceAccount:other@p.iam.gserviceaccount.com' })).toBe(false);
    expect(recorded([a], { ...a, resource: 'projects/q' })).toBe(false);
  });
});
