/**
 * `wid token inspect [FILE|-]`: what a projected ServiceAccount token says (issuer, subject, audience,
 * lifetime, the pod it was issued for) and whether that is what a cloud will accept.
 *
 * The token is a live credential. It is read, decoded and dropped: no output mode, message or error
 * prints the token or its signature (src/core/jwt.ts keeps the compact form out of reach).
 */
import { readFileSync, statSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { JSONWebKeySet } from 'jose';
import { ChecksFailed, RuntimeError, UsageError } from '../../core/errors.js';
import {
  allPassed,
  audiences,
  checkClaims,
  decodeJwt,
  describeTimeLeft,
  formatDuration,
  InvalidJwksError,
  InvalidJwtError,
  kubernetesClaims,
  MAX_TOKEN_BYTES,
  numericDate,
  parseJwks,
  secondsLeft,
  verifySignature,
  type DecodedJwt,
  type Expectations,
  type JwtHeader,
  type JwtClaims,
  type TokenCheck,
} from '../../core/jwt.js';
import * as v from '../../core/validate.js';
import type { Factory } from '../factory.js';
import { examples } from '../flags.js';
import type { IO } from '../io.js';
import { styleFor } from '../style.js';

const FORMATS = ['text', 'json'] as const;
type Format = (typeof FORMATS)[number];

/** Long enough for a slow issuer, short enough that a dead one does not hang a CI job. */
const FETCH_TIMEOUT_MS = 10_000;
/** A discovery document or key set is a few KiB; refuse to buffer anything much larger. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

interface RawInspectOptions {
  audience?: string;
  subject?: string;
  issuer?: string;
  verify?: boolean;
  jwks?: string;
  output: string;
  color: boolean;
}

type JwksSource = { kind: 'file'; path: string } | { kind: 'url'; url: string } | { kind: 'discovery' };

interface InspectRequest {
  source: { kind: 'stdin' } | { kind: 'file'; path: string };
  expect: Expectations;
  verify: JwksSource | undefined;
  output: Format;
  color: boolean;
}

/** The JSON shape of `-o json`; fields are only ever added. */
export interface TokenInspection {
  apiVersion: 'wid/v1';
  kind: 'TokenInspection';
  header: JwtHeader;
  claims: JwtClaims;
  issuedAt: string | null;
  expiresAt: string | null;
  /** Seconds until exp; negative once expired; null without exp. */
  expiresIn: number | null;
  checks: TokenCheck[];
}

export function tokenCommand(io: IO, _factory: Factory): Command {
  const token = new Command('token').description('inspect projected ServiceAccount tokens');
  const inspect = new Command('inspect')
    .description('decode a projected ServiceAccount token and check it against what the cloud expects (the token itself is never printed)')
    .argument('[FILE|-]', 'file holding the token, or - for stdin (default: stdin when it is not a terminal)')
    .option('--audience <aud>', 'expect this audience among the token\'s aud')
    .option('--subject <sub>', 'expect this subject, e.g. system:serviceaccount:NAMESPACE:NAME')
    .option('--issuer <url>', 'expect this issuer, byte for byte (a trailing "/" counts)')
    .option('--verify', 'verify the signature: with the keys from --jwks, else from the issuer\'s OIDC discovery (https only)')
    .option('--jwks <file|url>', 'JWKS file or https URL with the issuer\'s public keys (implies --verify)')
    .addOption(new Option('-o, --output <format>', 'what stdout carries: text or json').default('text'))
    .option('--no-color', 'no colour in messages')
    .addHelpText(
      'after',
      examples([
        'kubectl create token s3-access-sa -n apps --audience sts.amazonaws.com | wid token inspect',
        'wid token inspect token.jwt --audience sts.amazonaws.com --subject system:serviceaccount:apps:s3-access-sa',
        'kubectl exec -n apps POD -- cat /var/run/secrets/eks.amazonaws.com/serviceaccount/token | wid token inspect - --verify -o json',
        'kubectl get --raw /openid/v1/jwks > jwks.json && wid token inspect token.jwt --jwks jwks.json',
      ]),
    )
    .action(async (file: string | undefined, raw: RawInspectOptions) => runInspect(inspectRequest(file, raw, io), io));
  token.addCommand(inspect);
  return token;
}

/** Flags → a validated request; bad input stops here, before the token is read. */
export function inspectRequest(file: string | undefined, raw: RawInspectOptions, io: IO): InspectRequest {
  const output = v.oneOf('--output', raw.output, FORMATS);
  const expect: Expectations = {};
  if (raw.audience !== undefined) expect.audience = v.audience('--audience', raw.audience);
  if (raw.subject !== undefined) expect.subject = subjectFlag(raw.subject);
  if (raw.issuer !== undefined) expect.issuer = v.issuer('--issuer', raw.issuer);
  let verify: JwksSource | undefined;
  if (raw.jwks !== undefined) verify = jwksFlag(raw.jwks);
  else if (raw.verify === true) verify = { kind: 'discovery' };

  let source: InspectRequest['source'];
  if (file === undefined || file === '-') {
    // Waiting silently on a terminal looks like a hang; "-" says the user means to paste.
    if (file === undefined && io.stdinIsTTY) {
      throw new UsageError('WID_E_INPUT_MISSING', 'no token given: pass a FILE, or pipe the token on stdin', {
        flag: 'FILE',
        hint: 'kubectl create token SA -n NAMESPACE | wid token inspect   (or wid token inspect - to paste one, ending with Ctrl-D)',
      });
    }
    source = { kind: 'stdin' };
  } else {
    if (file.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', 'FILE "" is invalid: expected a file path, or - for stdin', { flag: 'FILE' });
    source = { kind: 'file', path: file };
  }
  return { source, expect, verify, output, color: raw.color };
}

const SA_SUBJECT = /^system:serviceaccount:([^:]*):([^:]*)$/;

function subjectFlag(s: string): string {
  const bad = (rule: string): never => {
    throw new UsageError('WID_E_INPUT_INVALID', `--subject ${JSON.stringify(s)} is invalid: ${rule}`, { flag: '--subject' });
  };
  if (s === '' || /\s/.test(s)) bad('a subject is non-empty with no whitespace, e.g. system:serviceaccount:NAMESPACE:NAME');
  if (s.startsWith('system:serviceaccount:')) {
    const m = SA_SUBJECT.exec(s);
    if (!m) bad('a ServiceAccount subject is system:serviceaccount:NAMESPACE:NAME');
    const [, ns = '', sa = ''] = m as RegExpExecArray;
    if (!(ns.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns))) bad(`the namespace ${JSON.stringify(ns)} is not a DNS-1123 label`);
    if (!(sa.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(sa))) bad(`the ServiceAccount name ${JSON.stringify(sa)} is not a DNS-1123 subdomain`);
  }
  return s;
}

function jwksFlag(value: string): JwksSource {
  const bad = (rule: string): never => {
    throw new UsageError('WID_E_INPUT_INVALID', `--jwks ${JSON.stringify(value)} is invalid: ${rule}`, { flag: '--jwks' });
  };
  if (value.trim() === '') bad('expected a JWKS file or an https:// URL');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      return bad('not a URL');
    }
    // Keys fetched over plain http could be swapped in transit, which would make "verified" meaningless.
    if (u.protocol !== 'https:') bad('a JWKS URL must use https://');
    if (u.username || u.password) bad('a JWKS URL must not contain a user name or password');
    return { kind: 'url', url: value };
  }
  return { kind: 'file', path: value };
}

