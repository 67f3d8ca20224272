/**
 * src/core/jwt.ts: decoding never exposes the signature, time left reads as a person reads it, each
 * expectation fails with a message that names the difference, and signatures verify only with the
 * right key. Tokens are real, signed with jose and a generated RSA key.
 */
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  audiences,
  checkClaims,
  decodeJwt,
  describeTimeLeft,
  formatDuration,
  InvalidJwksError,
  InvalidJwtError,
  kubernetesClaims,
  numericDate,
  parseJwks,
  secondsLeft,
  verifySignature,
  type Expectations,
  type TokenCheck,
} from '../../src/core/jwt.js';

const ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE';
const AKS_ISSUER = 'https://westeurope.oic.prod-aks.azure.com/t/i/';
const SUBJECT = 'system:serviceaccount:apps:s3-access-sa';
const NOW = new Date('2025-06-01T12:00:00Z');
const T = NOW.getTime() / 1000;

let key: CryptoKey;
let jwks: JSONWebKeySet;
let otherKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  key = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  otherKey = (await generateKeyPair('RS256')).privateKey;
});

const K8S = {
  namespace: 'apps',
  serviceaccount: { name: 's3-access-sa', uid: 'sa-uid' },
  pod: { name: 'web-0', uid: 'pod-uid' },
  node: { name: 'ip-10-0-0-1', uid: 'node-uid' },
  warnafter: T + 3000,
};

async function sign(claims: JWTPayload, opts: { kid?: string; with?: CryptoKey } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: opts.kid ?? 'k1' }).sign(opts.with ?? key);
}

const valid = (extra: JWTPayload = {}): JWTPayload => ({
  iss: ISSUER,
  sub: SUBJECT,
  aud: ['sts.amazonaws.com'],
  iat: T - 600,
  nbf: T - 600,
  exp: T + 3000,
  'kubernetes.io': K8S,
  ...extra,
});

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('decodeJwt', () => {
  it('gives the header and claims, and nothing of the signature', async () => {
    const token = await sign(valid());
    const signature = token.split('.')[2]!;
    const d = decodeJwt(`${token}\n`);
    expect(d.header).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'k1' });
    expect(d.claims.sub).toBe(SUBJECT);
    expect(d.signed).toBe(true);
    const dumped = JSON.stringify(d);
    expect(dumped).not.toContain(signature);
    expect(dumped).not.toContain(token);
    expect(Object.keys(d).sort()).toEqual(['claims', 'header', 'signed']);
  });

  it('marks an unsecured token as unsigned', () => {
    expect(decodeJwt(`${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`).signed).toBe(false);
  });

  /** [case, input, the rule the error must state] */
  const malformed: [string, () => string, RegExp][] = [
    ['empty', () => '  \n', /empty/],
    ['one part', () => 'abc', /1 part; a JWT is three/],
    ['two parts', () => 'abc.def', /2 parts/],
    ['JWE', () => 'a.b.c.d.e', /encrypted token \(JWE\)/],
    ['whitespace inside', () => 'ab c.d.e', /whitespace/],
    ['header not base64url', () => 'a+b.c.d', /header part is not base64url/],
    ['header not JSON', () => `${Buffer.from('not json').toString('base64url')}.${b64({})}.c`, /header part does not decode to JSON/],
    ['header an array', () => `${b64([1])}.${b64({})}.c`, /header part does not decode to a JSON object/],
    ['header without alg', () => `${b64({ typ: 'JWT' })}.${b64({})}.c`, /no "alg"/],
    ['claims not JSON', () => `${b64({ alg: 'RS256' })}.${Buffer.from('{x').toString('base64url')}.c`, /claims part does not decode to JSON/],
    ['empty claims part', () => `${b64({ alg: 'RS256' })}..c`, /claims part is empty/],
    ['signature not base64url', () => `${b64({ alg: 'RS256' })}.${b64({})}.c=d`, /signature part is not base64url/],
    ['too long', () => `${b64({ alg: 'RS256' })}.${'a'.repeat(70_000)}.c`, /longer than 64 KiB/],
  ];
  for (const [name, input, rule] of malformed) {
    it(`rejects ${name}, without quoting the input`, () => {
      const text = input();
      try {
        decodeJwt(text);
        expect.unreachable('decoded');
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidJwtError);
        expect((e as InvalidJwtError).rule).toMatch(rule);
        // The first part of the input must not show up in the message (it could be a real credential).
        const first = text.trim().split('.')[0] ?? '';
        if (first.length > 3) expect((e as Error).message).not.toContain(first);
      }
    });
  }
});

