/**
 * `wid token inspect`, in-process: a token from a file or stdin, text and JSON, each expectation,
 * signature checks against a JWKS file, an https JWKS URL and OIDC discovery (fetch stubbed: nothing
 * leaves the process), and the exit codes. In every case neither the token nor its signature may
 * appear in stdout or stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EKS_ISSUER, run } from '../helpers/io.js';

const SUBJECT = 'system:serviceaccount:apps:s3-access-sa';
const tmp = mkdtempSync(join(tmpdir(), 'wid-token-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.unstubAllGlobals());

let key: CryptoKey;
let otherKey: CryptoKey;
let jwks: JSONWebKeySet;
let jwksFile: string;
/** Every token a test made; none may ever be printed, nor its signature. */
const made: string[] = [];

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  key = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  jwksFile = join(tmp, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify(jwks));
});

const now = (): number => Math.floor(Date.now() / 1000);

async function token(extra: JWTPayload = {}, signWith?: CryptoKey): Promise<string> {
  const t = now();
  const jwt = await new SignJWT({
    iss: EKS_ISSUER,
    sub: SUBJECT,
    aud: ['sts.amazonaws.com'],
    iat: t - 60,
    nbf: t - 60,
    exp: t + 3540,
    'kubernetes.io': { namespace: 'apps', serviceaccount: { name: 's3-access-sa', uid: 'sa-uid-1' }, pod: { name: 'web-0', uid: 'pod-uid-1' } },
    ...extra,
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(signWith ?? key);
  made.push(jwt);
  return jwt;
}

function file(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

/** Runs wid and asserts that no token made so far, nor any signature, shows in its output. */
async function inspect(args: string[], opts: Parameters<typeof run>[1] = {}) {
  const r = await run(['token', 'inspect', ...args], opts);
  for (const t of made) {
    const signature = t.split('.')[2]!;
    for (const [stream, text] of [['stdout', r.stdout], ['stderr', r.stderr]] as const) {
      expect(text, `${stream} shows a token`).not.toContain(t);
      expect(text, `${stream} shows a signature`).not.toContain(signature);
    }
  }
  return r;
}

/** A fetch that answers from a table of URL → JSON body, and records what was asked. */
function stubFetch(routes: Record<string, unknown>): string[] {
  const asked: string[] = [];
  vi.stubGlobal('fetch', async (url: string | URL) => {
    const u = String(url);
    asked.push(u);
    if (!(u in routes)) return new Response('not found', { status: 404, statusText: 'Not Found' });
    const body = routes[u];
    if (body instanceof Error) throw body;
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  });
  return asked;
}

describe('wid token inspect: reading and showing', () => {
  it('shows header, claims, the kubernetes.io block and the time left, from a file', async () => {
    const r = await inspect([file('t1', `${await token()}\n`)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Header\n {2}alg {2}RS256\n {2}kid {2}k1\nClaims\n/);
    expect(r.stdout).toContain(`  iss  ${EKS_ISSUER}\n`);
    expect(r.stdout).toContain(`  sub  ${SUBJECT}\n`);
    expect(r.stdout).toContain('  aud  sts.amazonaws.com\n');
    expect(r.stdout).toMatch(/ {2}exp {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}\(\d+\)\n/);
    expect(r.stdout).toContain('  kubernetes.io\n    namespace       apps\n    serviceaccount  s3-access-sa  uid sa-uid-1\n    pod             web-0  uid pod-uid-1\n');
    expect(r.stdout).toMatch(/\nIssued {3}\S+Z \((59|60)s ago|1m ago\)/);
    expect(r.stdout).toMatch(/\nExpires {2}\S+Z \((58m \d+s|59m) left\)\n/);
    expect(r.stdout).toMatch(/Checks\n {2}✓ pass {2}expiry {6}expires at \S+ \(.* left\)\n {2}✓ pass {2}not-before {2}valid since/);
    expect(r.stderr).toBe('All 2 checks passed.\n');
  });

  it('reads stdin when no FILE is given, and with -', async () => {
    const t = await token();
    for (const args of [[], ['-']]) {
      const r = await inspect(args, { stdin: `${t}\n` });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`sub  ${SUBJECT}`);
    }
  });

  it('gives the same as data with -o json', async () => {
    const r = await inspect([file('t2', await token()), '-o', 'json', '--audience', 'sts.amazonaws.com']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(['apiVersion', 'kind', 'header', 'claims', 'issuedAt', 'expiresAt', 'expiresIn', 'checks']);
    expect(j).toMatchObject({ apiVersion: 'wid/v1', kind: 'TokenInspection', header: { alg: 'RS256', kid: 'k1' } });
    expect(j.claims).toMatchObject({ iss: EKS_ISSUER, sub: SUBJECT, aud: ['sts.amazonaws.com'], 'kubernetes.io': { namespace: 'apps' } });
    expect(j.issuedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(j.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(j.expiresIn).toBeGreaterThan(3500);
    expect(j.expiresIn).toBeLessThanOrEqual(3540);
    expect(j.checks.map((c: { name: string; status: string }) => `${c.name}:${c.status}`)).toEqual(['expiry:pass', 'not-before:pass', 'audience:pass']);
    expect(Object.keys(j.checks[2])).toEqual(['name', 'status', 'expected', 'found', 'message']);
    expect(j.checks[2]).toEqual({ name: 'audience', status: 'pass', expected: 'sts.amazonaws.com', found: ['sts.amazonaws.com'], message: 'audience includes sts.amazonaws.com' });
    expect(r.stderr).toBe('All 3 checks passed.\n');
  });

  it('escapes control characters from claims in text', async () => {
    const r = await inspect([file('t3', await token({ sub: 'evil\u001b[2Jsub' }))]);
    expect(r.stdout).toContain('sub  evil\\u001b[2Jsub');
    expect(r.stdout).not.toContain('\u001b');
  });
});

describe('wid token inspect: expectations (exit 3 when one fails)', () => {
  /** [case, claims, flags, failing checks, text stdout must contain] */
  const cases: [string, JWTPayload, string[], string, RegExp][] = [
    ['expired', { exp: now() - 180, iat: now() - 3780, nbf: now() - 3780 }, [], 'expiry', /Expires {2}\S+ \(expired 3m( \d+s)? ago\)/],
    ['wrong audience', {}, ['--audience', 'api://AzureADTokenExchange'], 'audience', /✗ fail {2}audience +audience is "sts.amazonaws.com", expected "api:\/\/AzureADTokenExchange"/],
    ['wrong subject', {}, ['--subject', 'system:serviceaccount:default:s3-access-sa'], 'subject', /namespace "apps" \(expected "default"\)/],
    ['issuer with a trailing slash the trust lacks', { iss: `${EKS_ISSUER}/` }, ['--issuer', EKS_ISSUER], 'issuer', /differs only by a trailing slash/],
    ['wrong issuer', {}, ['--issuer', 'https://issuer.example.com'], 'issuer', /issuer is "https:\/\/oidc.eks/],
    ['no exp (legacy token)', { exp: undefined }, [], 'expiry', /Expires {2}never \(no exp claim\)[\s\S]*wid audit/],
  ];
  for (const [name, claims, flags, failing, text] of cases) {
    it(name, async () => {
      const r = await inspect([file(`e-${failing}`, await token(claims)), ...flags]);
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(text);
      expect(r.stderr).toMatch(new RegExp(`^✗ 1 of \\d checks failed: ${failing}\\.\\n$`));
    });
  }

  it('lists every failing check, in JSON too', async () => {
    const r = await inspect([file('multi', await token({ exp: now() - 10 })), '--audience', 'x', '-o', 'json']);
    expect(r.code).toBe(3);
    const j = JSON.parse(r.stdout);
    expect(j.expiresIn).toBeLessThan(0);
    expect(j.checks.filter((c: { status: string }) => c.status === 'fail').map((c: { name: string }) => c.name)).toEqual(['expiry', 'audience']);
    expect(r.stderr).toBe('✗ 2 of 3 checks failed: expiry, audience.\n');
  });
});

describe('wid token inspect --verify', () => {
  it('passes with the right key from a JWKS file', async () => {
    const r = await inspect([file('v1', await token()), '--jwks', jwksFile]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`✓ pass  signature   signature verified with key k1 from ${jwksFile}`);
  });

  it('fails (exit 3) with a token signed by another key', async () => {
    const r = await inspect([file('v2', await token({}, otherKey)), '--verify', '--jwks', jwksFile, '-o', 'json']);
    expect(r.code).toBe(3);
    const sig = JSON.parse(r.stdout).checks.find((c: { name: string }) => c.name === 'signature');
    expect(sig).toMatchObject({ status: 'fail', expected: `signed by a key in ${jwksFile}`, found: 'kid k1, alg RS256' });
    expect(sig.message).toMatch(/does not match key k1/);
  });

  it('fetches an https JWKS URL', async () => {
    const asked = stubFetch({ 'https://keys.example.com/jwks': jwks });
    const r = await inspect([file('v3', await token()), '--jwks', 'https://keys.example.com/jwks']);
    expect(r.code).toBe(0);
    expect(asked).toEqual(['https://keys.example.com/jwks']);
  });

  it('discovers the keys from the issuer, without its trailing slash', async () => {
    const iss = 'https://issuer.example.com/cluster/';
    const asked = stubFetch({
      'https://issuer.example.com/cluster/.well-known/openid-configuration': { issuer: iss, jwks_uri: 'https://issuer.example.com/cluster/openid/v1/jwks' },
      'https://issuer.example.com/cluster/openid/v1/jwks': jwks,
    });
    const r = await inspect([file('v4', await token({ iss })), '--verify', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(asked).toEqual(['https://issuer.example.com/cluster/.well-known/openid-configuration', 'https://issuer.example.com/cluster/openid/v1/jwks']);
    expect(JSON.parse(r.stdout).checks.at(-1)).toMatchObject({ name: 'signature', status: 'pass' });
  });

  it('uses --issuer, not the unverified iss, for discovery', async () => {
    const asked = stubFetch({});
    const r = await inspect([file('v5', await token({ iss: 'https://attacker.example.com' })), '--verify', '--issuer', EKS_ISSUER]);
    expect(asked).toEqual([`${EKS_ISSUER}/.well-known/openid-configuration`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/answered HTTP 404/);
  });

  it('refuses a discovery document whose jwks_uri is not https (exit 1)', async () => {
    stubFetch({ [`${EKS_ISSUER}/.well-known/openid-configuration`]: { issuer: EKS_ISSUER, jwks_uri: 'http://insecure.example.com/keys' } });
    const r = await inspect([file('v6', await token()), '--verify']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/jwks_uri that is not https/);
  });

  it('is a run-time failure (exit 1) when the network fails', async () => {
    stubFetch({ 'https://keys.example.com/jwks': Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('getaddrinfo ENOTFOUND keys.example.com'), { code: 'ENOTFOUND' }) }) });
    const r = await inspect([file('v7', await token()), '--jwks', 'https://keys.example.com/jwks']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: cannot fetch the JWKS from https:\/\/keys.example.com\/jwks: ENOTFOUND/);
    expect(r.stderr).toMatch(/hint: .*--jwks FILE/);
    expect(r.stdout).toBe('');
  });

  it('cannot discover keys for a token whose iss is not an https URL (exit 2)', async () => {
    const asked = stubFetch({});
    const r = await inspect([file('v8', await token({ iss: 'kubernetes/serviceaccount' })), '--verify']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the token's iss "kubernetes\/serviceaccount" is invalid: not a URL.*pass --jwks/);
    expect(asked).toEqual([]);
  });
});

describe('wid token inspect: bad input (exit 2, names the input and the rule, never echoes it)', () => {
  const secretish = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQifQ';
  /** [case, args, stdin, text stderr must match] */
  const cases: [string, () => string[], string | undefined, RegExp][] = [
    ['a missing file', () => [join(tmp, 'nope')], undefined, /FILE ".*nope" cannot be read: no such file/],
    ['a directory', () => [tmp], undefined, /FILE ".*" is invalid: it is a directory/],
    ['a file that is not a JWT', () => [file('notjwt', `${secretish}\n`)], undefined, /FILE ".*notjwt" is invalid: not a JWT: it has 2 parts; a JWT is three base64url parts/],
    ['an empty file', () => [file('empty', '')], undefined, /not a JWT: it is empty/],
    ['stdin that is not a JWT', () => ['-'], `${secretish}.!!`, /the token on stdin is invalid: not a JWT: the signature part is not base64url/],
    ['--output yaml', () => [file('t-o', 'x'), '-o', 'yaml'], undefined, /--output "yaml" is invalid: expected one of text, json/],
    ['an http --issuer', () => [file('t-i', 'x'), '--issuer', 'http://x.example'], undefined, /--issuer "http:\/\/x.example" is invalid: an issuer URL must use https:\/\//],
    ['a bad --subject', () => [file('t-s', 'x'), '--subject', 'system:serviceaccount:Apps:sa'], undefined, /--subject ".*" is invalid: the namespace "Apps" is not a DNS-1123 label/],
    ['an empty --audience', () => [file('t-a', 'x'), '--audience', ''], undefined, /--audience "" is invalid/],
    ['an http --jwks', () => [file('t-j', 'x'), '--jwks', 'http://keys.example.com'], undefined, /--jwks "http:\/\/keys.example.com" is invalid: a JWKS URL must use https:\/\//],
    ['a missing --jwks file', () => [file('t-jm', 'x'), '--jwks', join(tmp, 'nokeys.json')], undefined, /--jwks ".*nokeys.json" cannot be read: no such file/],
    ['a --jwks file that is not JSON', () => [file('t-jn', 'x'), '--jwks', file('keys.txt', 'keys')], undefined, /--jwks ".*keys.txt" is invalid: not JSON/],
    ['a --jwks file without keys', () => [file('t-jk', 'x'), '--jwks', file('nokeys.json', '{"keys":[]}')], undefined, /--jwks ".*" is invalid: the "keys" list is empty/],
  ];
  for (const [name, args, stdin, message] of cases) {
    it(name, async () => {
      let a = args();
      // The --jwks cases need a real token, so that reading the keys is what fails.
      if (name.startsWith('a missing --jwks') || name.startsWith('a --jwks')) a = [file('real', await token()), ...a.slice(1)];
      const r = await inspect(a, stdin === undefined ? {} : { stdin });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(secretish);
      expect(r.stdout).toBe('');
    });
  }

  it('asks for a FILE rather than wait on a terminal', async () => {
    const r = await inspect([], { tty: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no token given: pass a FILE, or pipe the token on stdin/);
  });
});