/** The file or stdin, read and size-checked; the text goes to decodeJwt and nowhere else. */
async function readToken(source: InspectRequest['source'], io: IO): Promise<string> {
  if (source.kind === 'stdin') {
    if (io.readStdin === undefined) throw new UsageError('WID_E_INPUT_MISSING', 'no stdin to read the token from: pass a FILE', { flag: 'FILE' });
    return io.readStdin();
  }
  const label = `FILE ${JSON.stringify(source.path)}`;
  try {
    const st = statSync(source.path);
    if (st.isDirectory()) throw new UsageError('WID_E_INPUT_INVALID', `${label} is invalid: it is a directory; expected a file holding one token`, { flag: 'FILE' });
    if (st.isFile() && st.size > MAX_TOKEN_BYTES * 4) {
      throw new UsageError('WID_E_INPUT_INVALID', `${label} is invalid: not a JWT: it is ${st.size} bytes; a ServiceAccount token is a few KiB`, { flag: 'FILE' });
    }
    return readFileSync(source.path, 'utf8');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError('WID_E_INPUT_INVALID', `${label} cannot be read: ${fsReason(e)}`, { flag: 'FILE', cause: e });
  }
}

function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? (e instanceof Error ? e.message : String(e));
}

function decode(text: string, source: InspectRequest['source']): DecodedJwt {
  try {
    return decodeJwt(text);
  } catch (e) {
    if (!(e instanceof InvalidJwtError)) throw e;
    const label = source.kind === 'stdin' ? 'the token on stdin' : `FILE ${JSON.stringify(source.path)}`;
    throw new UsageError('WID_E_INPUT_INVALID', `${label} is invalid: not a JWT: ${e.rule}`, {
      flag: 'FILE',
      hint: 'a projected ServiceAccount token is three base64url parts separated by "."; get one with kubectl create token SA -n NAMESPACE',
    });
  }
}

