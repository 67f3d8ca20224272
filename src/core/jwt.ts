/**
 * Pure helpers for inspecting a projected ServiceAccount token: decode its header and claims, say
 * how long it has left, and compare it with what a cloud expects.
 *
 * A token is a bearer credential: whoever holds the whole string can use it until it expires. The
 * decoded value therefore carries the header and claims only. The compact form (and with it the
 * signature) stays in a module-private WeakMap, reachable only by `verifySignature`, so no renderer,
 * JSON.stringify or error message can print it by accident; error texts here never quote the input.
 */
import type { JSONWebKeySet } from 'jose';

export interface JwtHeader {
  alg?: string;
  kid?: string;
  typ?: string;
  [name: string]: unknown;
}

export interface JwtClaims {
  iss?: unknown;
  sub?: unknown;
  aud?: unknown;
  exp?: unknown;
  iat?: unknown;
  nbf?: unknown;
  [name: string]: unknown;
}

export interface DecodedJwt {
  header: JwtHeader;
  claims: JwtClaims;
  /** False for an unsecured token (`alg: none`, or nothing after the second "."). */
  signed: boolean;
}

/** The input is not a JWS compact token. `rule` says why, without quoting the input. */
export class InvalidJwtError extends Error {
  readonly rule: string;

  constructor(rule: string) {
    super(rule);
    this.name = 'InvalidJwtError';
    this.rule = rule;
  }
}

/** The value is not a JSON Web Key Set. */
export class InvalidJwksError extends Error {
  readonly rule: string;

  constructor(rule: string) {
    super(rule);
    this.name = 'InvalidJwksError';
    this.rule = rule;
  }
}

const compact = new WeakMap<DecodedJwt, string>();

/** Kubernetes tokens are a few KiB; anything far larger is not one, and is not worth decoding. */
export const MAX_TOKEN_BYTES = 64 * 1024;

const B64URL = /^[A-Za-z0-9_-]*$/;

