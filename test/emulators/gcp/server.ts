/**
 * In-memory emulator of the Google Cloud APIs `wid setup gke` talks to, on ONE `node:http` listener on
 * 127.0.0.1 (port 0), each under its real path so that one root URL (`http://127.0.0.1:PORT/`) serves
 * as the `rootUrl` of every discovery client (gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM |
 * _CONTAINER | _CLOUDRESOURCEMANAGER):
 *
 *  - Security Token Service `POST /v1/token` (what google-auth-library's IdentityPoolClient calls for
 *    an `external_account` Application Default Credentials file), issuing opaque access tokens;
 *  - Kubernetes Engine v1: clusters and node pools (read);
 *  - Cloud Resource Manager v3: projects.get / getIamPolicy / setIamPolicy (and v1 projects.get, which
 *    google-auth-library uses to turn a project number into an id);
 *  - IAM v1: service accounts get / create / delete / getIamPolicy / setIamPolicy.
 *
 * IAM policies behave like Google's: etags, optimistic concurrency (409 ABORTED), versions 1 and 3 with
 * `_withcond_` role mangling, binding merging, member validation (workload identity pools, service
 * accounts, `principal://` project numbers). See SPEC.md next to this file for the contract.
 *
 * Sources for shapes and texts are cited inline: /work/shared/reference/gcp.md §2.3–§2.7 and §4, the
 * installed clients (@googleapis/iam 38.0.1, @googleapis/container 26.0.0, @googleapis/cloudresourcemanager
 * 7.0.0, google-auth-library 10.5.0, gaxios 7.1.3), Google's docs, and issue threads that quote real
 * responses. Where no real text was available the comment says "emulator text".
 *
 * Error bodies are Google's JSON error model: `{"error":{"code","message","errors"?,"status","details"?}}`.
 * The legacy `errors: [{message, domain: "global", reason}]` array is sent where captures of the same
 * API show it (Go's googleapi prints its reason after the message: "…, notFound"); `details` is sent
 * only when Google sends some (it omits an empty list).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export type GcpApiName = 'iam' | 'container' | 'crm' | 'sts';

export interface GcpRequestRecord {
  method: string;
  /** The decoded path, without the query (`/v1/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com:getIamPolicy`). */
  path: string;
  /** Query parameters, decoded (`options.requestedPolicyVersion`, `alt`, …). */
  query: Record<string, string>;
  /**
   * APIs: the parsed JSON body (the raw text when it is not JSON). STS: the form fields minus
   * `subject_token` and `actor_token`, which are never recorded.
   */
  body?: unknown;
  /** The status the emulator answered with (0 while the request is in flight, and when the connection was dropped). */
  status: number;
  /** setIamPolicy, serviceAccounts.create and serviceAccounts.delete, whatever their outcome. */
  write: boolean;
  api: GcpApiName;
}

export interface GcpCondition {
  title: string;
  expression: string;
  description?: string;
}

export interface GcpBinding {
  role: string;
  members: string[];
  condition?: GcpCondition;
}

/** A policy as getIamPolicy with requestedPolicyVersion 3 shows it (version 0 = never written). */
export interface GcpPolicy {
  version: number;
  etag: string;
  bindings: GcpBinding[];
}

export interface GcpFaults {
  /**
   * The next `times` (default 1) requests whose method matches (`'*'` for any) and whose decoded `path`
   * matches `pathRegex` fail with `status` and `{"error":{"code":status,"message":message,"status":statusText}}`
   * (the STS token endpoint answers OAuth's `{"error":statusText,"error_description":message}` instead).
   * Checked after authentication, before any state is touched. Queued faults run in order. Status 0
   * destroys the socket without an answer (the request was lost: nothing changed; the client sees a
   * network error); `statusText` and `message` are then ignored.
   */
  failNext(method: string, pathRegex: RegExp, status: number, statusText: string, message: string, times?: number): void;
  /**
   * The next `times` (default 1) API requests with this method (`'*'` for any) and a matching path that
   * get past the injected faults are handled as usual (state changes), then the socket is destroyed
   * instead of answering: the answer was lost. Logged with status 0.
   */
  dropAnswerNext(method: string, pathRegex: RegExp, times?: number): void;
  /** The next `times` (default 1) matching requests answer 429 RESOURCE_EXHAUSTED with Google's quota text. */
  quotaExceeded(method: string, pathRegex: RegExp, times?: number): void;
  /** Every matching request answers 403 PERMISSION_DENIED (the API's own wording) until clear(). */
  deny(method: string, pathRegex: RegExp): void;
  /**
   * Right after the next successful getIamPolicy of `resource` (`projects/P` or
   * `projects/P/serviceAccounts/EMAIL`) has been answered, `mutate` is applied to the stored policy
   * (shown as version 3) and the result stored with a new etag, as if another writer had got in between:
   * the caller's following setIamPolicy carries a stale etag and gets 409 ABORTED.
   */
  raceNextPolicyWrite(resource: string, mutate: (policy: GcpPolicy) => GcpPolicy | void): void;
  /**
   * Service accounts created through the API from now on answer 404 to their first `calls`
   * get/getIamPolicy/setIamPolicy requests (real IAM can take a minute to show a new account).
   */
  newServiceAccountNotFoundFor(calls: number): void;
  /** Milliseconds added before every answer, errors included. */
  latencyMs: number;
  /**
   * Holds the next `count` requests with this method (`'*'` for any) and a matching path after their
   * latency, until `count` of them are waiting (or `timeoutMs`, default 5000, has passed since the first
   * arrived), then lets them all go on in arrival order. Two setIamPolicy calls gathered this way carry
   * the same etag, so the later one gets 409 ABORTED. clear() releases what is held.
   */
  gather(method: string, pathRegex: RegExp, count: number, timeoutMs?: number): void;
  /** Drops queued faults, denies and races, ends every pending 404 window, and sets latencyMs to 0. */
  clear(): void;
}

/** A faults.gather in progress. */
interface Gathering {
  method: string;
  pathRegex: RegExp;
  count: number;
  timeoutMs: number;
  waiting: (() => void)[];
  timer?: ReturnType<typeof setTimeout>;
}

export interface SeedProjectInput {
  projectId: string;
  projectNumber: string;
  /** Default: the project id. */
  displayName?: string;
}

export interface SeedClusterInput {
  /** Project id (seeded with a derived number if not seeded yet). */
  project: string;
  location: string;
  name: string;
  /** `workloadIdentityConfig.workloadPool`; omitted = workload identity off (Autopilot: always `PROJECT.svc.id.goog`). */
  workloadPool?: string;
  autopilot?: boolean;
  /** Default: one `default-pool`, in GKE_METADATA mode when the cluster has a workload pool (mode omitted otherwise). */
  nodePools?: { name: string; mode?: 'GKE_METADATA' | 'GCE_METADATA' }[];
  /** Default RUNNING. */
  status?: string;
}

export interface SeedServiceAccountInput {
  /** Project id (seeded with a derived number if not seeded yet). */
  project: string;
  accountId: string;
  displayName?: string;
  description?: string;
}

export interface WriteCredentialsOptions {
  /** The STS audience. Default `//iam.googleapis.com/projects/<projectNumber>/locations/global/workloadIdentityPools/wid-test-pool/providers/wid-test-provider`. */
  audience?: string;
  /** Used in the default audience. Default `123456789012`. */
  projectNumber?: string;
}

export interface GcpEmulator {
  /** `http://127.0.0.1:PORT/` (with the trailing slash: a rootUrl). */
  url: string;
  /** Every request, in arrival order (the same array for the emulator's lifetime). */
  log: GcpRequestRecord[];
  /** The logged writes (setIamPolicy, create, delete), whatever their status. */
  writes(): GcpRequestRecord[];
  /**
   * Writes an `external_account` ADC file at `path` (token_url → this server) and, beside it,
   * `<name>.subject-token` holding a fake JWT that `credential_source.file` names. Returns nothing;
   * point GOOGLE_APPLICATION_CREDENTIALS or GoogleAuth's keyFilename at `path`.
   */
  writeCredentialsFile(path: string, opts?: WriteCredentialsOptions): void;
  /** An access token the APIs accept, minted without a token exchange (for OAuth2Client.setCredentials). */
  issueToken(): string;
  seedProject(p: SeedProjectInput): void;
  seedCluster(c: SeedClusterInput): void;
  /** Returns the email. The account is visible at once (newServiceAccountNotFoundFor does not apply). */
  seedServiceAccount(sa: SeedServiceAccountInput): string;
  /** A workload identity pool that is not a GKE one (e.g. for AKS/EKS federation); returns its name. */
  seedWorkloadIdentityPool(p: { project: string; poolId: string }): string;
  /** Replaces a policy without validation (merging and ordering as Google stores them); new etag. */
  setPolicy(resource: string, policy: { bindings: GcpBinding[] }): void;
  /** The stored policy as getIamPolicy(requestedPolicyVersion 3) shows it. Throws for an unknown resource. */
  getPolicy(resource: string): GcpPolicy;
  /** The service account as serviceAccounts.get returns it, or undefined. */
  getServiceAccount(email: string): Record<string, unknown> | undefined;
  faults: GcpFaults;
  /**
   * Called synchronously with the request's record (status filled in) right after its answer was
   * handed to the socket (`res.end`), or after a dropped connection destroyed the socket (status 0),
   * and a raceNextPolicyWrite mutation due then has run, for every
   * request (APIs and STS). A test hook (e.g. to kill the client right after its k-th write was
   * answered); reset() leaves it in place.
   */
  onResponse?: (record: GcpRequestRecord) => void;
  /** State, log, faults and counters back to empty; the URL and issued tokens stay. */
  reset(): void;
  close(): Promise<void>;
}

