import { describe, expect, it } from 'vitest';
import { boundedName, checkPodName, defaultRoleName, federatedCredentialName, issuerHostPath, subject, uuidV5 } from '../../src/core/naming.js';

describe('naming', () => {
  it('subject is system:serviceaccount:<ns>:<sa>', () => {
    expect(subject('apps', 's3-access-sa')).toBe('system:serviceaccount:apps:s3-access-sa');
  });

  it('default role name is wid-<ns>-<sa> when it fits', () => {
    expect(defaultRoleName('default', 's3-access-sa')).toBe('wid-default-s3-access-sa');
  });

  it('long role names are cut to 64 characters with a hash, still valid and distinct', () => {
    const a = defaultRoleName('a'.repeat(63), 'b'.repeat(100));
    const b = defaultRoleName('a'.repeat(63), 'c'.repeat(100));
    expect(a).toHaveLength(64);
    expect(a).toMatch(/^[\w+=,.@-]{1,64}$/);
    expect(a).not.toBe(b);
    expect(defaultRoleName('a'.repeat(63), 'b'.repeat(100))).toBe(a);
  });

  it('boundedName drops separators before the hash', () => {
    const n = boundedName(['wid', 'x'.repeat(10), '-'.repeat(60)], 30);
    expect(n).toMatch(/^wid-x{10}-[0-9a-f]{8}$/);
  });

  it('issuer host+path keeps the text verbatim without the scheme', () => {
    expect(issuerHostPath('https://oidc.eks.us-west-2.amazonaws.com/id/ABC')).toBe('oidc.eks.us-west-2.amazonaws.com/id/ABC');
    expect(issuerHostPath('https://issuer.example.com/tenant/')).toBe('issuer.example.com/tenant/');
  });

  it('federated credential names match Azure\'s pattern, even for dotted and very long SA names', () => {
    const pattern = /^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/;
    const short = federatedCredentialName('https://x.example/', 'default', 'my.sa');
    expect(short).toMatch(pattern);
    expect(short.startsWith('wid-default-my-sa-')).toBe(true);
    const long = federatedCredentialName('https://x.example/', 'n'.repeat(63), 's'.repeat(253));
    expect(long).toMatch(pattern);
    expect(long.length).toBeLessThanOrEqual(120);
  });

  it('federated credential names differ per issuer (one identity, several clusters)', () => {
    expect(federatedCredentialName('https://a.example/', 'ns', 'sa')).not.toBe(federatedCredentialName('https://b.example/', 'ns', 'sa'));
  });

  it('uuidV5 matches the RFC 4122 example vector', () => {
    // Python: uuid.uuid5(uuid.NAMESPACE_DNS, 'www.example.com')
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('check pod names stay within 253 characters', () => {
    expect(checkPodName('app')).toBe('wid-check-app');
    expect(checkPodName('s'.repeat(253)).length).toBeLessThanOrEqual(253);
  });
});