export async function runInspect(req: InspectRequest, io: IO, now: () => Date = () => new Date()): Promise<void> {
  const style = styleFor(io, req.color);
  const token = decode(await readToken(req.source, io), req.source);
  const at = now();
  const checks = checkClaims(token.claims, req.expect, at);
  if (req.verify !== undefined) {
    const { jwks, source } = await loadJwks(req.verify, token, req.expect, io, style.warn('warning:'));
    checks.push(await verifySignature(token, jwks, source));
  }
  const result: TokenInspection = {
    apiVersion: 'wid/v1',
    kind: 'TokenInspection',
    header: token.header,
    claims: token.claims,
    issuedAt: numericDate(token.claims.iat),
    expiresAt: numericDate(token.claims.exp),
    expiresIn: secondsLeft(token.claims, at),
    checks,
  };
  io.out(req.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : inspectionText(result, at));
  const failed = checks.filter((c) => c.status === 'fail');
  if (allPassed(checks)) {
    io.err(`All ${checks.length} check${checks.length === 1 ? '' : 's'} passed.\n`);
    return;
  }
  const summary = `${failed.length} of ${checks.length} checks failed: ${failed.map((c) => c.name).join(', ')}`;
  io.err(`${style.error('✗')} ${summary}.\n`);
  throw new ChecksFailed(summary);
}

// ---- keys -----------------------------------------------------------------------------------------