export function startGcpEmulator(): Promise<GcpEmulator> {
  return GcpEmulatorImpl.start();
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const STS_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Subject token types Google STS accepts (RFC 8693 names plus AWS's signed request and mTLS). */
const SUBJECT_TOKEN_TYPES = new Set([
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
  'urn:ietf:params:oauth:token-type:saml2',
  'urn:ietf:params:aws:token-type:aws4_request',
  'urn:ietf:params:oauth:token-type:access_token',
  'urn:ietf:params:oauth:token-type:mtls',
]);
/** Google STS answers `expires_in` of at most an hour; 3599 is what clients usually see. */
const TOKEN_LIFETIME_S = 3599;
/** Max principals per policy (`Schema$Policy.bindings` doc in @googleapis/iam v1.ts). */
const MAX_POLICY_MEMBERS = 1500;
/** `Schema$CreateServiceAccountRequest.accountId` doc: 6–30 characters, `[a-z]([-a-z0-9]*[a-z0-9])`. */
const ACCOUNT_ID = /^[a-z]([-a-z0-9]*[a-z0-9])$/;
/** The etag IAM gives a policy that was never written (gcloud prints `etag: ACAB` for a new account). */
const EMPTY_ETAG = 'ACAB';
/** Link Google appends to policy-version errors (terraform-provider-google#5218, vault-plugin-secrets-gcp#88). */
const VERSIONS_DOC = 'https://cloud.google.com/iam/docs/policies#versions';
/** The help link in Google's 401 texts. */
const DEVCONSOLE = 'https://developers.google.com/identity/sign-in/web/devconsole-project';
const GKE_VERSION = '1.33.5-gke.1308000';
const FIXED_TIME = '2026-01-01T00:00:00.000Z';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

interface GoogleErrorOptions {
  /** The legacy `errors[0].reason` (`notFound`, `alreadyExists`, `badRequest`, `aborted`, …); no `errors` array when absent. */
  reason?: string;
  details?: Record<string, unknown>[];
  headers?: Record<string, string>;
}

/** An error in Google's JSON error model (AIP-193). */
class GoogleError extends Error {
  constructor(
    readonly code: number,
    readonly statusText: string,
    message: string,
    readonly opts: GoogleErrorOptions = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.opts.reason !== undefined) error.errors = [{ message: this.message, domain: 'global', reason: this.opts.reason }];
    error.status = this.statusText;
    if (this.opts.details && this.opts.details.length > 0) error.details = this.opts.details;
    return { error };
  }
}

/** An OAuth 2.0 error as Google STS answers it (`{"error","error_description"}`, RFC 6749 §5.2). */
class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

function errorInfo(reason: string, domain: string, metadata: Record<string, string>): Record<string, unknown> {
  return { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain, metadata };
}

function invalidArgument(message: string, reason = 'badRequest'): GoogleError {
  return new GoogleError(400, 'INVALID_ARGUMENT', message, { reason });
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** A stable string of digits derived from `seed` (project numbers, unique ids). */
function digitsFrom(seed: string, length: number, first = ''): string {
  let out = first;
  for (const b of sha256(seed)) {
    if (out.length >= length) break;
    out += String(b % 10);
  }
  while (out.length < length) out += '7';
  return out;
}

/**
 * Bytes as a C string literal body, the way Google prints etags in the ABORTED detail
 * ("The request's ETag '\007\005\366B\263m\324\354' did not match…", pulumi/pulumi-gcp#1028).
 */
function cEscape(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x5c) out += '\\\\';
    else if (b === 0x27) out += "\\'";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function splitComma(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

// ---------------------------------------------------------------------------------------------
// IAM policies
// ---------------------------------------------------------------------------------------------

interface Binding {
  role: string;
  members: string[];
  condition?: GcpCondition;
}

interface StoredPolicy {
  bindings: Binding[];
  etag: string;
  /** False until the first write: such a policy reads as `{"etag":"ACAB"}` (no version, no bindings). */
  written: boolean;
  /** Projects only; kept verbatim and changed only when the update mask names it. */
  auditConfigs?: unknown[];
}

function emptyPolicy(): StoredPolicy {
  return { bindings: [], etag: EMPTY_ETAG, written: false };
}

function conditionKey(c: GcpCondition | undefined): string {
  return c === undefined ? '' : JSON.stringify([c.expression, c.title, c.description ?? '']);
}

function hasConditions(bindings: Binding[]): boolean {
  return bindings.some((b) => b.condition !== undefined);
}

function copyCondition(c: GcpCondition): GcpCondition {
  return c.description === undefined || c.description === ''
    ? { title: c.title, expression: c.expression }
    : { title: c.title, expression: c.expression, description: c.description };
}

function copyBindings(bindings: Binding[]): Binding[] {
  return bindings.map((b) => ({ role: b.role, members: [...b.members], ...(b.condition ? { condition: copyCondition(b.condition) } : {}) }));
}

/**
 * Bindings as IAM stores them: one binding per (role, condition) with the members of every duplicate
 * merged (gcloud add-iam-policy-binding relies on this), no duplicate members, bindings left with no
 * member dropped, members sorted and bindings sorted by role (unconditional first), as getIamPolicy
 * prints them.
 */
function normalizeBindings(bindings: Binding[]): Binding[] {
  const merged = new Map<string, Binding>();
  for (const b of bindings) {
    const k = `${b.role}\u0000${conditionKey(b.condition)}`;
    const into = merged.get(k);
    if (into) into.members.push(...b.members);
    else merged.set(k, { role: b.role, members: [...b.members], ...(b.condition ? { condition: copyCondition(b.condition) } : {}) });
  }
  const out = [...merged.values()]
    .map((b) => ({ ...b, members: [...new Set(b.members)].sort() }))
    .filter((b) => b.members.length > 0);
  return out.sort((a, b) => (a.role === b.role ? conditionKey(a.condition).localeCompare(conditionKey(b.condition)) : a.role < b.role ? -1 : 1));
}

function sameBindings(a: Binding[], b: Binding[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The wire form of a policy for `requestedVersion`. Field order follows the proto (version, etag,
 * bindings; role, members, condition). A conditional policy read below version 3 comes back as
 * version 1 with each conditional role renamed `ROLE_withcond_<20 hex>` and its condition hidden
 * (https://cloud.google.com/iam/docs/troubleshooting-withcond:
 * "roles/iam.serviceAccountAdmin_withcond_2b17cc25d2cd9e2c54d8").
 */
function policyWire(p: StoredPolicy, requestedVersion: number): Record<string, unknown> {
  if (!p.written && p.bindings.length === 0) return { etag: p.etag };
  const conditional = hasConditions(p.bindings);
  let bindings: Binding[];
  let version: number;
  if (conditional && requestedVersion >= 3) {
    bindings = copyBindings(p.bindings);
    version = 3;
  } else if (conditional) {
    bindings = normalizeBindings(
      p.bindings.map((b) => ({
        role: b.condition ? `${b.role}_withcond_${sha256(conditionKey(b.condition)).toString('hex').slice(0, 20)}` : b.role,
        members: [...b.members],
      })),
    );
    version = 1;
  } else {
    bindings = copyBindings(p.bindings);
    version = 1;
  }
  const out: Record<string, unknown> = { version, etag: p.etag };
  if (bindings.length > 0) {
    out.bindings = bindings.map((b) => {
      const c = b.condition;
      return c
        ? { role: b.role, members: b.members, condition: { expression: c.expression, title: c.title, ...(c.description ? { description: c.description } : {}) } }
        : { role: b.role, members: b.members };
    });
  }
  if (p.auditConfigs !== undefined && p.auditConfigs.length > 0) out.auditConfigs = p.auditConfigs;
  return out;
}

/** Parses the `bindings` of a request policy; shape errors are INVALID_ARGUMENT (emulator texts). */
function parseBindings(raw: unknown): Binding[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidArgument('Invalid JSON payload received. Invalid value at \'policy.bindings\': expected a list.');
  return raw.map((b, i): Binding => {
    if (!isRecord(b)) throw invalidArgument(`Invalid JSON payload received. Invalid value at 'policy.bindings[${i}]'.`);
    const role = typeof b.role === 'string' ? b.role : '';
    const members = Array.isArray(b.members) ? b.members.filter((m): m is string => typeof m === 'string') : [];
    const out: Binding = { role, members };
    if (isRecord(b.condition)) {
      const c = b.condition;
      const condition: GcpCondition = { title: typeof c.title === 'string' ? c.title : '', expression: typeof c.expression === 'string' ? c.expression : '' };
      if (typeof c.description === 'string' && c.description !== '') condition.description = c.description;
      out.condition = condition;
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

interface Project {
  projectId: string;
  projectNumber: string;
  displayName: string;
  policy: StoredPolicy;
}

interface NodePool {
  name: string;
  mode?: 'GKE_METADATA' | 'GCE_METADATA';
}

interface Cluster {
  project: string;
  location: string;
  name: string;
  workloadPool?: string;
  autopilot: boolean;
  nodePools: NodePool[];
  status: string;
}

interface ServiceAccount {
  project: string;
  accountId: string;
  email: string;
  uniqueId: string;
  displayName?: string;
  description?: string;
  policy: StoredPolicy;
  /** Requests still answered 404 (eventual consistency after create). */
  hiddenFor: number;
}

class State {
  /** By project id. */
  projects = new Map<string, Project>();
  /** By `project/location/name`. */
  clusters = new Map<string, Cluster>();
  /** By lower-cased email. */
  serviceAccounts = new Map<string, ServiceAccount>();
  /** Non-GKE pools: `projectNumber/poolId`. */
  pools = new Set<string>();
  /** Creations per email, so a re-created account gets a new unique id (as in IAM). */
  generations = new Map<string, number>();
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

type Op =
  | 'sts.token'
  | 'crm.v1.get'
  | 'crm.get'
  | 'crm.getIamPolicy'
  | 'crm.setIamPolicy'
  | 'container.getCluster'
  | 'container.getNodePool'
  | 'iam.create'
  | 'iam.get'
  | 'iam.delete'
  | 'iam.getIamPolicy'
  | 'iam.setIamPolicy'
  | 'unknown';

interface Route {
  api: GcpApiName;
  op: Op;
  write: boolean;
  project: string;
  location: string;
  cluster: string;
  nodePool: string;
  account: string;
  /** The container path used its legacy `zones/` form. */
  zonal: boolean;
}

/** The colon verb of the last segment: `x:getIamPolicy` → [`x`, `getIamPolicy`]. */
function splitVerb(seg: string): [string, string | undefined] {
  const i = seg.lastIndexOf(':');
  return i < 0 ? [seg, undefined] : [seg.slice(0, i), seg.slice(i + 1)];
}

function route(method: string, segs: string[]): Route {
  const r: Route = { api: 'iam', op: 'unknown', write: false, project: '', location: '', cluster: '', nodePool: '', account: '', zonal: false };
  const [version, s1, s2, s3, s4, s5, s6, s7, s8] = segs;
  const n = segs.length;
  if (version === 'v1' && s1 === 'token' && n === 2) {
    r.api = 'sts';
    if (method === 'POST') r.op = 'sts.token';
    return r;
  }
  if (version === 'v3' && s1 === 'projects' && n === 3 && s2 !== undefined) {
    r.api = 'crm';
    const [project, verb] = splitVerb(s2);
    r.project = project;
    if (verb === undefined && method === 'GET') r.op = 'crm.get';
    else if (verb === 'getIamPolicy' && method === 'POST') r.op = 'crm.getIamPolicy';
    else if (verb === 'setIamPolicy' && method === 'POST') {
      r.op = 'crm.setIamPolicy';
      r.write = true;
    }
    return r;
  }
  if (version === 'v3') {
    r.api = 'crm';
    return r;
  }
  if (version !== 'v1' || s1 !== 'projects' || s2 === undefined) return r;
  r.project = s2;
  if (n === 3) {
    r.api = 'crm';
    if (method === 'GET') r.op = 'crm.v1.get';
    return r;
  }
  if ((s3 === 'locations' || s3 === 'zones') && s5 === 'clusters') {
    r.api = 'container';
    r.zonal = s3 === 'zones';
    r.location = s4 ?? '';
    r.cluster = s6 ?? '';
    if (n === 7 && method === 'GET') r.op = 'container.getCluster';
    else if (n === 9 && s7 === 'nodePools' && method === 'GET') {
      r.op = 'container.getNodePool';
      r.nodePool = s8 ?? '';
    }
    return r;
  }
  if (s3 === 'serviceAccounts') {
    r.api = 'iam';
    if (n === 4 && method === 'POST') {
      r.op = 'iam.create';
      r.write = true;
    } else if (n === 5 && s4 !== undefined) {
      const [account, verb] = splitVerb(s4);
      r.account = account;
      if (verb === undefined && method === 'GET') r.op = 'iam.get';
      else if (verb === undefined && method === 'DELETE') {
        r.op = 'iam.delete';
        r.write = true;
      } else if (verb === 'getIamPolicy' && method === 'POST') r.op = 'iam.getIamPolicy';
      else if (verb === 'setIamPolicy' && method === 'POST') {
        r.op = 'iam.setIamPolicy';
        r.write = true;
      }
    }
    return r;
  }
  return r;
}

/** Service names and RPC names, for the ErrorInfo metadata of 401s. */
const SERVICE: Record<GcpApiName, string> = {
  iam: 'iam.googleapis.com',
  container: 'container.googleapis.com',
  crm: 'cloudresourcemanager.googleapis.com',
  sts: 'sts.googleapis.com',
};

const RPC: Record<Op, string> = {
  'sts.token': 'google.identity.sts.v1.SecurityTokenService.ExchangeToken',
  'crm.v1.get': 'google.cloudresourcemanager.v1.Projects.GetProject',
  'crm.get': 'google.cloud.resourcemanager.v3.Projects.GetProject',
  'crm.getIamPolicy': 'google.cloud.resourcemanager.v3.Projects.GetIamPolicy',
  'crm.setIamPolicy': 'google.cloud.resourcemanager.v3.Projects.SetIamPolicy',
  'container.getCluster': 'google.container.v1.ClusterManager.GetCluster',
  'container.getNodePool': 'google.container.v1.ClusterManager.GetNodePool',
  'iam.create': 'google.iam.admin.v1.IAM.CreateServiceAccount',
  'iam.get': 'google.iam.admin.v1.IAM.GetServiceAccount',
  'iam.delete': 'google.iam.admin.v1.IAM.DeleteServiceAccount',
  'iam.getIamPolicy': 'google.iam.admin.v1.IAM.GetIamPolicy',
  'iam.setIamPolicy': 'google.iam.admin.v1.IAM.SetIamPolicy',
  unknown: '',
};

/** The IAM permission each operation checks (for 403 texts). */
const PERMISSION: Record<Op, string> = {
  'sts.token': '',
  'crm.v1.get': 'resourcemanager.projects.get',
  'crm.get': 'resourcemanager.projects.get',
  'crm.getIamPolicy': 'resourcemanager.projects.getIamPolicy',
  'crm.setIamPolicy': 'resourcemanager.projects.setIamPolicy',
  'container.getCluster': 'container.clusters.get',
  'container.getNodePool': 'container.clusters.get',
  'iam.create': 'iam.serviceAccounts.create',
  'iam.get': 'iam.serviceAccounts.get',
  'iam.delete': 'iam.serviceAccounts.delete',
  'iam.getIamPolicy': 'iam.serviceAccounts.getIamPolicy',
  'iam.setIamPolicy': 'iam.serviceAccounts.setIamPolicy',
  unknown: '',
};

// ---------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Run after the answer is written (the concurrent-writer switch). */
  after?: () => void;
  /** Destroy the socket instead of answering (a status-0 fault, or dropAnswerNext). */
  drop?: boolean;
}

/** Thrown for a status-0 failNext fault: the request gets no answer at all. */
class DroppedConnection extends Error {}

interface QueuedFailure {
  method: string;
  pathRegex: RegExp;
  remaining: number;
  /** A status-0 fault: no answer at all. */
  drop?: boolean;
  make: (r: Route) => GoogleError | OAuthError;
}

interface Race {
  resource: string;
  mutate: (policy: GcpPolicy) => GcpPolicy | void;
}

class GcpEmulatorImpl implements GcpEmulator {
  url = '';
  log: GcpRequestRecord[] = [];
  faults: GcpFaults;
  onResponse?: (record: GcpRequestRecord) => void;

  private port = 0;
  private server: Server | undefined;
  private state = new State();
  private failures: QueuedFailure[] = [];
  private answerDrops: Array<{ method: string; pathRegex: RegExp; remaining: number }> = [];
  private denies: Array<{ method: string; pathRegex: RegExp }> = [];
  private races: Race[] = [];
  private gathers: Gathering[] = [];
  private hideNewAccountsFor = 0;
  /** Issued access tokens → expiry (ms). Survive reset(), as a client's cached token would against a wiped project. */
  private tokens = new Map<string, number>();
  private etagCounter = 0;

  private constructor() {
    const self = this;
    const faults: GcpFaults = {
      latencyMs: 0,
      failNext(method, pathRegex, status, statusText, message, times = 1) {
        self.failures.push({
          method: method.toUpperCase(),
          pathRegex,
          remaining: times,
          ...(status === 0 ? { drop: true } : {}),
          make: (r) => (r.api === 'sts' ? new OAuthError(status, statusText, message) : new GoogleError(status, statusText, message)),
        });
      },
      dropAnswerNext(method, pathRegex, times = 1) {
        self.answerDrops.push({ method: method.toUpperCase(), pathRegex, remaining: times });
      },
      quotaExceeded(method, pathRegex, times = 1) {
        self.failures.push({ method: method.toUpperCase(), pathRegex, remaining: times, make: (r) => self.quotaError(r) });
      },
      deny(method, pathRegex) {
        self.denies.push({ method: method.toUpperCase(), pathRegex });
      },
      raceNextPolicyWrite(resource, mutate) {
        // Matched when the read happens (the account may not exist yet), in any of its spellings.
        self.races.push({ resource, mutate });
      },
      newServiceAccountNotFoundFor(calls) {
        self.hideNewAccountsFor = Math.max(0, calls);
      },
      gather(method, pathRegex, count, timeoutMs = 5000) {
        self.gathers.push({ method: method.toUpperCase(), pathRegex, count, timeoutMs, waiting: [] });
      },
      clear() {
        self.failures = [];
        self.answerDrops = [];
        self.denies = [];
        self.races = [];
        for (const g of [...self.gathers]) self.release(g);
        self.hideNewAccountsFor = 0;
        for (const sa of self.state.serviceAccounts.values()) sa.hiddenFor = 0;
        faults.latencyMs = 0;
      },
    };
    this.faults = faults;
  }

  static async start(): Promise<GcpEmulator> {
    const emu = new GcpEmulatorImpl();
    await emu.listen();
    return emu;
  }

  private async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // Only reachable on a broken socket or an emulator bug; never leave the client hanging.
        if (res.headersSent) return;
        res.writeHead(500, { 'Content-Type': 'application/json; charset=UTF-8' });
        res.end(JSON.stringify({ error: { code: 500, message: `gcp emulator: ${String(e)}`, status: 'INTERNAL' } }));
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}/`;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // gaxios (node-fetch agent) keeps connections alive; close() alone would wait for them to idle out.
      server.closeAllConnections();
    });
  }

  writes(): GcpRequestRecord[] {
    return this.log.filter((r) => r.write);
  }

  reset(): void {
    this.state = new State();
    this.log.length = 0;
    this.faults.clear();
  }

  // --- credentials ------------------------------------------------------------------------------

  writeCredentialsFile(path: string, opts: WriteCredentialsOptions = {}): void {
    const projectNumber = opts.projectNumber ?? '123456789012';
    const audience = opts.audience ?? `//iam.googleapis.com/projects/${projectNumber}/locations/global/workloadIdentityPools/wid-test-pool/providers/wid-test-provider`;
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true });
    const tokenFile = join(dir, `${basename(path).replace(/\.json$/i, '')}.subject-token`);
    // Any JWT-looking text will do: the emulator's STS does not verify the subject token.
    const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const jwt = `${b64u({ alg: 'RS256', typ: 'JWT', kid: 'wid-emulator' })}.${b64u({ iss: 'https://oidc.wid.test', sub: 'system:serviceaccount:wid:wid-test', aud: audience, iat: now, exp: now + 86400 })}.c2lnbmF0dXJl`;
    writeFileSync(tokenFile, jwt);
    // The shape `gcloud iam workload-identity-pools create-cred-config --credential-source-file` writes,
    // plus cloud_resource_manager_url (a google-auth-library option) so that IdentityPoolClient#getProjectId
    // asks this server rather than cloudresourcemanager.googleapis.com.
    const config = {
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${this.url}v1/token`,
      credential_source: { file: tokenFile, format: { type: 'text' } },
      cloud_resource_manager_url: `${this.url}v1/projects/`,
    };
    writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
  }

  issueToken(): string {
    // Federated STS tokens start `ya29.d.`; the rest is opaque.
    const token = `ya29.d.${randomBytes(48).toString('base64url')}`;
    this.tokens.set(token, Date.now() + TOKEN_LIFETIME_S * 1000);
    return token;
  }

  // --- seeding and inspection -------------------------------------------------------------------

  seedProject(p: SeedProjectInput): void {
    const existing = this.state.projects.get(p.projectId);
    if (existing) {
      existing.projectNumber = p.projectNumber;
      if (p.displayName !== undefined) existing.displayName = p.displayName;
      return;
    }
    // A project always has an owner; its policy is a written one (version 1, a real etag).
    const policy: StoredPolicy = { bindings: [{ role: 'roles/owner', members: ['user:owner@example.com'] }], etag: this.nextEtag(), written: true };
    this.state.projects.set(p.projectId, { projectId: p.projectId, projectNumber: p.projectNumber, displayName: p.displayName ?? p.projectId, policy });
  }

  private ensureProject(projectId: string): Project {
    const existing = this.state.projects.get(projectId);
    if (existing) return existing;
    this.seedProject({ projectId, projectNumber: digitsFrom(`project-number:${projectId}`, 12, '4') });
    return this.state.projects.get(projectId) as Project;
  }

  seedCluster(c: SeedClusterInput): void {
    this.ensureProject(c.project);
    const autopilot = c.autopilot ?? false;
    // Autopilot clusters always have workload identity (gcp.md §1.2).
    const workloadPool = c.workloadPool ?? (autopilot ? `${c.project}.svc.id.goog` : undefined);
    const nodePools: NodePool[] = c.nodePools?.map((np) => ({ ...np })) ?? [
      workloadPool !== undefined ? { name: 'default-pool', mode: 'GKE_METADATA' } : { name: 'default-pool' },
    ];
    const cluster: Cluster = { project: c.project, location: c.location, name: c.name, autopilot, nodePools, status: c.status ?? 'RUNNING' };
    if (workloadPool !== undefined) cluster.workloadPool = workloadPool;
    this.state.clusters.set(`${c.project}/${c.location}/${c.name}`, cluster);
  }

  seedServiceAccount(sa: SeedServiceAccountInput): string {
    this.ensureProject(sa.project);
    return this.createAccount(sa.project, sa.accountId, sa.displayName, sa.description, 0).email;
  }

  seedWorkloadIdentityPool(p: { project: string; poolId: string }): string {
    const project = this.ensureProject(p.project);
    this.state.pools.add(`${project.projectNumber}/${p.poolId}`);
    return `projects/${project.projectNumber}/locations/global/workloadIdentityPools/${p.poolId}`;
  }

  setPolicy(resource: string, policy: { bindings: GcpBinding[] }): void {
    const stored = this.policyOf(resource);
    if (!stored) throw new Error(`gcp emulator: setPolicy: unknown resource ${resource}`);
    const bindings = normalizeBindings(copyBindings(policy.bindings));
    stored.bindings = bindings;
    stored.etag = this.nextEtag();
    stored.written = true;
  }

  getPolicy(resource: string): GcpPolicy {
    const stored = this.policyOf(resource);
    if (!stored) throw new Error(`gcp emulator: getPolicy: unknown resource ${resource}`);
    return this.policyForCallback(stored);
  }

  getServiceAccount(email: string): Record<string, unknown> | undefined {
    const sa = this.state.serviceAccounts.get(email.toLowerCase());
    return sa ? this.accountJson(sa) : undefined;
  }

  // --- shared state helpers ---------------------------------------------------------------------

  /** A new etag: 8 bytes, first byte 0x07 like IAM's (`BwXhqDs1abc=`), unique per change. */
  private nextEtag(): string {
    this.etagCounter += 1;
    const b = Buffer.alloc(8);
    b[0] = 0x07;
    b[1] = 0x06;
    b.writeUIntBE((Math.floor(Date.now() / 1000) * 1024 + this.etagCounter) % 2 ** 48, 2, 6);
    return b.toString('base64');
  }

  private projectByIdOrNumber(idOrNumber: string): Project | undefined {
    const byId = this.state.projects.get(idOrNumber);
    if (byId) return byId;
    for (const p of this.state.projects.values()) if (p.projectNumber === idOrNumber) return p;
    return undefined;
  }

  /** Finds an account by email or unique id; `project` `-` matches any project. */
  private findAccount(project: string, account: string): ServiceAccount | undefined {
    let sa = this.state.serviceAccounts.get(account.toLowerCase());
    if (!sa) for (const s of this.state.serviceAccounts.values()) if (s.uniqueId === account) sa = s;
    if (!sa) return undefined;
    if (project === '-') return sa;
    const p = this.projectByIdOrNumber(project);
    return p && p.projectId === sa.project ? sa : undefined;
  }

  /** `projects/P` or `projects/P/serviceAccounts/EMAIL|ID` (P an id, a number, or `-` for accounts) → the canonical name. */
  private canonicalResource(resource: string): string | undefined {
    const segs = resource.replace(/^\/+/, '').split('/');
    if (segs[0] !== 'projects' || segs[1] === undefined) return undefined;
    if (segs.length === 2) {
      const p = this.projectByIdOrNumber(segs[1]);
      return p ? `projects/${p.projectId}` : undefined;
    }
    if (segs.length === 4 && segs[2] === 'serviceAccounts' && segs[3] !== undefined) {
      const sa = this.findAccount(segs[1], segs[3]);
      return sa ? `projects/${sa.project}/serviceAccounts/${sa.email}` : undefined;
    }
    return undefined;
  }

  private policyOf(resource: string): StoredPolicy | undefined {
    const canonical = this.canonicalResource(resource);
    if (canonical === undefined) return undefined;
    const segs = canonical.split('/');
    if (segs.length === 2) return this.state.projects.get(segs[1] ?? '')?.policy;
    return this.state.serviceAccounts.get((segs[3] ?? '').toLowerCase())?.policy;
  }

  private policyForCallback(p: StoredPolicy): GcpPolicy {
    const wire = policyWire(p, 3);
    return { version: typeof wire.version === 'number' ? wire.version : 0, etag: p.etag, bindings: copyBindings(p.bindings) };
  }

  private createAccount(project: string, accountId: string, displayName: string | undefined, description: string | undefined, hiddenFor: number): ServiceAccount {
    const email = `${accountId}@${project}.iam.gserviceaccount.com`;
    const generation = (this.state.generations.get(email) ?? 0) + 1;
    this.state.generations.set(email, generation);
    // Unique ids are 21 digits starting with 1 (mockgcp's recorded responses; gcloud output).
    const uniqueId = digitsFrom(`unique-id:${email}#${generation}`, 21, '1');
    const sa: ServiceAccount = { project, accountId, email, uniqueId, policy: emptyPolicy(), hiddenFor };
    if (displayName !== undefined && displayName !== '') sa.displayName = displayName;
    if (description !== undefined && description !== '') sa.description = description;
    this.state.serviceAccounts.set(email.toLowerCase(), sa);
    return sa;
  }

  /**
   * ServiceAccount as IAM returns it (k8s-config-connector mockgcp/mockiam testdata/serviceaccount/crud/_http.log,
   * recorded against the real API): empty strings and `disabled: false` are left out (proto3 JSON),
   * `etag` is the deprecated constant-looking value, `oauth2ClientId` equals `uniqueId`.
   */
  private accountJson(sa: ServiceAccount): Record<string, unknown> {
    const out: Record<string, unknown> = { name: `projects/${sa.project}/serviceAccounts/${sa.email}`, projectId: sa.project, uniqueId: sa.uniqueId, email: sa.email };
    if (sa.displayName !== undefined) out.displayName = sa.displayName;
    out.etag = 'MDEwMjE5MjA=';
    if (sa.description !== undefined) out.description = sa.description;
    out.oauth2ClientId = sa.uniqueId;
    return out;
  }

  /** Whether a workload identity pool exists: GKE creates `PROJECT.svc.id.goog` with the first WI cluster (gcp.md §0.5). */
  private poolExists(pool: string, projectNumber?: string): boolean {
    for (const c of this.state.clusters.values()) {
      if (c.workloadPool !== pool) continue;
      if (projectNumber === undefined || this.state.projects.get(c.project)?.projectNumber === projectNumber) return true;
    }
    for (const k of this.state.pools) {
      const [number, id] = k.split('/');
      if (id === pool && (projectNumber === undefined || number === projectNumber)) return true;
    }
    return false;
  }

  // --- request handling -----------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const segs = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      });
    const path = `/${segs.join('/')}`;
    const method = (req.method ?? 'GET').toUpperCase();
    const query = Object.fromEntries(url.searchParams);
    const r = route(method, segs);
    const record: GcpRequestRecord = { method, path, query, status: 0, write: r.write, api: r.api };
    if (r.api === 'sts') {
      const form = new URLSearchParams(rawBody);
      // Never record the subject (or actor) token.
      record.body = Object.fromEntries([...form].filter(([k]) => k !== 'subject_token' && k !== 'actor_token'));
    } else if (rawBody !== '') {
      try {
        record.body = JSON.parse(rawBody);
      } catch {
        record.body = rawBody;
      }
    }
    this.log.push(record);

    if (this.faults.latencyMs > 0) await delay(this.faults.latencyMs);
    await this.gathered(method, path);

    let reply: Reply;
    try {
      reply = r.api === 'sts' ? this.handleSts(r, method, path, rawBody) : this.handleApi(req, r, method, path, query, rawBody);
    } catch (e) {
      if (e instanceof GoogleError) reply = { status: e.code, body: e.body(), ...(e.opts.headers ? { headers: e.opts.headers } : {}) };
      else if (e instanceof OAuthError) reply = { status: e.status, body: { error: e.error, error_description: e.message } };
      else if (e instanceof DroppedConnection) reply = { status: 0, body: undefined, drop: true };
      else throw e;
    }
    if (reply.drop) {
      // No answer: the client sees the connection reset (a network error), whether or not the request was handled.
      record.status = 0;
      req.socket.destroy();
      reply.after?.();
      this.onResponse?.(record);
      return;
    }
    record.status = reply.status;
    const text = `${JSON.stringify(reply.body, null, 2)}\n`;
    const headers: Record<string, string> =
      r.api === 'sts'
        ? { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate', Pragma: 'no-cache' }
        : {
            'Content-Type': 'application/json; charset=UTF-8',
            Vary: 'Origin, X-Origin, Referer',
            Server: 'ESF',
            'Cache-Control': 'private',
            'X-XSS-Protection': '0',
            'X-Frame-Options': 'SAMEORIGIN',
            'X-Content-Type-Options': 'nosniff',
          };
    res.writeHead(reply.status, { ...headers, ...(reply.headers ?? {}), 'Content-Length': String(Buffer.byteLength(text)) });
    res.end(text);
    try {
      reply.after?.();
    } catch (e) {
      // A throwing raceNextPolicyWrite callback: the answer is already out, so say so where the test runner shows it.
      process.stderr.write(`gcp emulator: raceNextPolicyWrite callback threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    this.onResponse?.(record);
  }

  /** faults.gather: waits while a gathering this request belongs to is not complete. */
  private async gathered(method: string, path: string): Promise<void> {
    const g = this.gathers.find((x) => (x.method === '*' || x.method === method) && x.pathRegex.test(path));
    if (!g) return;
    await new Promise<void>((resolve) => {
      g.waiting.push(resolve);
      if (g.waiting.length >= g.count) this.release(g);
      else if (g.waiting.length === 1) g.timer = setTimeout(() => this.release(g), g.timeoutMs);
    });
  }

  private release(g: Gathering): void {
    const i = this.gathers.indexOf(g);
    if (i >= 0) this.gathers.splice(i, 1);
    if (g.timer) clearTimeout(g.timer);
    for (const go of g.waiting.splice(0)) go();
  }

  private takeFailure(method: string, path: string): QueuedFailure | undefined {
    const i = this.failures.findIndex((f) => (f.method === '*' || f.method === method) && f.pathRegex.test(path));
    const f = this.failures[i];
    if (i < 0 || !f) return undefined;
    f.remaining -= 1;
    if (f.remaining <= 0) this.failures.splice(i, 1);
    if (f.drop) throw new DroppedConnection();
    return f;
  }

  /** dropAnswerNext: true (and one fewer pending) when this request's answer is to be lost. */
  private takeAnswerDrop(method: string, path: string): boolean {
    const d = this.answerDrops.find((x) => (x.method === '*' || x.method === method) && x.pathRegex.test(path));
    if (!d) return false;
    d.remaining -= 1;
    if (d.remaining <= 0) this.answerDrops.splice(this.answerDrops.indexOf(d), 1);
    return true;
  }

  // --- STS --------------------------------------------------------------------------------------

  /**
   * `POST /v1/token` (RFC 8693 token exchange), as google-auth-library 10.5.0's StsCredentials sends it:
   * form body `grant_type=urn:ietf:params:oauth:grant-type:token-exchange&audience=…&scope=https://www.googleapis.com/auth/cloud-platform&requested_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token=…&subject_token_type=urn:ietf:params:oauth:token-type:jwt`
   * (gcp.md §2.6). Answers `{access_token, issued_token_type, token_type: "Bearer", expires_in}`.
   * The subject token is not verified.
   */
  private handleSts(r: Route, method: string, path: string, rawBody: string): Reply {
    if (r.op !== 'sts.token') throw new OAuthError(404, 'not_found', `gcp emulator: ${method} ${path} is not implemented`);
    const failure = this.takeFailure(method, path);
    if (failure) throw failure.make(r);
    const form = new URLSearchParams(rawBody);
    const grantType = form.get('grant_type');
    // Wording of the next three checks is approximate (no capture of these STS texts was available).
    if (grantType === null) throw new OAuthError(400, 'invalid_request', 'Missing required parameter: grant_type.');
    if (grantType !== STS_GRANT_TYPE) throw new OAuthError(400, 'unsupported_grant_type', `Invalid value for "grant_type". Expected "${STS_GRANT_TYPE}".`);
    const subjectTokenType = form.get('subject_token_type') ?? '';
    if (!SUBJECT_TOKEN_TYPES.has(subjectTokenType)) throw new OAuthError(400, 'invalid_request', `Invalid value for "subject_token_type": "${subjectTokenType}".`);
    if ((form.get('subject_token') ?? '') === '') throw new OAuthError(400, 'invalid_request', 'Missing required parameter: subject_token.');
    const requested = form.get('requested_token_type');
    if (requested !== null && requested !== ACCESS_TOKEN_TYPE) throw new OAuthError(400, 'invalid_request', `Invalid value for "requested_token_type": "${requested}".`);
    const audience = form.get('audience') ?? '';
    // A workload (or workforce) pool provider, or GKE's identitynamespace form (gcp.md §1.1).
    const validAudience =
      /^\/\/iam\.googleapis\.com\/projects\/\d+\/locations\/global\/workloadIdentityPools\/[^/]+\/providers\/[^/]+$/.test(audience) ||
      /^\/\/iam\.googleapis\.com\/locations\/global\/workforcePools\/[^/]+\/providers\/[^/]+$/.test(audience) ||
      /^identitynamespace:[^:]+:.+$/.test(audience);
    if (!validAudience) {
      // Google STS's text for an audience naming no (enabled) pool provider.
      throw new OAuthError(
        400,
        'invalid_target',
        'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.',
      );
    }
    return { status: 200, body: { access_token: this.issueToken(), issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: TOKEN_LIFETIME_S } };
  }

  // --- Google APIs ------------------------------------------------------------------------------

  private handleApi(req: IncomingMessage, r: Route, method: string, path: string, query: Record<string, string>, rawBody: string): Reply {
    if (r.op === 'unknown') {
      // Google's front end answers an HTML "404. That's an error." page here; JSON is friendlier to the clients. Emulator text.
      throw new GoogleError(404, 'NOT_FOUND', `gcp emulator: ${method} ${path} is not implemented`);
    }
    this.authenticate(req, r);
    if (this.denies.some((d) => (d.method === '*' || d.method === method) && d.pathRegex.test(path))) throw this.permissionDenied(r);
    const failure = this.takeFailure(method, path);
    if (failure) throw failure.make(r);
    if (this.takeAnswerDrop(method, path)) {
      let after: (() => void) | undefined;
      try {
        after = this.dispatchApi(r, method, path, query, rawBody).after;
      } catch {
        // Handled, error or not; the answer is lost either way.
      }
      return { status: 0, body: undefined, drop: true, ...(after ? { after } : {}) };
    }
    return this.dispatchApi(r, method, path, query, rawBody);
  }

  /** The API request itself, past authentication and the injected faults. */
  private dispatchApi(r: Route, method: string, path: string, query: Record<string, string>, rawBody: string): Reply {
    let body: unknown;
    if (rawBody.trim() !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch (e) {
        throw invalidArgument(`Invalid JSON payload received. ${(e as Error).message}`);
      }
    }
    switch (r.op) {
      case 'crm.v1.get':
        return this.crmV1Get(r);
      case 'crm.get':
        return this.crmGet(r);
      case 'crm.getIamPolicy':
        return this.getIamPolicy(r, this.requestedVersion(isRecord(body) && isRecord(body.options) ? body.options.requestedPolicyVersion : undefined));
      case 'crm.setIamPolicy':
      case 'iam.setIamPolicy':
        return this.setIamPolicy(r, body);
      case 'container.getCluster':
        return this.getCluster(r);
      case 'container.getNodePool':
        return this.getNodePool(r);
      case 'iam.create':
        return this.createServiceAccount(r, body);
      case 'iam.get':
        return { status: 200, body: this.accountJson(this.visibleAccount(r)) };
      case 'iam.delete':
        return this.deleteServiceAccount(r);
      case 'iam.getIamPolicy':
        return this.getIamPolicy(r, this.requestedVersion(query['options.requestedPolicyVersion']));
      default:
        throw new GoogleError(404, 'NOT_FOUND', `gcp emulator: ${method} ${path} is not implemented`);
    }
  }

  /**
   * Bearer tokens this server issued (STS or issueToken), unexpired. Texts and ErrorInfo reasons are
   * Google's front end's (quoted in many threads, e.g. googleapis/google-api-nodejs-client issues;
   * "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other
   * valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.").
   */
  private authenticate(req: IncomingMessage, r: Route): void {
    const header = headerValue(req, 'authorization');
    const metadata = { service: SERVICE[r.api], method: RPC[r.op] };
    if (header === undefined || header.trim() === '') {
      throw new GoogleError(
        401,
        'UNAUTHENTICATED',
        `Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See ${DEVCONSOLE}.`,
        { details: [errorInfo('CREDENTIALS_MISSING', 'googleapis.com', metadata)], headers: { 'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/"' } },
      );
    }
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    const expiry = m?.[1] === undefined ? undefined : this.tokens.get(m[1]);
    if (expiry === undefined || expiry <= Date.now()) {
      throw new GoogleError(
        401,
        'UNAUTHENTICATED',
        `Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See ${DEVCONSOLE}.`,
        {
          details: [errorInfo(expiry === undefined ? 'ACCESS_TOKEN_TYPE_UNSUPPORTED' : 'ACCESS_TOKEN_EXPIRED', 'googleapis.com', metadata)],
          headers: { 'WWW-Authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
        },
      );
    }
  }

  /** The 403 each API answers when the caller lacks the permission (or the resource is not visible). */
  private permissionDenied(r: Route): GoogleError {
    const permission = PERMISSION[r.op];
    if (r.api === 'container') {
      // GKE's wording, e.g. `Required "container.clusters.get" permission(s) for "projects/p/locations/l/clusters/c".`
      return new GoogleError(403, 'PERMISSION_DENIED', `Required "${permission}" permission(s) for "projects/${r.project}/locations/${r.location}/clusters/${r.cluster}".`, { reason: 'forbidden' });
    }
    if (r.op === 'crm.v1.get') {
      // CRM v1 (GoogleCloudPlatform/magic-modules#3726: "googleapi: Error 403: The caller does not have permission, forbidden").
      return new GoogleError(403, 'PERMISSION_DENIED', 'The caller does not have permission', { reason: 'forbidden' });
    }
    if (r.api === 'crm') {
      // CRM v3: "Permission 'resourcemanager.projects.get' denied on resource '//cloudresourcemanager.googleapis.com/projects/x' (or it may not exist)."
      // with ErrorInfo IAM_PERMISSION_DENIED (k8s-config-connector mockgcp; a Vertex AI capture shows the ErrorInfo).
      return new GoogleError(403, 'PERMISSION_DENIED', `Permission '${permission}' denied on resource '//cloudresourcemanager.googleapis.com/projects/${r.project}' (or it may not exist).`, {
        details: [errorInfo('IAM_PERMISSION_DENIED', 'cloudresourcemanager.googleapis.com', { permission, resource: `projects/${r.project}` })],
      });
    }
    // IAM names no resource (hashicorp/terraform-provider-google#3349, #11208).
    return new GoogleError(403, 'PERMISSION_DENIED', `Permission '${permission}' denied on resource (or it may not exist).`, {
      details: [errorInfo('IAM_PERMISSION_DENIED', 'iam.googleapis.com', { permission })],
    });
  }

  /**
   * Google's quota text (python-docs-samples#3482: "Quota exceeded for quota metric 'Write requests' and
   * limit 'Write requests per minute' of service 'cloudkms.googleapis.com' for consumer 'project_number:1012616486416'.")
   * with ErrorInfo RATE_LIMIT_EXCEEDED and a Help link.
   */
  private quotaError(r: Route): GoogleError | OAuthError {
    if (r.api === 'sts') return new OAuthError(429, 'rate_limit_exceeded', 'Quota exceeded for quota metric \'Token exchange requests\' and limit \'Token exchange requests per minute\' of service \'sts.googleapis.com\'.');
    const kind = r.write ? 'Write' : 'Read';
    const service = SERVICE[r.api];
    const number = this.projectByIdOrNumber(r.project)?.projectNumber ?? [...this.state.projects.values()][0]?.projectNumber ?? '0';
    const message = `Quota exceeded for quota metric '${kind} requests' and limit '${kind} requests per minute' of service '${service}' for consumer 'project_number:${number}'.`;
    return new GoogleError(429, 'RESOURCE_EXHAUSTED', message, {
      reason: 'rateLimitExceeded',
      details: [
        errorInfo('RATE_LIMIT_EXCEEDED', 'googleapis.com', {
          quota_metric: `${service}/${kind.toLowerCase()}_requests`,
          quota_limit: `${kind}RequestsPerMinutePerProject`,
          quota_limit_value: kind === 'Read' ? '6000' : '600',
          consumer: `projects/${number}`,
          service,
          quota_location: 'global',
        }),
        { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Request a higher quota limit.', url: 'https://cloud.google.com/docs/quotas/help/request_increase' }] },
      ],
    });
  }

  /** requestedPolicyVersion: 0, 1 or 3 (Schema$GetPolicyOptions); absent = 0. */
  private requestedVersion(raw: unknown): number {
    if (raw === undefined || raw === null || raw === '') return 0;
    const n = Number(raw);
    if (n !== 0 && n !== 1 && n !== 3) {
      // Emulator text: the field doc says only that invalid values are rejected.
      throw invalidArgument(`Invalid requested policy version: ${String(raw)}. Valid values are 0, 1 and 3.`);
    }
    return n;
  }

  // --- Resource Manager -------------------------------------------------------------------------

  /** A project you cannot see answers 403 in CRM, never 404 (google-cloud-java#440: "intended behavior"). */
  private visibleProject(r: Route): Project {
    const p = this.projectByIdOrNumber(r.project);
    if (!p) throw this.permissionDenied(r);
    return p;
  }

  /** CRM v3 Project (googleapis nodejs sample output: name `projects/NUMBER`, projectId, state, displayName, times, etag). */
  private crmGet(r: Route): Reply {
    const p = this.visibleProject(r);
    return {
      status: 200,
      body: {
        name: `projects/${p.projectNumber}`,
        projectId: p.projectId,
        state: 'ACTIVE',
        displayName: p.displayName,
        createTime: FIXED_TIME,
        updateTime: FIXED_TIME,
        etag: sha256(`project-etag:${p.projectId}`).subarray(0, 16).toString('base64'),
      },
    };
  }

  /** CRM v1 Project (`projectNumber`, `lifecycleState`), as IdentityPoolClient#getProjectId reads it. */
  private crmV1Get(r: Route): Reply {
    const p = this.visibleProject(r);
    return { status: 200, body: { projectNumber: p.projectNumber, projectId: p.projectId, lifecycleState: 'ACTIVE', name: p.displayName, createTime: FIXED_TIME } };
  }

  // --- Kubernetes Engine ----------------------------------------------------------------------

  private findCluster(r: Route): Cluster {
    const project = this.projectByIdOrNumber(r.project);
    const c = project ? this.state.clusters.get(`${project.projectId}/${r.location}/${r.cluster}`) : undefined;
    if (!c) {
      // GKE's text (hashicorp/terraform-provider-google#7851: "Not found: projects/hoge-dev/zones/asia-northeast1-a/clusters/hoge-tf., notFound").
      const kind = r.zonal ? 'zones' : 'locations';
      throw new GoogleError(404, 'NOT_FOUND', `Not found: projects/${r.project}/${kind}/${r.location}/clusters/${r.cluster}.`, { reason: 'notFound' });
    }
    return c;
  }

  private getCluster(r: Route): Reply {
    return { status: 200, body: this.clusterJson(this.findCluster(r)) };
  }

  private getNodePool(r: Route): Reply {
    const c = this.findCluster(r);
    const np = c.nodePools.find((p) => p.name === r.nodePool);
    if (!np) {
      const kind = r.zonal ? 'zones' : 'locations';
      // Same form as the cluster text, one level down (no capture of the node-pool text was available).
      throw new GoogleError(404, 'NOT_FOUND', `Not found: projects/${r.project}/${kind}/${r.location}/clusters/${r.cluster}/nodePools/${r.nodePool}.`, { reason: 'notFound' });
    }
    return { status: 200, body: this.nodePoolJson(c, np) };
  }

  private clusterSelfLink(c: Cluster): string {
    // GKE writes `zones/` for zonal clusters and `locations/` for regional ones.
    const zonal = /-[a-z]$/.test(c.location);
    return `https://container.googleapis.com/v1/projects/${c.project}/${zonal ? 'zones' : 'locations'}/${c.location}/clusters/${c.name}`;
  }

  private nodeLocations(c: Cluster): string[] {
    return /-[a-z]$/.test(c.location) ? [c.location] : [`${c.location}-a`, `${c.location}-b`, `${c.location}-c`];
  }

  /** A node pool's `config` (NodeConfig); `workloadMetadataConfig` only when the pool has a mode. */
  private nodeConfig(c: Cluster, np: NodePool): Record<string, unknown> {
    const config: Record<string, unknown> = {
      machineType: c.autopilot ? 'ek-standard-8' : 'e2-medium',
      diskSizeGb: 100,
      oauthScopes: ['https://www.googleapis.com/auth/cloud-platform'],
      metadata: { 'disable-legacy-endpoints': 'true' },
      imageType: 'COS_CONTAINERD',
      serviceAccount: 'default',
      diskType: 'pd-balanced',
      shieldedInstanceConfig: { enableSecureBoot: c.autopilot, enableIntegrityMonitoring: true },
    };
    if (np.mode !== undefined) config.workloadMetadataConfig = { mode: np.mode };
    return config;
  }

  private nodePoolJson(c: Cluster, np: NodePool): Record<string, unknown> {
    const selfLink = `${this.clusterSelfLink(c)}/nodePools/${np.name}`;
    const zone = this.nodeLocations(c)[0] ?? c.location;
    return {
      name: np.name,
      config: this.nodeConfig(c, np),
      initialNodeCount: c.autopilot ? 1 : 3,
      ...(c.autopilot ? { autoscaling: { enabled: true, maxNodeCount: 1000, autoprovisioned: true, locationPolicy: 'BALANCED' } } : {}),
      management: { autoUpgrade: true, autoRepair: true },
      maxPodsConstraint: { maxPodsPerNode: '110' },
      podIpv4CidrSize: 24,
      locations: this.nodeLocations(c),
      networkConfig: { podRange: 'gke-pods', podIpv4CidrBlock: '10.8.0.0/14' },
      selfLink,
      version: GKE_VERSION,
      instanceGroupUrls: [`https://www.googleapis.com/compute/v1/projects/${c.project}/zones/${zone}/instanceGroupManagers/gke-${c.name}-${np.name}-grp`],
      status: 'RUNNING',
      upgradeSettings: { maxSurge: 1, strategy: 'SURGE' },
      etag: sha256(`np-etag:${selfLink}:${np.mode ?? ''}`).toString('hex').slice(0, 36),
    };
  }

  /**
   * A Cluster as `GET …/clusters/C` returns it (gcp.md §1.2; field names from cluster_service.proto):
   * `workloadIdentityConfig` only when a pool is set, `autopilot: {}` on Standard clusters (proto3 JSON
   * leaves `enabled: false` out) and `{enabled: true}` on Autopilot, `nodeConfig` = the first pool's config.
   */
  private clusterJson(c: Cluster): Record<string, unknown> {
    const key = `${c.project}/${c.location}/${c.name}`;
    const h = sha256(`cluster:${key}`);
    const firstPool = c.nodePools[0];
    const out: Record<string, unknown> = { name: c.name };
    if (firstPool) out.nodeConfig = this.nodeConfig(c, firstPool);
    Object.assign(out, {
      masterAuth: { clusterCaCertificate: Buffer.from(`-----BEGIN CERTIFICATE-----\nwid-emulator ${key}\n-----END CERTIFICATE-----\n`).toString('base64') },
      loggingService: 'logging.googleapis.com/kubernetes',
      monitoringService: 'monitoring.googleapis.com/kubernetes',
      network: 'default',
      clusterIpv4Cidr: '10.8.0.0/14',
      addonsConfig: { httpLoadBalancing: {}, horizontalPodAutoscaling: {}, networkPolicyConfig: { disabled: true }, gcePersistentDiskCsiDriverConfig: { enabled: true } },
      subnetwork: 'default',
      nodePools: c.nodePools.map((np) => this.nodePoolJson(c, np)),
      locations: this.nodeLocations(c),
      labelFingerprint: h.subarray(0, 4).toString('hex'),
      legacyAbac: {},
      ipAllocationPolicy: { useIpAliases: true, clusterIpv4Cidr: '10.8.0.0/14', servicesIpv4Cidr: '34.118.224.0/20', stackType: 'IPV4' },
      masterAuthorizedNetworksConfig: {},
      maintenancePolicy: { resourceVersion: 'e3b0c442' },
      networkConfig: { network: `projects/${c.project}/global/networks/default`, subnetwork: `projects/${c.project}/regions/${c.location.replace(/-[a-z]$/, '')}/subnetworks/default`, datapathProvider: c.autopilot ? 'ADVANCED_DATAPATH' : 'LEGACY_DATAPATH' },
      defaultMaxPodsConstraint: { maxPodsPerNode: '110' },
      databaseEncryption: { state: 'DECRYPTED' },
      shieldedNodes: { enabled: true },
      releaseChannel: { channel: 'REGULAR' },
    });
    if (c.workloadPool !== undefined) out.workloadIdentityConfig = { workloadPool: c.workloadPool };
    Object.assign(out, {
      selfLink: this.clusterSelfLink(c),
      zone: c.location,
      endpoint: `34.${h[0] ?? 1}.${h[1] ?? 2}.${h[2] ?? 3}`,
      initialClusterVersion: GKE_VERSION,
      currentMasterVersion: GKE_VERSION,
      currentNodeVersion: GKE_VERSION,
      createTime: '2026-01-01T00:00:00+00:00',
      status: c.status,
      servicesIpv4Cidr: '34.118.224.0/20',
      currentNodeCount: c.autopilot ? 0 : 3 * c.nodePools.length,
      location: c.location,
      autopilot: c.autopilot ? { enabled: true } : {},
      id: h.subarray(0, 16).toString('hex'),
      loggingConfig: { componentConfig: { enableComponents: ['SYSTEM_COMPONENTS', 'WORKLOADS'] } },
      monitoringConfig: { componentConfig: { enableComponents: ['SYSTEM_COMPONENTS'] } },
      etag: sha256(`cluster-etag:${key}:${c.workloadPool ?? ''}`).toString('hex').slice(0, 36),
    });
    return out;
  }

  // --- IAM service accounts --------------------------------------------------------------------

  /** The account named in the path, honouring the post-create 404 window. Missing: 404 "Unknown service account" (`-`: 403). */
  private visibleAccount(r: Route): ServiceAccount {
    const sa = this.findAccount(r.project, r.account);
    if (sa && sa.hiddenFor > 0) {
      sa.hiddenFor -= 1;
    } else if (sa) {
      return sa;
    }
    // `projects/-/serviceAccounts/X` answers 403 rather than 404 for a missing account (gcp.md §2.7).
    if (r.project === '-') throw this.permissionDenied(r);
    // IAM's text for an unknown account, with no `errors` array (a 2024 gcloud --log-http capture:
    // {"error":{"code":404,"message":"Unknown service account","status":"NOT_FOUND"}}).
    throw new GoogleError(404, 'NOT_FOUND', 'Unknown service account');
  }

  private createServiceAccount(r: Route, body: unknown): Reply {
    const project = this.projectByIdOrNumber(r.project);
    if (!project) throw this.permissionDenied(r);
    const req = isRecord(body) ? body : {};
    const accountId = typeof req.accountId === 'string' ? req.accountId : '';
    if (accountId.length < 6 || accountId.length > 30 || !ACCOUNT_ID.test(accountId)) {
      // "Invalid form of account ID …" is IAM's prefix for malformed account ids (quoted in many threads); the
      // rest restates the accountId field doc (emulator text).
      throw invalidArgument(`Invalid form of account ID ${accountId}. Service account ID must be between 6 and 30 characters and match the regular expression [a-z]([-a-z0-9]*[a-z0-9]).`);
    }
    const email = `${accountId}@${project.projectId}.iam.gserviceaccount.com`;
    if (this.state.serviceAccounts.has(email)) {
      // gcp.md §2.7 (java-docs-samples#3605 for `errors`, marketing-analytics-jumpstart#200 for the ResourceInfo detail).
      throw new GoogleError(409, 'ALREADY_EXISTS', `Service account ${accountId} already exists within project projects/${project.projectId}.`, {
        reason: 'alreadyExists',
        details: [{ '@type': 'type.googleapis.com/google.rpc.ResourceInfo', resourceName: `projects/${project.projectId}/serviceAccounts/${email}` }],
      });
    }
    const sa = isRecord(req.serviceAccount) ? req.serviceAccount : {};
    const created = this.createAccount(
      project.projectId,
      accountId,
      typeof sa.displayName === 'string' ? sa.displayName : undefined,
      typeof sa.description === 'string' ? sa.description : undefined,
      this.hideNewAccountsFor,
    );
    return { status: 200, body: this.accountJson(created) };
  }

  /**
   * Deletes the account and its policy. As in IAM, bindings that named it elsewhere now show
   * `deleted:serviceAccount:EMAIL?uid=UNIQUE_ID`. Answers `{}`.
   */
  private deleteServiceAccount(r: Route): Reply {
    const sa = this.findAccount(r.project, r.account);
    if (!sa) {
      if (r.project === '-') throw this.permissionDenied(r);
      throw new GoogleError(404, 'NOT_FOUND', 'Unknown service account');
    }
    this.state.serviceAccounts.delete(sa.email.toLowerCase());
    const from = `serviceAccount:${sa.email}`;
    const to = `deleted:serviceAccount:${sa.email}?uid=${sa.uniqueId}`;
    const policies = [...[...this.state.projects.values()].map((p) => p.policy), ...[...this.state.serviceAccounts.values()].map((s) => s.policy)];
    for (const p of policies) {
      if (!p.bindings.some((b) => b.members.includes(from))) continue;
      p.bindings = normalizeBindings(p.bindings.map((b) => ({ ...b, members: b.members.map((m) => (m === from ? to : m)) })));
      p.etag = this.nextEtag();
    }
    return { status: 200, body: {} };
  }

  // --- IAM policies (projects and service accounts) -------------------------------------------

  /** The stored policy and canonical name of the route's resource (404/403 as its API answers). */
  private policyTarget(r: Route): { policy: StoredPolicy; resource: string } {
    if (r.api === 'crm') {
      const p = this.visibleProject(r);
      return { policy: p.policy, resource: `projects/${p.projectId}` };
    }
    const sa = this.visibleAccount(r);
    return { policy: sa.policy, resource: `projects/${sa.project}/serviceAccounts/${sa.email}` };
  }

  private getIamPolicy(r: Route, requestedVersion: number): Reply {
    const { policy, resource } = this.policyTarget(r);
    const reply: Reply = { status: 200, body: policyWire(policy, requestedVersion) };
    const i = this.races.findIndex((x) => x.resource === resource || this.canonicalResource(x.resource) === resource);
    const race = this.races[i];
    if (i >= 0 && race) {
      this.races.splice(i, 1);
      // Another writer gets in right after this read was answered.
      reply.after = () => {
        const current = this.policyForCallback(policy);
        const result = race.mutate(current) ?? current;
        policy.bindings = normalizeBindings(copyBindings(result.bindings));
        policy.etag = this.nextEtag();
        policy.written = true;
      };
    }
    return reply;
  }

  /**
   * setIamPolicy `{policy, updateMask?}`, with Google's semantics (Schema$Policy / Schema$SetIamPolicyRequest
   * docs in @googleapis/iam v1.ts, gcp.md §2.7):
   * - the update mask defaults to `bindings,etag`; fields outside it are left as stored;
   * - with an etag (in the mask) that is not the current one: 409 ABORTED;
   * - with a current etag, a policy version below the stored one, or conditions in a version < 3 policy: 400;
   * - without an etag the write is blind: no version checks ("If you omit this field, then IAM allows you to
   *   overwrite a version 3 policy with a version 1 policy, and all of the conditions in the version 3 policy are lost");
   * - members are validated; bindings with the same role and condition are merged, empty ones dropped;
   * - the answer is the stored policy (version 3 when it has conditions, else 1) with a new etag.
   */
  private setIamPolicy(r: Route, body: unknown): Reply {
    const { policy: stored } = this.policyTarget(r);
    if (!isRecord(body) || !isRecord(body.policy)) {
      // Emulator text (SetIamPolicyRequest.policy is REQUIRED).
      throw invalidArgument('Invalid JSON payload received. The request must have a "policy" field.');
    }
    const incoming = body.policy;
    const mask = new Set(splitComma(typeof body.updateMask === 'string' && body.updateMask.trim() !== '' ? body.updateMask : 'bindings,etag').map((f) => (f === 'audit_configs' ? 'auditConfigs' : f)));
    for (const f of mask) {
      if (!['bindings', 'etag', 'auditConfigs', 'version'].includes(f)) throw invalidArgument(`Invalid update_mask path: "${f}".`); // emulator text
    }
    const version = incoming.version === undefined || incoming.version === null ? 0 : Number(incoming.version);
    if (version !== 0 && version !== 1 && version !== 3) throw invalidArgument(`Invalid policy version: ${String(incoming.version)}. Valid values are 0, 1 and 3.`); // emulator text
    const etag = typeof incoming.etag === 'string' ? incoming.etag : '';
    const bindings = mask.has('bindings') ? parseBindings(incoming.bindings) : copyBindings(stored.bindings);

    if (etag !== '' && mask.has('etag')) {
      if (etag !== stored.etag) {
        // gcp.md §0.4/§2.7; the ETag sentence as IAM v1 and CRM v3 append it (pulumi/pulumi-gcp#1028,
        // pulumi/pulumi-google-native#862), the `aborted` reason as leonardo#737's capture shows it.
        const theirs = Buffer.from(etag, 'base64');
        const ours = Buffer.from(stored.etag, 'base64');
        throw new GoogleError(
          409,
          'ABORTED',
          `There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff. The request's ETag '${cEscape(theirs)}' did not match the current policy's ETag '${cEscape(ours)}'.`,
          { reason: 'aborted' },
        );
      }
      const storedVersion = hasConditions(stored.bindings) ? 3 : 1;
      const effective = version === 0 ? 1 : version;
      if (effective < storedVersion) {
        // hashicorp/vault-plugin-secrets-gcp#88 ("Specified policy version (1) cannot be less than the existing policy version (3). For more information, please refer to https://cloud.google.com/iam/docs/policies#versions").
        throw invalidArgument(`Specified policy version (${effective}) cannot be less than the existing policy version (${storedVersion}). For more information, please refer to ${VERSIONS_DOC}.`);
      }
      if (effective < 3 && hasConditions(bindings)) {
        // Emulator text: "Any operation that affects conditional role bindings must specify version 3" (Policy.version doc).
        throw invalidArgument(`Policy version ${effective} cannot contain conditional role bindings; set version 3. For more information, please refer to ${VERSIONS_DOC}.`);
      }
    }

    if (mask.has('bindings')) this.validateBindings(bindings);
    const normalized = normalizeBindings(bindings);
    let changed = !stored.written || !sameBindings(normalized, stored.bindings);
    stored.bindings = normalized;
    if (mask.has('auditConfigs')) {
      const audit = Array.isArray(incoming.auditConfigs) ? incoming.auditConfigs : [];
      changed ||= JSON.stringify(audit) !== JSON.stringify(stored.auditConfigs ?? []);
      stored.auditConfigs = audit;
    }
    if (changed) stored.etag = this.nextEtag();
    stored.written = true;
    return { status: 200, body: policyWire(stored, 3) };
  }

  /** Roles and members, checked the way IAM checks them when a policy is written. */
  private validateBindings(bindings: Binding[]): void {
    let count = 0;
    for (const b of bindings) {
      if (b.role === '') throw invalidArgument('Invalid JSON payload received. Each binding must name a role.'); // emulator text
      if (b.role.includes('_withcond_')) {
        // A version 1 read written back: the mangled role is not a role. IAM's unsupported-role wording.
        throw invalidArgument(`Role ${b.role} is not supported for this resource.`);
      }
      if (b.condition && b.condition.expression.trim() === '') throw invalidArgument('Condition expression must not be empty.'); // emulator text
      for (const m of b.members) {
        count += 1;
        this.validateMember(m);
      }
    }
    if (count > MAX_POLICY_MEMBERS) {
      // Wording as quoted in terraform-provider-google threads about the 1,500-principal limit.
      throw invalidArgument(`The number of members in the policy (${count.toLocaleString('en-US')}) is larger than the maximum allowed size ${MAX_POLICY_MEMBERS.toLocaleString('en-US')}.`);
    }
  }

  private validateMember(m: string): void {
    if (m === 'allUsers' || m === 'allAuthenticatedUsers') return;
    if (m.startsWith('principal://') || m.startsWith('principalSet://')) {
      this.validatePrincipal(m);
      return;
    }
    const colon = m.indexOf(':');
    const type = colon < 0 ? '' : m.slice(0, colon);
    const value = colon < 0 ? '' : m.slice(colon + 1);
    if (!['user', 'group', 'domain', 'serviceAccount', 'deleted', 'projectOwner', 'projectEditor', 'projectViewer'].includes(type) || value === '') {
      // IAM's text for a member without a known type prefix.
      throw invalidArgument('Policy members must be of the form "<type>:<value>".');
    }
    if (type !== 'serviceAccount') return;
    const ksa = /^(.+\.svc\.id\.goog)\[([^/\]]+)\/([^/\]]+)\]$/.exec(value);
    if (ksa) {
      const pool = ksa[1] ?? '';
      if (!this.poolExists(pool)) {
        // gcp.md §2.7 (terraform-google-kubernetes-engine#916: "..., badRequest").
        throw invalidArgument(`Identity Pool does not exist (${pool}). Please check that you specified a valid resource name as returned in the \`name\` attribute in the configuration API.`);
      }
      return;
    }
    if (!this.state.serviceAccounts.has(value.toLowerCase())) {
      // gcp.md §2.7 (GoogleCloudPlatform/generative-ai#944; midl-dev/tezos-on-gke#45 shows the `badRequest` reason).
      throw invalidArgument(`Service account ${value} does not exist.`);
    }
  }

  /**
   * `principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/subject/…`
   * and `principalSet://…`: the project must be given by NUMBER (an id there is "one of the most common
   * sources of INVALID_ARGUMENT", gcp.md §1.1) and the pool must exist. Workforce pool principals are
   * accepted as they are.
   */
  private validatePrincipal(m: string): void {
    const kind = m.startsWith('principalSet://') ? 'principalSet' : 'principal';
    if (/^principal(Set)?:\/\/iam\.googleapis\.com\/locations\/global\/workforcePools\/[^/]+\/.+$/.test(m)) return;
    const match = /^principal(?:Set)?:\/\/iam\.googleapis\.com\/projects\/([^/]+)\/locations\/global\/workloadIdentityPools\/([^/]+)\/(.+)$/.exec(m);
    const number = match?.[1];
    const pool = match?.[2];
    if (!match || number === undefined || pool === undefined || !/^\d+$/.test(number)) {
      // The real text starts "Invalid principalSet member" (two write-ups quoting gcloud for a malformed
      // principalSet); the member after the colon, and the principal:// variant, are emulator text.
      throw invalidArgument(`Invalid ${kind} member: ${m}`);
    }
    if (!this.poolExists(pool, number)) {
      // The GKE-pool text of gcp.md §2.7, applied to the pool named in the principal (by analogy).
      throw invalidArgument(`Identity Pool does not exist (${pool}). Please check that you specified a valid resource name as returned in the \`name\` attribute in the configuration API.`);
    }
  }
}