describe('time', () => {
  const durations: [number, string][] = [
    [0, '0s'],
    [45, '45s'],
    [60, '1m'],
    [180, '3m'],
    [200, '3m 20s'],
    [3600, '1h'],
    [3725, '1h 2m'],
    [86400 + 7200 + 5, '1d 2h'],
    [-200, '3m 20s'],
  ];
  for (const [s, text] of durations) it(`formatDuration(${s}) is ${text}`, () => expect(formatDuration(s)).toBe(text));

  it('says the time left, or how long ago it expired', () => {
    expect(describeTimeLeft(secondsLeft({ exp: T + 2832 }, NOW))).toBe('47m 12s left');
    expect(describeTimeLeft(secondsLeft({ exp: T - 180 }, NOW))).toBe('expired 3m ago');
    expect(describeTimeLeft(secondsLeft({}, NOW))).toBeNull();
  });

  it('turns NumericDates into ISO times', () => {
    expect(numericDate(T)).toBe('2025-06-01T12:00:00Z');
    expect(numericDate('1748779200')).toBeNull();
    expect(numericDate(undefined)).toBeNull();
  });
});

describe('kubernetes.io claims and audiences', () => {
  it('reads the namespace, ServiceAccount, pod and node', () => {
    expect(kubernetesClaims(valid())).toEqual({
      namespace: 'apps',
      serviceAccount: { name: 's3-access-sa', uid: 'sa-uid' },
      pod: { name: 'web-0', uid: 'pod-uid' },
      node: { name: 'ip-10-0-0-1', uid: 'node-uid' },
      warnAfter: T + 3000,
    });
    expect(kubernetesClaims({ sub: 'x' })).toBeUndefined();
  });

  it('takes aud as a string or a list', () => {
    expect(audiences({ aud: 'a' })).toEqual(['a']);
    expect(audiences({ aud: ['a', 'b', 3] })).toEqual(['a', 'b']);
    expect(audiences({})).toEqual([]);
  });
});