function part(text: string, which: string): Record<string, unknown> {
  if (text === '') throw new InvalidJwtError(`the ${which} part is empty`);
  if (!B64URL.test(text)) throw new InvalidJwtError(`the ${which} part is not base64url (only A-Z, a-z, 0-9, "-" and "_")`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidJwtError(`the ${which} part does not decode to JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidJwtError(`the ${which} part does not decode to a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Decodes a JWS compact token (surrounding whitespace, such as a file's final newline, is ignored).
 * Nothing is verified here; see `verifySignature`.
 */
export function decodeJwt(text: string): DecodedJwt {
  const token = text.trim();
  if (token === '') throw new InvalidJwtError('it is empty');
  if (token.length > MAX_TOKEN_BYTES) throw new InvalidJwtError(`it is longer than ${MAX_TOKEN_BYTES / 1024} KiB; a ServiceAccount token is a few KiB`);
  if (/\s/.test(token)) throw new InvalidJwtError('it contains whitespace; a JWT is one line of base64url parts separated by "."');
  const parts = token.split('.');
  if (parts.length === 5) throw new InvalidJwtError('it has five parts: an encrypted token (JWE), not a signed one (JWS)');
  if (parts.length !== 3) throw new InvalidJwtError(`it has ${parts.length} part${parts.length === 1 ? '' : 's'}; a JWT is three base64url parts (header.claims.signature) separated by "."`);
  const [h, c, s] = parts as [string, string, string];
  const header = part(h, 'header') as JwtHeader;
  if (typeof header.alg !== 'string') throw new InvalidJwtError('the header has no "alg"');
  const claims = part(c, 'claims') as JwtClaims;
  if (!B64URL.test(s)) throw new InvalidJwtError('the signature part is not base64url (only A-Z, a-z, 0-9, "-" and "_")');
  const decoded: DecodedJwt = { header, claims, signed: s !== '' && header.alg !== 'none' };
  compact.set(decoded, token);
  return decoded;
}

/** A NumericDate claim (seconds since the epoch) as an ISO time, or null when absent or not a number. */
export function numericDate(value: unknown): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  const d = new Date(value * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace('.000Z', 'Z');
}

/** Seconds from `now` until the token's `exp` (negative once expired), or null without a numeric exp. */
export function secondsLeft(claims: JwtClaims, now: Date): number | null {
  return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? Math.floor(claims.exp - now.getTime() / 1000) : null;
}

/** "1d 2h", "2h 5m", "3m 20s", "45s": the two largest units, which is as precise as a person reads. */
export function formatDuration(seconds: number): string {
  let s = Math.abs(Math.trunc(seconds));
  const units: [string, number][] = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const out: string[] = [];
  for (const [name, size] of units) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || (out.length > 0 && out.length < 2)) out.push(`${n}${name}`);
    if (out.length === 2) break;
  }
  // Drop a trailing zero unit: "3m", not "3m 0s".
  while (out.length > 1 && /^0\D$/.test(out[out.length - 1] ?? '')) out.pop();
  return out.length === 0 ? '0s' : out.join(' ');
}

/** "47m 12s left", "expired 3m ago", or null when the token has no exp. */
export function describeTimeLeft(left: number | null): string | null {
  if (left === null) return null;
  return left > 0 ? `${formatDuration(left)} left` : `expired ${formatDuration(left)} ago`;
}

/** The `kubernetes.io` block a kube-apiserver puts in the tokens it issues. */
export interface KubernetesClaims {
  namespace?: string;
  serviceAccount?: { name?: string; uid?: string };
  pod?: { name?: string; uid?: string };
  secret?: { name?: string; uid?: string };
  node?: { name?: string; uid?: string };
  /** Seconds since the epoch after which the kubelet should have refreshed the token. */
  warnAfter?: number;
}

function ref(v: unknown): { name?: string; uid?: string } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  return {
    ...(typeof o.name === 'string' ? { name: o.name } : {}),
    ...(typeof o.uid === 'string' ? { uid: o.uid } : {}),
  };
}

export function kubernetesClaims(claims: JwtClaims): KubernetesClaims | undefined {
  const k = claims['kubernetes.io'];
  if (typeof k !== 'object' || k === null) return undefined;
  const o = k as Record<string, unknown>;
  const out: KubernetesClaims = {};
  if (typeof o.namespace === 'string') out.namespace = o.namespace;
  const sa = ref(o.serviceaccount);
  if (sa) out.serviceAccount = sa;
  const pod = ref(o.pod);
  if (pod) out.pod = pod;
  const secret = ref(o.secret);
  if (secret) out.secret = secret;
  const node = ref(o.node);
  if (node) out.node = node;
  if (typeof o.warnafter === 'number') out.warnAfter = o.warnafter;
  return out;
}

/** The token's audiences: `aud` may be one string or a list. */
export function audiences(claims: JwtClaims): string[] {
  if (typeof claims.aud === 'string') return [claims.aud];
  if (Array.isArray(claims.aud)) return claims.aud.filter((a): a is string => typeof a === 'string');
  return [];
}

export type CheckStatus = 'pass' | 'fail';
export type CheckName = 'expiry' | 'not-before' | 'issuer' | 'subject' | 'audience' | 'signature';

export interface TokenCheck {
  name: CheckName;
  status: CheckStatus;
  expected: string | null;
  /** What the token holds; a list for `audience`, since a token may carry several. */
  found: string | string[] | null;
  /** The verdict in one line, naming the difference when there is one. */
  message: string;
}

export interface Expectations {
  audience?: string;
  subject?: string;
  issuer?: string;
}

const SA_SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;
const withoutSlash = (s: string): string => s.replace(/\/+$/, '');

/** One check, its keys always in the same order (the JSON output is read by people too). */
function check(name: CheckName, status: CheckStatus, expected: string | null, found: string | string[] | null, message: string): TokenCheck {
  return { name, status, expected, found, message };
}

function issuerCheck(found: unknown, expected: string): TokenCheck {
  if (typeof found !== 'string') return check('issuer', 'fail', expected, null, 'the token has no iss claim');
  if (found === expected) return check('issuer', 'pass', expected, found, `issuer is ${found}`);
  // Clouds compare iss byte for byte, and AKS issuers end in "/" while EKS ones do not: the commonest slip.
  if (withoutSlash(found) === withoutSlash(expected)) {
    return check(
      'issuer',
      'fail',
      expected,
      found,
      `issuer differs only by a trailing slash: the token has ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}; the cloud compares them byte for byte, so configure the trust with the token's exact issuer`,
    );
  }
  return check('issuer', 'fail', expected, found, `issuer is ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`);
}

function subjectCheck(found: unknown, expected: string): TokenCheck {
  if (typeof found !== 'string') return check('subject', 'fail', expected, null, 'the token has no sub claim');
  if (found === expected) return check('subject', 'pass', expected, found, `subject is ${found}`);
  const f = SA_SUBJECT.exec(found);
  const e = SA_SUBJECT.exec(expected);
  if (f && e) {
    const diffs: string[] = [];
    if (f[1] !== e[1]) diffs.push(`namespace ${JSON.stringify(f[1])} (expected ${JSON.stringify(e[1])})`);
    if (f[2] !== e[2]) diffs.push(`ServiceAccount ${JSON.stringify(f[2])} (expected ${JSON.stringify(e[2])})`);
    return check('subject', 'fail', expected, found, `subject is ${found}, expected ${expected}: the token is for ${diffs.join(' and ')}`);
  }
  return check('subject', 'fail', expected, found, `subject is ${JSON.stringify(found)}, expected ${JSON.stringify(expected)}`);
}

function audienceCheck(claims: JwtClaims, expected: string): TokenCheck {
  const found = audiences(claims);
  if (found.includes(expected)) return check('audience', 'pass', expected, found, `audience includes ${expected}`);
  if (found.length === 0) return check('audience', 'fail', expected, found, `the token has no aud claim; expected ${JSON.stringify(expected)}`);
  const near = found.find((a) => withoutSlash(a) === withoutSlash(expected));
  if (near !== undefined) {
    return check('audience', 'fail', expected, found, `audience ${JSON.stringify(near)} differs from ${JSON.stringify(expected)} only by a trailing slash; audiences are compared byte for byte`);
  }
  return check(
    'audience',
    'fail',
    expected,
    found,
    `audience is ${found.map((a) => JSON.stringify(a)).join(', ')}, expected ${JSON.stringify(expected)}; request a token for it (serviceAccountToken.audience in the pod's projected volume, or kubectl create token SA --audience ${expected})`,
  );
}

/**
 * The checks on what the token says: expiry (always), not-before (when it has nbf), and each given
 * expectation. Signature checks come from `verifySignature`.
 */
export function checkClaims(claims: JwtClaims, expect: Expectations, now: Date): TokenCheck[] {
  const checks: TokenCheck[] = [];
  const nowIso = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const exp = numericDate(claims.exp);
  const left = secondsLeft(claims, now);
  if (exp === null || left === null) {
    checks.push(
      check(
        'expiry',
        'fail',
        `exp after ${nowIso}`,
        null,
        claims.exp === undefined
          ? 'the token has no exp claim: it never expires, like the legacy ServiceAccount token Secrets (find those with wid audit)'
          : 'the exp claim is not a NumericDate (seconds since 1970)',
      ),
    );
  } else {
    checks.push(check('expiry', left > 0 ? 'pass' : 'fail', `exp after ${nowIso}`, exp, left > 0 ? `expires at ${exp} (${describeTimeLeft(left)})` : `expired at ${exp} (${formatDuration(left)} ago)`));
  }
  if (claims.nbf !== undefined) {
    const nbf = numericDate(claims.nbf);
    const ok = nbf !== null && (claims.nbf as number) <= now.getTime() / 1000;
    const message = nbf === null ? 'the nbf claim is not a NumericDate (seconds since 1970)' : ok ? `valid since ${nbf}` : `not valid until ${nbf} (check this machine's clock)`;
    checks.push(check('not-before', ok ? 'pass' : 'fail', `nbf at or before ${nowIso}`, nbf, message));
  }
  if (expect.issuer !== undefined) checks.push(issuerCheck(claims.iss, expect.issuer));
  if (expect.subject !== undefined) checks.push(subjectCheck(claims.sub, expect.subject));
  if (expect.audience !== undefined) checks.push(audienceCheck(claims, expect.audience));
  return checks;
}

/** Checks that `value` is a JWKS jose can use: `{"keys": [ {kty, …}, … ]}`. */
export function parseJwks(value: unknown): JSONWebKeySet {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidJwksError('a JWKS is a JSON object with a "keys" list');
  const keys = (value as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new InvalidJwksError('a JWKS is a JSON object with a "keys" list');
  if (keys.length === 0) throw new InvalidJwksError('the "keys" list is empty');
  if (!keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k) && typeof (k as { kty?: unknown }).kty === 'string')) {
    throw new InvalidJwksError('every entry of "keys" must be a JSON object with a "kty"');
  }
  return value as JSONWebKeySet;
}