async function loadJwks(src: JwksSource, token: DecodedJwt, expect: Expectations, io: IO, warning: string): Promise<{ jwks: JSONWebKeySet; source: string }> {
  if (src.kind === 'file') {
    const label = `--jwks ${JSON.stringify(src.path)}`;
    let text: string;
    try {
      if (statSync(src.path).size > MAX_DOCUMENT_BYTES) throw new UsageError('WID_E_INPUT_INVALID', `${label} is invalid: larger than 1 MiB; a JWKS is a few KiB`, { flag: '--jwks' });
      text = readFileSync(src.path, 'utf8');
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError('WID_E_INPUT_INVALID', `${label} cannot be read: ${fsReason(e)}`, { flag: '--jwks', cause: e });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new UsageError('WID_E_INPUT_INVALID', `${label} is invalid: not JSON; a JWKS looks like {"keys":[{"kty":"RSA",…}]}`, { flag: '--jwks' });
    }
    try {
      return { jwks: parseJwks(value), source: src.path };
    } catch (e) {
      if (e instanceof InvalidJwksError) throw new UsageError('WID_E_INPUT_INVALID', `${label} is invalid: ${e.rule}`, { flag: '--jwks' });
      throw e;
    }
  }
  if (src.kind === 'url') return { jwks: jwksFrom(await fetchJson(src.url, 'the JWKS'), src.url), source: src.url };

  // Discovery. An --issuer expectation is trusted over the token's own iss: the token is not yet verified.
  const iss = expect.issuer ?? token.claims.iss;
  if (typeof iss !== 'string') {
    throw new UsageError('WID_E_INPUT_MISSING', 'the token has no iss claim, so its keys cannot be discovered: pass --jwks FILE|URL', {
      flag: '--jwks',
      hint: 'for a cluster\'s own keys: kubectl get --raw /openid/v1/jwks > jwks.json, then --jwks jwks.json',
    });
  }
  if (expect.issuer === undefined) {
    try {
      v.issuer('the token\'s iss', iss);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      throw new UsageError('WID_E_INPUT_INVALID', `${e.message}, so its keys cannot be discovered: pass --jwks FILE|URL`, {
        flag: '--jwks',
        hint: 'for a cluster\'s own keys: kubectl get --raw /openid/v1/jwks > jwks.json, then --jwks jwks.json',
      });
    }
  }
  const discoveryUrl = `${iss.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const doc = await fetchJson(discoveryUrl, 'the OIDC discovery document');
  const d = (typeof doc === 'object' && doc !== null ? doc : {}) as { issuer?: unknown; jwks_uri?: unknown };
  if (typeof d.jwks_uri !== 'string') {
    throw new RuntimeError('WID_E_DISCOVERY_INVALID', `the OIDC discovery document ${discoveryUrl} has no jwks_uri`, { hint: 'pass the issuer\'s keys with --jwks FILE|URL' });
  }
  if (!d.jwks_uri.startsWith('https://')) {
    throw new RuntimeError('WID_E_DISCOVERY_INVALID', `the OIDC discovery document ${discoveryUrl} names a jwks_uri that is not https: ${d.jwks_uri}`, {
      hint: 'pass the issuer\'s keys with --jwks FILE|URL',
    });
  }
  // OIDC Discovery 1.0 §4.3: the document's issuer must equal the issuer it was fetched for; clouds check it.
  if (d.issuer !== iss) io.err(`${warning} ${discoveryUrl} names issuer ${JSON.stringify(d.issuer)}, not ${JSON.stringify(iss)}; clouds reject an issuer whose discovery document disagrees\n`);
  return { jwks: jwksFrom(await fetchJson(d.jwks_uri, 'the JWKS'), d.jwks_uri), source: d.jwks_uri };
}

function jwksFrom(value: unknown, url: string): JSONWebKeySet {
  try {
    return parseJwks(value);
  } catch (e) {
    if (e instanceof InvalidJwksError) throw new RuntimeError('WID_E_JWKS_INVALID', `${url} did not answer with a JWKS: ${e.rule}`);
    throw e;
  }
}

/** GET an https URL as JSON. Network failures and bad answers are run-time errors (exit 1). */
async function fetchJson(url: string, what: string): Promise<unknown> {
  const hint = 'check the URL and the network, or download the keys and pass --jwks FILE (a cluster\'s own: kubectl get --raw /openid/v1/jwks > jwks.json)';
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (e) {
    throw new RuntimeError('WID_E_JWKS_UNREACHABLE', `cannot fetch ${what} from ${url}: ${networkReason(e)}`, { hint, cause: e });
  }
  if (res.url !== '' && !res.url.startsWith('https://')) {
    throw new RuntimeError('WID_E_JWKS_UNREACHABLE', `${url} redirected to a URL that is not https: ${res.url}`, { hint });
  }
  if (!res.ok) throw new RuntimeError('WID_E_JWKS_UNREACHABLE', `cannot fetch ${what}: GET ${url} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, { hint });
  const text = await res.text();
  if (text.length > MAX_DOCUMENT_BYTES) throw new RuntimeError('WID_E_JWKS_INVALID', `${url} answered more than 1 MiB; ${what} is a few KiB`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RuntimeError('WID_E_JWKS_INVALID', `${url} did not answer with JSON (${what})`, { hint });
  }
}