describe('checkClaims', () => {
  const summary = (checks: TokenCheck[]): string[] => checks.map((c) => `${c.name}:${c.status}`);

  /** [case, claims, expectations, checks by name:status, text one failing message must contain] */
  const cases: [string, JWTPayload, Expectations, string[], RegExp?][] = [
    ['valid, nothing expected', valid(), {}, ['expiry:pass', 'not-before:pass']],
    [
      'valid, everything expected',
      valid(),
      { issuer: ISSUER, subject: SUBJECT, audience: 'sts.amazonaws.com' },
      ['expiry:pass', 'not-before:pass', 'issuer:pass', 'subject:pass', 'audience:pass'],
    ],
    ['expired', valid({ exp: T - 180 }), {}, ['expiry:fail', 'not-before:pass'], /expired at 2025-06-01T11:57:00Z \(3m ago\)/],
    ['expires exactly now', valid({ exp: T }), {}, ['expiry:fail', 'not-before:pass']],
    ['no exp: a legacy token', { iss: 'kubernetes/serviceaccount', sub: SUBJECT }, {}, ['expiry:fail'], /no exp claim.*wid audit/],
    ['not yet valid', valid({ nbf: T + 120 }), {}, ['expiry:pass', 'not-before:fail'], /not valid until/],
    ['wrong audience', valid(), { audience: 'api://AzureADTokenExchange' }, ['expiry:pass', 'not-before:pass', 'audience:fail'], /audience is "sts.amazonaws.com", expected "api:\/\/AzureADTokenExchange"/],
    ['audience off by a slash', valid({ aud: 'https://example.com/' }), { audience: 'https://example.com' }, ['expiry:pass', 'not-before:pass', 'audience:fail'], /only by a trailing slash/],
    ['no audience', valid({ aud: undefined }), { audience: 'sts.amazonaws.com' }, ['expiry:pass', 'not-before:pass', 'audience:fail'], /no aud claim/],
    ['wrong namespace', valid(), { subject: 'system:serviceaccount:default:s3-access-sa' }, ['expiry:pass', 'not-before:pass', 'subject:fail'], /namespace "apps" \(expected "default"\)/],
    ['wrong ServiceAccount', valid(), { subject: 'system:serviceaccount:apps:other' }, ['expiry:pass', 'not-before:pass', 'subject:fail'], /ServiceAccount "s3-access-sa" \(expected "other"\)/],
    ['other subject', valid({ sub: 'user@example.com' }), { subject: SUBJECT }, ['expiry:pass', 'not-before:pass', 'subject:fail'], /subject is "user@example.com"/],
    ['wrong issuer', valid(), { issuer: 'https://issuer.example.com' }, ['expiry:pass', 'not-before:pass', 'issuer:fail'], /issuer is "https:\/\/oidc/],
    ['issuer lacks the trailing slash the trust has', valid({ iss: AKS_ISSUER.slice(0, -1) }), { issuer: AKS_ISSUER }, ['expiry:pass', 'not-before:pass', 'issuer:fail'], /differs only by a trailing slash.*byte for byte/],
    ['issuer has a trailing slash the trust lacks', valid({ iss: `${ISSUER}/` }), { issuer: ISSUER }, ['expiry:pass', 'not-before:pass', 'issuer:fail'], /differs only by a trailing slash/],
    ['no issuer', valid({ iss: undefined }), { issuer: ISSUER }, ['expiry:pass', 'not-before:pass', 'issuer:fail'], /no iss claim/],
  ];
  for (const [name, claims, expect_, want, message] of cases) {
    it(name, () => {
      const checks = checkClaims(JSON.parse(JSON.stringify(claims)), expect_, NOW);
      expect(summary(checks)).toEqual(want);
      if (message) expect(checks.filter((c) => c.status === 'fail').map((c) => c.message).join('\n')).toMatch(message);
    });
  }

  it('records expected and found for each check', () => {
    const [expiry, , audience] = checkClaims(valid(), { audience: 'x' }, NOW);
    expect(expiry).toMatchObject({ expected: 'exp after 2025-06-01T12:00:00Z', found: '2025-06-01T12:50:00Z' });
    expect(audience).toMatchObject({ name: 'audience', status: 'fail', expected: 'x', found: ['sts.amazonaws.com'] });
  });
});

describe('parseJwks', () => {
  const bad: [string, unknown, RegExp][] = [
    ['an array', [], /JSON object with a "keys" list/],
    ['no keys', {}, /"keys" list/],
    ['empty keys', { keys: [] }, /empty/],
    ['a key without kty', { keys: [{ n: 'x' }] }, /"kty"/],
  ];
  for (const [name, value, rule] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => parseJwks(value)).toThrow(InvalidJwksError);
      expect(() => parseJwks(value)).toThrow(rule);
    });
  }
  it('accepts a key set', () => expect(parseJwks(jwks)).toBe(jwks));
});

describe('verifySignature', () => {
  /** [case, token maker, status, text the message must contain] */
  const cases: [string, () => Promise<string>, 'pass' | 'fail', RegExp][] = [
    ['the right key', () => sign(valid()), 'pass', /verified with key k1 from jwks.json/],
    ['an expired token signed by the right key (the signature alone is checked)', () => sign(valid({ exp: T - 60 })), 'pass', /verified/],
    ['another key under the same kid', () => sign(valid(), { with: otherKey }), 'fail', /does not match key k1/],
    ['a kid the set does not have', () => sign(valid(), { kid: 'k2', with: otherKey }), 'fail', /no key in jwks.json matches the token \(kid k2, alg RS256\)/],
    ['alg none', async () => `${b64({ alg: 'none' })}.${b64(valid())}.`, 'fail', /not signed/],
    ['HS256', async () => new SignJWT(valid()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32)), 'fail', /not an asymmetric/],
  ];
  for (const [name, make, status, message] of cases) {
    it(name, async () => {
      const token = await make();
      const check = await verifySignature(decodeJwt(token), jwks, 'jwks.json');
      expect(check.status).toBe(status);
      expect(check.message).toMatch(message);
      const signature = token.split('.')[2];
      if (signature) expect(JSON.stringify(check)).not.toContain(signature);
    });
  }

  it('refuses a value that decodeJwt did not make', async () => {
    const check = await verifySignature({ header: { alg: 'RS256' }, claims: {}, signed: true }, jwks, 'jwks.json');
    expect(check.status).toBe('fail');
  });
});