/** The algorithms an issuer signs ServiceAccount tokens with; never HMAC, whose key would be public in a JWKS. */
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/**
 * Verifies the token's signature against a key set. `source` names where the keys came from (a file,
 * a URL) for the message. jose's own texts are not passed through, since some could carry parts of
 * the token; each known failure gets its own wording.
 */
export async function verifySignature(token: DecodedJwt, jwks: JSONWebKeySet, source: string): Promise<TokenCheck> {
  const kid = typeof token.header.kid === 'string' ? token.header.kid : undefined;
  const alg = token.header.alg ?? '(none)';
  const key = `${kid === undefined ? 'no kid' : `kid ${kid}`}, alg ${alg}`;
  const expected = `signed by a key in ${source}`;
  const fail = (message: string): TokenCheck => check('signature', 'fail', expected, key, message);
  const raw = compact.get(token);
  if (raw === undefined) return fail('the token was not decoded by decodeJwt');
  if (!token.signed) return fail('the token is not signed (alg none or an empty signature)');
  try {
    // Loaded here, on first use: decoding and the claim checks need no crypto library.
    const { compactVerify, createLocalJWKSet } = await import('jose');
    await compactVerify(raw, createLocalJWKSet(jwks), { algorithms: ASYMMETRIC });
    return check('signature', 'pass', expected, key, `signature verified with ${kid === undefined ? 'a key' : `key ${kid}`} from ${source}`);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    switch (code) {
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return fail(`the signature does not match ${kid === undefined ? 'the key' : `key ${kid}`} in ${source}: the token was signed by another key`);
      case 'ERR_JWKS_NO_MATCHING_KEY':
        return fail(`no key in ${source} matches the token (${key}): it was signed by another issuer, or by a key the issuer has rotated out`);
      case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
        return fail(`several keys in ${source} match the token (${key}) and none verified it`);
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
      case 'ERR_JOSE_NOT_SUPPORTED':
        return fail(`alg ${alg} is not an asymmetric signature algorithm a ServiceAccount issuer uses (RS256, ES256, …)`);
      case 'ERR_JWKS_INVALID':
      case 'ERR_JWK_INVALID':
        return fail(`the key set from ${source} is malformed`);
      default:
        return fail(`the key matching the token in ${source} could not be used${typeof code === 'string' ? ` (${code})` : ''}`);
    }
  }
}

/** True when every check passed. */
export function allPassed(checks: TokenCheck[]): boolean {
  return checks.every((c) => c.status === 'pass');
}