function networkReason(e: unknown): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `no answer within ${FETCH_TIMEOUT_MS / 1000} s`;
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return e instanceof Error ? e.message : String(e);
}

// ---- text -----------------------------------------------------------------------------------------

/** Claims are attacker-controlled text: escape control characters so none can drive the terminal. */
function safe(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function show(value: unknown): string {
  return safe(typeof value === 'string' ? value : JSON.stringify(value) ?? String(value));
}

function relative(seconds: number): string {
  return seconds >= 0 ? `${formatDuration(seconds)} ago` : `in ${formatDuration(seconds)}`;
}

const KNOWN = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'kubernetes.io']);
const MARK = { pass: '✓', fail: '✗' } as const;

export function inspectionText(r: TokenInspection, now: Date): string {
  const out: string[] = [];
  const kv = (rows: [string, string][], indent: string): void => {
    const w = Math.max(0, ...rows.map(([k]) => k.length));
    for (const [k, val] of rows) out.push(`${indent}${k.padEnd(w)}  ${val}`);
  };
  out.push('Header');
  kv(Object.entries(r.header).map(([k, val]) => [safe(k), show(val)]), '  ');

  out.push('Claims');
  const c = r.claims;
  const time = (val: unknown): string => {
    const iso = numericDate(val);
    return iso === null ? show(val) : `${iso}  (${show(val)})`;
  };
  const rows: [string, string][] = [];
  if (c.iss !== undefined) rows.push(['iss', show(c.iss)]);
  if (c.sub !== undefined) rows.push(['sub', show(c.sub)]);
  if (c.aud !== undefined) rows.push(['aud', audiences(c).map(safe).join(', ') || show(c.aud)]);
  for (const k of ['iat', 'nbf', 'exp'] as const) if (c[k] !== undefined) rows.push([k, time(c[k])]);
  for (const [k, val] of Object.entries(c)) if (!KNOWN.has(k)) rows.push([safe(k), show(val)]);
  kv(rows, '  ');
  const k8s = kubernetesClaims(c);
  if (k8s) {
    out.push('  kubernetes.io');
    const ref = (o: { name?: string; uid?: string }): string => `${safe(o.name ?? '?')}${o.uid ? `  uid ${safe(o.uid)}` : ''}`;
    const krows: [string, string][] = [];
    if (k8s.namespace !== undefined) krows.push(['namespace', safe(k8s.namespace)]);
    if (k8s.serviceAccount) krows.push(['serviceaccount', ref(k8s.serviceAccount)]);
    if (k8s.pod) krows.push(['pod', ref(k8s.pod)]);
    if (k8s.secret) krows.push(['secret', `${ref(k8s.secret)}  (a legacy Secret-bound token)`]);
    if (k8s.node) krows.push(['node', ref(k8s.node)]);
    if (k8s.warnAfter !== undefined) krows.push(['warnafter', time(k8s.warnAfter)]);
    kv(krows, '    ');
  }

  out.push('');
  const nowS = now.getTime() / 1000;
  const lifetime: [string, string][] = [];
  if (r.issuedAt !== null) lifetime.push(['Issued', `${r.issuedAt} (${relative(nowS - (c.iat as number))})`]);
  lifetime.push(['Expires', r.expiresAt === null ? 'never (no exp claim)' : `${r.expiresAt} (${describeTimeLeft(r.expiresIn)})`]);
  kv(lifetime, '');

  out.push('');
  out.push('Checks');
  const w = Math.max(0, ...r.checks.map((x) => x.name.length));
  for (const x of r.checks) out.push(`  ${MARK[x.status]} ${x.status.padEnd(4)}  ${x.name.padEnd(w)}  ${safe(x.message)}`);
  return `${out.join('\n')}\n`;
}
