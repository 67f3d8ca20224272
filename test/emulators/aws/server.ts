/**
 * In-memory emulator of the three AWS APIs `wid setup eks` talks to: IAM (awsQuery), STS (awsQuery)
 * and EKS (restJson1). Each API gets its own `node:http` listener on 127.0.0.1 (port 0); all three
 * share one account state. See SPEC.md next to this file for the per-endpoint contract.
 *
 * The emulator follows the real wire protocol closely enough for the real AWS SDK v3 clients to parse
 * every response: IAM/STS XML with `<member>` lists, `IsTruncated`/`Marker` paging, the `{Op}Result`
 * wrapper, `<ErrorResponse>` errors, and EKS JSON with the `x-amzn-ErrorType` header. Sources for the
 * error texts are cited inline: the AWS API reference, issue threads quoting real responses, and
 * /work/shared/reference/aws.md. Where no real text was available, the comment says so.
 *
 * Deliberately not emulated: SigV4 signature verification (only the presence and scope of the
 * Authorization header are checked), eventual consistency, inline role policies, instance profiles,
 * SAML providers, anything outside the actions listed in SPEC.md.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export type AwsService = 'iam' | 'sts' | 'eks';

export interface AwsRequestRecord {
  service: AwsService;
  /** IAM/STS: the `Action` parameter. EKS: the operation name (`DescribeCluster`, `ListClusters`). */
  action: string;
  /** True for actions that change state (Create/Update/Add/Remove/Delete/Attach/Detach/Tag/Untag/Put), whatever the outcome. */
  write: boolean;
  /** IAM/STS: the decoded form parameters minus Action/Version. EKS: the path label and the signing region. */
  params: Record<string, string>;
  /** The HTTP status the emulator answered with (0 while in flight, and when the connection was dropped). */
  status: number;
}

export interface AwsFault {
  /** 0: no answer at all, the connection is destroyed (`code` and `message` are then ignored). */
  status: number;
  code: string;
  message: string;
}

export interface AwsFaults {
  /**
   * The next `times` (default 1) calls of `action` fail with `err` (after the auth check, before any
   * state is touched). `action` is a bare name (`CreateRole`, `DescribeCluster`) or service-qualified
   * (`iam:CreateRole`). Repeated calls queue up in order. `status: 0` destroys the socket without an
   * answer (the request was lost: nothing changed; the client sees a network error).
   */
  failNext(action: string, err: AwsFault, times?: number): void;
  /**
   * The next `times` (default 1) calls of `action` that get past deny and failNext are handled as
   * usual (state changes), then the socket is destroyed instead of answering: the answer was lost.
   * Logged with status 0. A client that resends finds its own change already made.
   */
  dropAnswerNext(action: string, times?: number): void;
  /** Every call of `action` answers AccessDenied (403) until clear(). */
  deny(action: string): void;
  /** Milliseconds added before every response, errors included. */
  latencyMs: number;
  /**
   * Holds the next `count` IAM/STS calls of `action` whose parameters include `where` (exact values)
   * after their latency, until `count` of them are waiting (or `timeoutMs`, default 5000, has passed
   * since the first arrived), then lets them all go on in arrival order. Makes two clients' reads and
   * writes interleave for sure. Later calls pass; clear() releases what is held.
   */
  gather(action: string, count: number, opts?: { where?: Record<string, string>; timeoutMs?: number }): void;
  clear(): void;
}

/** A faults.gather in progress. */
interface Gathering {
  action: string;
  where: Record<string, string>;
  count: number;
  timeoutMs: number;
  waiting: (() => void)[];
  timer?: ReturnType<typeof setTimeout>;
}

export interface SeedClusterInput {
  name: string;
  region: string;
  /** Omitted: the cluster has no OIDC issuer and `identity` is left out of DescribeCluster. */
  issuer?: string;
  /** Default `ACTIVE`. */
  status?: string;
  /** Kubernetes version, default `1.31`. */
  version?: string;
  /** `kubernetesNetworkConfig.ipFamily`, default `ipv4`. */
  ipFamily?: 'ipv4' | 'ipv6';
}

export interface SeedRoleInput {
  name: string;
  /** Stored verbatim when a string (no validation: seeds may set up states the API would refuse). */
  trustPolicy: object | string;
  tags?: Record<string, string>;
  /** Also made attachable (as if seeded with seedPolicy). */
  attachedPolicies?: string[];
  path?: string;
  description?: string;
}

export interface SeedOidcProviderInput {
  /** The issuer URL, `https://host/path` (a missing scheme is taken to be https). */
  url: string;
  clientIds?: string[];
  /** Default: one synthetic thumbprint, as IAM fills in when none is given. */
  thumbprints?: string[];
  tags?: Record<string, string>;
}

export interface EmulatedRole {
  name: string;
  arn: string;
  path: string;
  roleId: string;
  /** The trust policy parsed from JSON (the raw text if it does not parse). */
  trustPolicy: any;
  /** The trust policy text exactly as stored. */
  trustPolicyText: string;
  description?: string;
  maxSessionDuration: number;
  permissionsBoundary?: string;
  tags: Record<string, string>;
  attachedPolicies: string[];
}

export interface EmulatedOidcProvider {
  arn: string;
  /** As created, with the scheme (GetOpenIDConnectProvider returns it without). */
  url: string;
  clientIds: string[];
  thumbprints: string[];
  tags: Record<string, string>;
}

export interface AwsEmulator {
  /** `http://127.0.0.1:PORT` for each API. */
  iamUrl: string;
  stsUrl: string;
  eksUrl: string;
  accountId: string;
  /** Every request, in arrival order. */
  log: AwsRequestRecord[];
  /** The logged requests whose action changes state (attempted, whatever their status). */
  writes(): AwsRequestRecord[];
  seedCluster(c: SeedClusterInput): void;
  seedRole(r: SeedRoleInput): void;
  /** Returns the provider ARN. */
  seedOidcProvider(p: SeedOidcProviderInput): string;
  /** Makes a (customer or AWS managed) policy ARN attachable. */
  seedPolicy(arn: string): void;
  getRole(name: string): EmulatedRole | undefined;
  getOidcProvider(arn: string): EmulatedOidcProvider | undefined;
  faults: AwsFaults;
  /**
   * Called synchronously with the request's record (status filled in) right after its answer was
   * handed to the socket (`res.end`), or after a dropped connection destroyed the socket (status 0),
   * for every request on all three listeners. A test hook (e.g. to
   * kill the client right after its k-th write was answered); reset() leaves it in place.
   */
  onResponse?: (record: AwsRequestRecord) => void;
  /** State, log and faults back to empty. */
  reset(): void;
  close(): Promise<void>;
}

export function startAwsEmulator(opts: { accountId?: string } = {}): Promise<AwsEmulator> {
  return AwsEmulatorImpl.start(opts.accountId ?? '111122223333');
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const PARTITION = 'aws';
const IAM_VERSION = '2010-05-08';
const STS_VERSION = '2011-06-15';
const IAM_NS = `https://iam.amazonaws.com/doc/${IAM_VERSION}/`;
const STS_NS = `https://sts.amazonaws.com/doc/${STS_VERSION}/`;
const CALLER_USER = 'wid-test';

/** aws.md §5.3. */
const TRUST_POLICY_QUOTA = 2048;
const POLICIES_PER_ROLE = 10;
const OIDC_PROVIDERS_PER_ACCOUNT = 100;
const CLIENT_IDS_PER_PROVIDER = 100;
const ROLES_PER_ACCOUNT = 1000;
/** API length limit of AssumeRolePolicyDocument (the quota above bites long before). */
const POLICY_DOCUMENT_MAX = 131072;

/** AWS managed policies that AttachRolePolicy accepts without seeding (real names and paths). */
const AWS_MANAGED_POLICIES = new Set(
  [
    'AdministratorAccess',
    'PowerUserAccess',
    'ReadOnlyAccess',
    'AmazonS3ReadOnlyAccess',
    'AmazonS3FullAccess',
    'AmazonDynamoDBReadOnlyAccess',
    'AmazonDynamoDBFullAccess',
    'AmazonSQSReadOnlyAccess',
    'AmazonSQSFullAccess',
    'AmazonSNSReadOnlyAccess',
    'AmazonEC2ReadOnlyAccess',
    'AmazonEC2ContainerRegistryReadOnly',
    'CloudWatchReadOnlyAccess',
    'CloudWatchAgentServerPolicy',
    'SecretsManagerReadWrite',
    'AWSXrayWriteOnlyAccess',
    'AmazonEKSClusterPolicy',
    'AmazonEKSWorkerNodePolicy',
    'AmazonEKS_CNI_Policy',
    'service-role/AmazonEBSCSIDriverPolicy',
  ].map((n) => `arn:aws:iam::aws:policy/${n}`),
);

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** HTTP statuses per code: aws.md §5.4 (awsQuery error traits in client-iam schemas_0.ts). */
const E = {
  validation: (msg: string) => new AwsError(400, 'ValidationError', msg),
  invalidInput: (msg: string) => new AwsError(400, 'InvalidInput', msg),
  noSuchEntity: (msg: string) => new AwsError(404, 'NoSuchEntity', msg),
  alreadyExists: (msg: string) => new AwsError(409, 'EntityAlreadyExists', msg),
  limitExceeded: (msg: string) => new AwsError(409, 'LimitExceeded', msg),
  malformedPolicy: (msg: string) => new AwsError(400, 'MalformedPolicyDocument', msg),
  deleteConflict: (msg: string) => new AwsError(409, 'DeleteConflict', msg),
};

/** The Coral validation text, e.g. "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null". */
function constraint(member: string, value: string | null, rule: string): AwsError {
  const shown = value === null ? 'null' : `'${value}'`;
  return E.validation(`1 validation error detected: Value ${shown} at '${member}' failed to satisfy constraint: ${rule}`);
}

function lcFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

// ---------------------------------------------------------------------------------------------
// XML (awsQuery responses)
// ---------------------------------------------------------------------------------------------

/** An XML element: text content, or child elements (an empty child list renders `<Name/>`). */
type XNode = { tag: string; text: string } | { tag: string; children: XNode[] };
type XChild = XNode | undefined | false;

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };

/**
 * Escapes element text (only text is ever escaped: the one attribute, xmlns, is a constant). Quotes
 * need no escaping in text, and AWS leaves them as they are. `\r` is written as a character
 * reference because XML parsers fold a raw one into `\n`.
 */
function escapeXml(s: string): string {
  return s.replace(/[&<>\r]/g, (c) => XML_ESCAPES[c] ?? c);
}

function t(tag: string, value: string | number | boolean | undefined): XNode | undefined {
  return value === undefined ? undefined : { tag, text: String(value) };
}

function compact(children: XChild[]): XNode[] {
  return children.filter((c): c is XNode => !!c);
}

function el(tag: string, children: XChild[]): XNode {
  return { tag, children: compact(children) };
}

/** A list as awsQuery writes it: one `<member>` per item (an empty list is an empty element). */
function memberList(tag: string, items: XNode[][]): XNode {
  return el(
    tag,
    items.map((children) => el('member', children)),
  );
}

function stringList(tag: string, items: string[]): XNode {
  return { tag, children: items.map((v) => ({ tag: 'member', text: v })) };
}

/** Indented like real IAM responses (the SDK's parser drops whitespace-only text that contains a newline). */
function renderXml(node: XNode, indent: string, attrs = ''): string {
  if ('text' in node) {
    return node.text === '' ? `${indent}<${node.tag}${attrs}/>` : `${indent}<${node.tag}${attrs}>${escapeXml(node.text)}</${node.tag}>`;
  }
  if (node.children.length === 0) return `${indent}<${node.tag}${attrs}/>`;
  const inner = node.children.map((c) => renderXml(c, `${indent}  `)).join('\n');
  return `${indent}<${node.tag}${attrs}>\n${inner}\n${indent}</${node.tag}>`;
}

function xmlDocument(root: XNode, ns: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${renderXml(root, '', ` xmlns="${ns}"`)}\n`;
}

/** `<{Op}Response><{Op}Result>…</{Op}Result><ResponseMetadata>…`; ops without output have no Result element. */
function queryResponse(action: string, ns: string, result: XNode[] | undefined, requestId: string): string {
  return xmlDocument(
    el(`${action}Response`, [
      result && el(`${action}Result`, result),
      el('ResponseMetadata', [t('RequestId', requestId)]),
    ]),
    ns,
  );
}

/**
 * The awsQuery error body, as real IAM and STS send it (aws.md §5.6; a real STS capture with the same
 * layout is quoted in amzn/selling-partner-api-docs#3081). `Type` is `Receiver` for 5xx faults.
 */
function queryError(err: AwsError, ns: string, requestId: string): string {
  return xmlDocument(
    el('ErrorResponse', [
      el('Error', [t('Type', err.status >= 500 ? 'Receiver' : 'Sender'), t('Code', err.code), t('Message', err.message)]),
      t('RequestId', requestId),
    ]),
    ns,
  );
}

// ---------------------------------------------------------------------------------------------
// awsQuery request parameters
// ---------------------------------------------------------------------------------------------

interface Tag {
  Key: string;
  Value: string;
}

/** Form parameters of one awsQuery request (`Name.member.N` lists, `Tags.member.N.Key` structs). */
class QueryParams {
  constructor(readonly raw: URLSearchParams) {}

  get(name: string): string | undefined {
    return this.raw.get(name) ?? undefined;
  }

  /** A required member; missing → the Coral "Member must not be null" ValidationError. */
  need(name: string): string {
    const v = this.get(name);
    if (v === undefined) throw constraint(lcFirst(name), null, 'Member must not be null');
    return v;
  }

  /** `Name.member.N` in index order; `Name=` alone (how the SDK sends `[]`) is an empty list; absent → undefined. */
  list(name: string): string[] | undefined {
    const prefix = `${name}.member.`;
    let present = this.raw.has(name);
    const items: Array<[number, string]> = [];
    for (const [k, v] of this.raw) {
      if (!k.startsWith(prefix)) continue;
      const index = Number(k.slice(prefix.length));
      if (!Number.isInteger(index)) continue;
      present = true;
      items.push([index, v]);
    }
    return present ? items.sort((a, b) => a[0] - b[0]).map(([, v]) => v) : undefined;
  }

  /** `Tags.member.N.Key` / `.Value`. Tag keys are case-insensitively unique (IAM rejects duplicates). */
  tags(name = 'Tags'): Tag[] | undefined {
    const prefix = `${name}.member.`;
    let present = this.raw.has(name);
    const byIndex = new Map<number, { Key?: string; Value?: string }>();
    for (const [k, v] of this.raw) {
      if (!k.startsWith(prefix)) continue;
      const m = /^(\d+)\.(Key|Value)$/.exec(k.slice(prefix.length));
      if (!m) continue;
      present = true;
      const index = Number(m[1]);
      const entry = byIndex.get(index) ?? {};
      if (m[2] === 'Key') entry.Key = v;
      else entry.Value = v;
      byIndex.set(index, entry);
    }
    if (!present) return undefined;
    const tags: Tag[] = [];
    for (const [index, entry] of [...byIndex].sort((a, b) => a[0] - b[0])) {
      if (entry.Key === undefined) throw constraint(`${lcFirst(name)}.${index}.member.key`, null, 'Member must not be null');
      if (entry.Value === undefined) throw constraint(`${lcFirst(name)}.${index}.member.value`, null, 'Member must not be null');
      if (entry.Key.length < 1 || entry.Key.length > 128) {
        throw constraint(`${lcFirst(name)}.${index}.member.key`, entry.Key, 'Member must have length less than or equal to 128');
      }
      if (entry.Value.length > 256) {
        throw constraint(`${lcFirst(name)}.${index}.member.value`, entry.Value, 'Member must have length less than or equal to 256');
      }
      tags.push({ Key: entry.Key, Value: entry.Value });
    }
    const seen = new Set<string>();
    for (const tag of tags) {
      const key = tag.Key.toLowerCase();
      // Text as reported for real IAM (a case-only difference counts as a duplicate).
      if (seen.has(key)) throw E.invalidInput('Duplicate tag keys found. Please note that Tag keys are case insensitive.');
      seen.add(key);
    }
    return tags;
  }

  /** MaxItems: 1–1000, default 100 (IAM API reference, "Pagination"). */
  maxItems(): number {
    const raw = this.get('MaxItems');
    if (raw === undefined) return 100;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw constraint('maxItems', raw, 'Member must have value greater than or equal to 1');
    if (n > 1000) throw constraint('maxItems', raw, 'Member must have value less than or equal to 1000');
    return n;
  }
}

/** Merges tags into a list, replacing case-insensitively equal keys (IAM tag keys are case-insensitive). */
function mergeTags(existing: Tag[], incoming: Tag[]): Tag[] {
  const out = existing.filter((e) => !incoming.some((i) => i.Key.toLowerCase() === e.Key.toLowerCase()));
  return [...out, ...incoming];
}

function tagsToRecord(tags: Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((tg) => [tg.Key, tg.Value]));
}

function recordToTags(rec: Record<string, string> | undefined): Tag[] {
  return Object.entries(rec ?? {}).map(([Key, Value]) => ({ Key, Value }));
}

function tagNodes(tags: Tag[]): XNode[][] {
  return tags.map((tg) => [{ tag: 'Key', text: tg.Key }, { tag: 'Value', text: tg.Value }]);
}

// Paging. IAM markers are opaque strings; these carry a version prefix so a foreign marker is refused.

function encodeMarker(position: string): string {
  return Buffer.from(`wid-emu:${position}`, 'utf8').toString('base64');
}

function decodeMarker(marker: string | undefined): string | undefined {
  if (marker === undefined) return undefined;
  const decoded = Buffer.from(marker, 'base64').toString('utf8');
  // No real AWS text for a forged marker was available; InvalidInput is what IAM uses for bad values.
  if (!decoded.startsWith('wid-emu:')) throw E.invalidInput(`Invalid Marker: ${marker}`);
  return decoded.slice('wid-emu:'.length);
}

interface Page<T> {
  items: T[];
  marker: string | undefined;
}

/** Offset paging for lists kept in insertion order (attached policies, tags). */
function pageByOffset<T>(all: T[], q: QueryParams): Page<T> {
  const max = q.maxItems();
  const position = decodeMarker(q.get('Marker'));
  const start = position === undefined ? 0 : Number(position);
  if (!Number.isInteger(start) || start < 0) throw E.invalidInput(`Invalid Marker: ${q.get('Marker') ?? ''}`);
  const items = all.slice(start, start + max);
  return { items, marker: start + max < all.length ? encodeMarker(String(start + max)) : undefined };
}

/** `IsTruncated` always, `Marker` only when truncated (as IAM does). */
function pagingNodes(page: Page<unknown>): XNode[] {
  const nodes: XNode[] = [{ tag: 'IsTruncated', text: String(page.marker !== undefined) }];
  if (page.marker !== undefined) nodes.push({ tag: 'Marker', text: page.marker });
  return nodes;
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

interface Role {
  name: string;
  path: string;
  roleId: string;
  arn: string;
  created: Date;
  /** The trust policy text exactly as submitted (IAM returns it as submitted, URL-encoded). */
  document: string;
  description?: string;
  maxSessionDuration: number;
  boundary?: string;
  tags: Tag[];
  attached: string[];
}

interface Provider {
  arn: string;
  url: string;
  clientIds: string[];
  thumbprints: string[];
  created: Date;
  tags: Tag[];
}

interface Cluster {
  name: string;
  region: string;
  issuer?: string;
  status: string;
  version: string;
  ipFamily: 'ipv4' | 'ipv6';
  created: Date;
  endpointId: string;
}

class State {
  /** Keyed by lower-cased name: role names are unique case-insensitively. */
  roles = new Map<string, Role>();
  /** Keyed by ARN. */
  providers = new Map<string, Provider>();
  /** Policy ARNs made attachable with seedPolicy (besides AWS_MANAGED_POLICIES). */
  policies = new Set<string>();
  /** Keyed by `region/name`. */
  clusters = new Map<string, Cluster>();
}

/** IAM/STS dates: ISO 8601 to the second, e.g. `2019-08-22T20:29:26Z`. */
function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Unique IDs look like `AROA` + 17 upper-case alphanumerics. */
function uniqueId(prefix: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(17);
  let s = prefix;
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

/** The same id for the same key, for entities the emulator does not store (AWS managed policies). */
function stableId(prefix: string, key: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let s = prefix;
  for (const b of createHash('sha256').update(key).digest().subarray(0, 17)) s += alphabet[b % alphabet.length];
  return s;
}

const POLICY_ARN = /^arn:[\w-]+:iam::(aws|\d{12}):policy\/.+/;

/** A policy's path is what lies between `policy` and its name: `…:policy/service-role/X` → `/service-role/`, `X`. */
function policyNameAndPath(arn: string): { name: string; path: string } {
  const resource = arn.slice(arn.indexOf(':policy/') + ':policy'.length);
  const cut = resource.lastIndexOf('/') + 1;
  return { name: resource.slice(cut), path: resource.slice(0, cut) };
}

/** IAM fills in a thumbprint when none is given (aws.md §0.1); we cannot fetch one, so derive a stable fake. */
function syntheticThumbprint(url: string): string {
  return createHash('sha1').update(url).digest('hex');
}

function stripScheme(url: string): string {
  return url.replace(/^https:\/\//, '');
}

// ---------------------------------------------------------------------------------------------
// Trust policy validation (CreateRole / UpdateAssumeRolePolicy)
// ---------------------------------------------------------------------------------------------

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const OIDC_PROVIDER_ARN = /^arn:[\w-]+:iam::\d{12}:oidc-provider\/.+$/;

function validateTrustPolicy(doc: string, member: string, providers: Map<string, Provider>): void {
  if (doc.length > POLICY_DOCUMENT_MAX) {
    throw constraint(member, doc, `Member must have length less than or equal to ${POLICY_DOCUMENT_MAX}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(doc);
  } catch {
    parsed = undefined;
  }
  // Real IAM text for unparseable JSON.
  if (!isObject(parsed)) throw E.malformedPolicy('Syntax errors in policy.');
  for (const stmt of asArray(parsed.Statement)) {
    if (!isObject(stmt)) throw E.malformedPolicy('Syntax errors in policy.');
    const condition = stmt.Condition;
    if (isObject(condition)) {
      for (const block of Object.values(condition)) {
        if (!isObject(block)) continue;
        for (const key of Object.keys(block)) {
          // `https://oidc…:sub` has two colons: real IAM answers exactly this
          // (terraform-aws-modules/terraform-aws-eks#1084, aws.md §0.3).
          if ((key.match(/:/g) ?? []).length > 1) throw E.malformedPolicy('Condition can contain only one colon.');
        }
      }
    }
    const principal = stmt.Principal;
    if (isObject(principal)) {
      for (const federated of asArray(principal.Federated)) {
        // A Federated principal naming an OIDC provider that does not exist in the account is refused
        // (terraform-aws-modules/terraform-aws-iam#202; testing-notes.md). Domain-name principals such
        // as cognito-identity.amazonaws.com and SAML provider ARNs are not checked.
        if (typeof federated === 'string' && OIDC_PROVIDER_ARN.test(federated) && !providers.has(federated)) {
          throw E.malformedPolicy(`Invalid principal in policy: "Federated":"${federated}"`);
        }
      }
    }
  }
  // The quota counts characters with whitespace removed (aws.md §5.3: kubeflow/kubeflow#6687,
  // kubernetes-sigs/aws-load-balancer-controller#2718).
  if (doc.replace(/\s/g, '').length > TRUST_POLICY_QUOTA) {
    throw E.limitExceeded(`Cannot exceed quota for ACLSizePerRole: ${TRUST_POLICY_QUOTA}`);
  }
}

// ---------------------------------------------------------------------------------------------
// SigV4 Authorization header (presence and scope only; the signature is not verified)
// ---------------------------------------------------------------------------------------------

interface CredentialScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function checkAuthorization(header: string | undefined, expectedService: AwsService): CredentialScope {
  if (!header) {
    // Real text: STS capture in amzn/selling-partner-api-docs#3081; IAM answers the same.
    throw new AwsError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
  }
  if (!header.startsWith('AWS4-HMAC-SHA256 ')) {
    throw new AwsError(400, 'IncompleteSignature', `Unsupported AWS 'algorithm': '${header.split(' ')[0] ?? ''}'`);
  }
  const fields = new Map<string, string>();
  for (const part of header.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'Signature', 'SignedHeaders'].filter((f) => !fields.has(f));
  if (missing.length > 0) {
    throw new AwsError(
      400,
      'IncompleteSignature',
      `${missing.map((f) => `Authorization header requires '${f}' parameter.`).join(' ')} Authorization=${header}`,
    );
  }
  const credential = fields.get('Credential') ?? '';
  const parts = credential.split('/');
  const [accessKeyId, date, region, service, terminator] = parts;
  if (parts.length !== 5 || !accessKeyId || !date || !region || !service || terminator !== 'aws4_request') {
    throw new AwsError(
      400,
      'IncompleteSignature',
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`,
    );
  }
  // Catches a client pointed at the wrong listener (an IAM client on the STS port signs for `iam`).
  if (service !== expectedService) {
    throw new AwsError(403, 'SignatureDoesNotMatch', `Credential should be scoped to correct service: '${expectedService}'. `);
  }
  return { accessKeyId, date, region, service };
}

// ---------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------

const WRITE_ACTION = /^(Create|Update|Add|Remove|Delete|Attach|Detach|Tag|Untag|Put)/;

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Destroy the socket instead of answering (a status-0 fault, or dropAnswerNext). */
  drop?: boolean;
}

/** Thrown by injectedFault for a `status: 0` fault: the request gets no answer at all. */
class DroppedConnection extends Error {}

const DROPPED: Reply = { status: 0, headers: {}, body: '', drop: true };

interface QueuedFault {
  err: AwsFault;
  remaining: number;
}

type IamHandler = (q: QueryParams) => XNode[] | undefined;

class AwsEmulatorImpl implements AwsEmulator {
  iamUrl = '';
  stsUrl = '';
  eksUrl = '';
  log: AwsRequestRecord[] = [];
  private state = new State();
  private failQueue = new Map<string, QueuedFault[]>();
  /** dropAnswerNext counts, by bare or qualified action. */
  private answerDrops = new Map<string, number>();
  private denied = new Set<string>();
  private gathers: Gathering[] = [];
  private servers: Server[] = [];
  faults: AwsFaults;
  onResponse?: (record: AwsRequestRecord) => void;

  private constructor(readonly accountId: string) {
    const failQueue = this.failQueue;
    const answerDrops = this.answerDrops;
    const denied = this.denied;
    const faults: AwsFaults = {
      latencyMs: 0,
      failNext(action: string, err: AwsFault, times = 1): void {
        const queue = failQueue.get(action) ?? [];
        queue.push({ err: { ...err }, remaining: times });
        failQueue.set(action, queue);
      },
      dropAnswerNext(action: string, times = 1): void {
        answerDrops.set(action, (answerDrops.get(action) ?? 0) + times);
      },
      deny(action: string): void {
        denied.add(action);
      },
      gather: (action, count, opts = {}) => {
        const g: Gathering = { action, where: { ...(opts.where ?? {}) }, count, timeoutMs: opts.timeoutMs ?? 5000, waiting: [] };
        this.gathers.push(g);
      },
      clear: (): void => {
        failQueue.clear();
        answerDrops.clear();
        denied.clear();
        for (const g of [...this.gathers]) this.release(g);
        faults.latencyMs = 0;
      },
    };
    this.faults = faults;
  }

  static async start(accountId: string): Promise<AwsEmulator> {
    const emu = new AwsEmulatorImpl(accountId);
    emu.iamUrl = await emu.listen('iam');
    emu.stsUrl = await emu.listen('sts');
    emu.eksUrl = await emu.listen('eks');
    return emu;
  }

  private async listen(service: AwsService): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(service, req, res).catch((e: unknown) => {
        // Only reachable on a broken socket; never leave the client hanging.
        if (!res.headersSent) res.writeHead(500);
        res.end(String(e));
      });
    });
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            // The SDK keeps connections alive; close() alone would wait for them to idle out.
            s.closeAllConnections();
          }),
      ),
    );
    this.servers = [];
  }

  writes(): AwsRequestRecord[] {
    return this.log.filter((r) => r.write);
  }

  reset(): void {
    this.state = new State();
    this.log.length = 0;
    this.faults.clear();
  }

  // --- seeding and inspection -----------------------------------------------------------------

  seedCluster(c: SeedClusterInput): void {
    const id = c.issuer ? (/\/id\/([^/]+)$/.exec(c.issuer)?.[1] ?? randomHex(16)) : randomHex(16);
    const cluster: Cluster = {
      name: c.name,
      region: c.region,
      status: c.status ?? 'ACTIVE',
      version: c.version ?? '1.31',
      ipFamily: c.ipFamily ?? 'ipv4',
      created: new Date(),
      endpointId: id.toUpperCase(),
    };
    if (c.issuer !== undefined) cluster.issuer = c.issuer;
    this.state.clusters.set(`${c.region}/${c.name}`, cluster);
  }

  seedRole(r: SeedRoleInput): void {
    const path = r.path ?? '/';
    const role: Role = {
      name: r.name,
      path,
      roleId: uniqueId('AROA'),
      arn: this.roleArn(r.name, path),
      created: new Date(),
      document: typeof r.trustPolicy === 'string' ? r.trustPolicy : JSON.stringify(r.trustPolicy),
      maxSessionDuration: 3600,
      tags: recordToTags(r.tags),
      attached: [...new Set(r.attachedPolicies ?? [])],
    };
    if (r.description !== undefined) role.description = r.description;
    for (const arn of role.attached) this.state.policies.add(arn);
    this.state.roles.set(r.name.toLowerCase(), role);
  }

  seedOidcProvider(p: SeedOidcProviderInput): string {
    const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(p.url) ? p.url : `https://${p.url}`;
    const arn = this.providerArn(url);
    this.state.providers.set(arn, {
      arn,
      url,
      clientIds: [...(p.clientIds ?? [])],
      thumbprints: p.thumbprints ? [...p.thumbprints] : [syntheticThumbprint(url)],
      created: new Date(),
      tags: recordToTags(p.tags),
    });
    return arn;
  }

  seedPolicy(arn: string): void {
    this.state.policies.add(arn);
  }

  getRole(name: string): EmulatedRole | undefined {
    const role = this.state.roles.get(name.toLowerCase());
    if (!role) return undefined;
    let trustPolicy: unknown;
    try {
      trustPolicy = JSON.parse(role.document);
    } catch {
      trustPolicy = role.document;
    }
    const out: EmulatedRole = {
      name: role.name,
      arn: role.arn,
      path: role.path,
      roleId: role.roleId,
      trustPolicy,
      trustPolicyText: role.document,
      maxSessionDuration: role.maxSessionDuration,
      tags: tagsToRecord(role.tags),
      attachedPolicies: [...role.attached],
    };
    if (role.description !== undefined) out.description = role.description;
    if (role.boundary !== undefined) out.permissionsBoundary = role.boundary;
    return out;
  }

  getOidcProvider(arn: string): EmulatedOidcProvider | undefined {
    const p = this.state.providers.get(arn);
    if (!p) return undefined;
    return { arn: p.arn, url: p.url, clientIds: [...p.clientIds], thumbprints: [...p.thumbprints], tags: tagsToRecord(p.tags) };
  }

  // --- request handling -----------------------------------------------------------------------

  private async handle(service: AwsService, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const requestId = randomUUID();
    const record: AwsRequestRecord = { service, action: '', write: false, params: {}, status: 0 };
    this.log.push(record);

    let reply: Reply;
    if (service === 'eks') {
      reply = await this.handleEks(req, url, record, requestId);
    } else {
      reply = await this.handleQuery(service, req, url, body, record, requestId);
    }
    if (reply.drop) {
      // No answer: the client sees the connection reset (a network error), whether or not the call was handled.
      record.status = 0;
      req.socket.destroy();
      this.onResponse?.(record);
      return;
    }
    record.status = reply.status;
    res.writeHead(reply.status, {
      ...reply.headers,
      'x-amzn-RequestId': requestId,
      'Content-Length': String(Buffer.byteLength(reply.body)),
    });
    res.end(reply.body);
    this.onResponse?.(record);
  }

  private async delay(): Promise<void> {
    const ms = this.faults.latencyMs;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** faults.gather: waits while a gathering this call belongs to is not complete. */
  private async gathered(action: string, params: Record<string, string>): Promise<void> {
    const g = this.gathers.find((x) => x.action === action && Object.entries(x.where).every(([k, v]) => params[k] === v));
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

  /** Injected faults, checked after authentication: deny first, then queued failNext errors. */
  private injectedFault(service: AwsService, action: string, resource: () => string): AwsError | undefined {
    const qualified = `${service}:${action}`;
    if (this.denied.has(qualified) || this.denied.has(action)) {
      // The text AWS uses today appends "because no identity-based policy allows the <action> action".
      return new AwsError(
        403,
        service === 'eks' ? 'AccessDeniedException' : 'AccessDenied',
        `User: ${this.callerArn()} is not authorized to perform: ${qualified} on resource: ${resource()} ` +
          `because no identity-based policy allows the ${qualified} action`,
      );
    }
    for (const key of [qualified, action]) {
      const queue = this.failQueue.get(key);
      const head = queue?.[0];
      if (!queue || !head) continue;
      head.remaining -= 1;
      if (head.remaining <= 0) queue.shift();
      if (head.err.status === 0) throw new DroppedConnection();
      return new AwsError(head.err.status, head.err.code, head.err.message);
    }
    return undefined;
  }

  /** dropAnswerNext: true (and one fewer pending) when this call's answer is to be lost. */
  private takeAnswerDrop(service: AwsService, action: string): boolean {
    for (const key of [`${service}:${action}`, action]) {
      const n = this.answerDrops.get(key) ?? 0;
      if (n <= 0) continue;
      if (n === 1) this.answerDrops.delete(key);
      else this.answerDrops.set(key, n - 1);
      return true;
    }
    return false;
  }

  // --- IAM and STS (awsQuery) ---------------------------------------------------------------

  private async handleQuery(
    service: 'iam' | 'sts',
    req: IncomingMessage,
    url: URL,
    body: string,
    record: AwsRequestRecord,
    requestId: string,
  ): Promise<Reply> {
    // The SDK POSTs a form body; awsQuery also accepts the parameters in a GET query string.
    const raw = new URLSearchParams(url.search);
    if (req.method === 'POST') for (const [k, v] of new URLSearchParams(body)) raw.append(k, v);
    const action = raw.get('Action') ?? '';
    const version = raw.get('Version') ?? '';
    record.action = action;
    record.write = WRITE_ACTION.test(action);
    for (const [k, v] of raw) if (k !== 'Action' && k !== 'Version') record.params[k] = v;

    const ns = service === 'iam' ? IAM_NS : STS_NS;
    const xml = (status: number, text: string): Reply => ({ status, headers: { 'Content-Type': 'text/xml' }, body: text });
    await this.delay();
    await this.gathered(action, record.params);
    try {
      checkAuthorization(req.headers.authorization, service);
      const q = new QueryParams(raw);
      const handlers = service === 'iam' ? this.iamHandlers : this.stsHandlers;
      // Own keys only: `Action=toString` must not reach Object.prototype.
      const handler = Object.hasOwn(handlers, action) ? handlers[action] : undefined;
      const expectedVersion = service === 'iam' ? IAM_VERSION : STS_VERSION;
      if (!handler || version !== expectedVersion) {
        // Real awsQuery text for an unknown action (also quoted by gaul/s3proxy's STS shim).
        throw new AwsError(400, 'InvalidAction', `Could not find operation ${action} for version ${version}`);
      }
      const fault = this.injectedFault(service, action, () => this.iamResource(action, q));
      if (fault) throw fault;
      if (this.takeAnswerDrop(service, action)) {
        try {
          handler(q);
        } catch {
          // Handled, error or not; the answer is lost either way.
        }
        return DROPPED;
      }
      return xml(200, queryResponse(action, ns, handler(q), requestId));
    } catch (e) {
      if (e instanceof DroppedConnection) return DROPPED;
      const err = e instanceof AwsError ? e : new AwsError(500, 'ServiceFailure', `emulator error: ${String(e)}`);
      return xml(err.status, queryError(err, ns, requestId));
    }
  }

  private callerArn(): string {
    return `arn:${PARTITION}:iam::${this.accountId}:user/${CALLER_USER}`;
  }

  private roleArn(name: string, path = '/'): string {
    return `arn:${PARTITION}:iam::${this.accountId}:role${path}${name}`;
  }

  /** `arn:<partition>:iam::<account>:oidc-provider/<url without scheme>` (aws.md §0.4). */
  private providerArn(url: string): string {
    return `arn:${PARTITION}:iam::${this.accountId}:oidc-provider/${stripScheme(url)}`;
  }

  /** The resource an AccessDenied message names. */
  private iamResource(action: string, q: QueryParams): string {
    const roleName = q.get('RoleName');
    if (roleName !== undefined) return this.state.roles.get(roleName.toLowerCase())?.arn ?? this.roleArn(roleName);
    const providerArn = q.get('OpenIDConnectProviderArn');
    if (providerArn !== undefined) return providerArn;
    const providerUrl = q.get('Url');
    if (providerUrl !== undefined) return this.providerArn(providerUrl);
    if (action === 'ListRoles') return `arn:${PARTITION}:iam::${this.accountId}:role/`;
    if (action.includes('OpenIDConnect')) return `arn:${PARTITION}:iam::${this.accountId}:oidc-provider/*`;
    return '*';
  }

  private stsHandlers: Record<string, IamHandler> = {
    GetCallerIdentity: () => [
      { tag: 'Arn', text: this.callerArn() },
      { tag: 'UserId', text: 'AIDAEXAMPLE' },
      { tag: 'Account', text: this.accountId },
    ],
  };

  // Role helpers

  private needRole(q: QueryParams): Role {
    const name = q.need('RoleName');
    const role = this.state.roles.get(name.toLowerCase());
    if (!role) throw E.noSuchEntity(`The role with name ${name} cannot be found.`);
    return role;
  }

  private needProvider(q: QueryParams): Provider {
    const arn = q.need('OpenIDConnectProviderArn');
    const provider = this.state.providers.get(arn);
    if (!provider) throw E.noSuchEntity(`OpenIDConnect Provider not found for arn ${arn}`);
    return provider;
  }

  private isAttachable(arn: string): boolean {
    return AWS_MANAGED_POLICIES.has(arn) || this.state.policies.has(arn);
  }

  /** `Role` as CreateRole/GetRole/ListRoles write it (member order per client-iam schemas_0.ts). */
  private roleNode(role: Role, view: 'create' | 'get' | 'list', tag = 'Role'): XNode {
    const full = view !== 'list';
    return el(tag, [
      t('Path', role.path),
      t('RoleName', role.name),
      t('RoleId', role.roleId),
      t('Arn', role.arn),
      t('CreateDate', isoSeconds(role.created)),
      // URL-encoded, as real IAM returns it; the SDK hands it over undecoded (aws.md §5.2).
      t('AssumeRolePolicyDocument', encodeURIComponent(role.document)),
      t('Description', role.description),
      t('MaxSessionDuration', role.maxSessionDuration),
      // ListRoles leaves out PermissionsBoundary, Tags and RoleLastUsed (IAM API reference, ListRoles).
      full &&
        role.boundary !== undefined &&
        el('PermissionsBoundary', [t('PermissionsBoundaryType', 'PermissionsBoundaryPolicy'), t('PermissionsBoundaryArn', role.boundary)]),
      full && role.tags.length > 0 && memberList('Tags', tagNodes(role.tags)),
      // A role never assumed has an empty RoleLastUsed; CreateRole's answer has none.
      view === 'get' && el('RoleLastUsed', []),
    ]);
  }

  private validateRoleName(name: string): void {
    if (name.length < 1) throw constraint('roleName', name, 'Member must have length greater than or equal to 1');
    if (name.length > 64) throw constraint('roleName', name, 'Member must have length less than or equal to 64');
    if (!/^[\w+=,.@-]+$/.test(name)) {
      throw constraint('roleName', name, 'Member must satisfy regular expression pattern: [\\w+=,.@-]+');
    }
  }

  private iamHandlers: Record<string, IamHandler> = {
    // --- OpenID Connect providers ---

    CreateOpenIDConnectProvider: (q) => {
      const url = q.need('Url');
      if (url.length > 255) throw constraint('url', url, 'Member must have length less than or equal to 255');
      const thumbprints = q.list('ThumbprintList') ?? [];
      const clientIds = q.list('ClientIDList') ?? [];
      for (const id of clientIds) {
        if (id.length < 1 || id.length > 255) throw constraint('clientIDList.member', id, 'Member must have length less than or equal to 255');
      }
      const tags = q.tags() ?? [];
      // URL checks: texts as recorded for real IAM (a scheme-less URL is a ValidationError, the
      // other refusals InvalidInput). The URL must be https, with no port, query, fragment or userinfo.
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw E.validation('Invalid Open ID Connect Provider URL');
      if (!url.startsWith('https://')) {
        throw E.invalidInput('Invalid Open ID Connect Provider URL. The URL must begin with https://.');
      }
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw E.validation('Invalid Open ID Connect Provider URL');
      }
      if (parsed.hostname === '') throw E.validation('Invalid Open ID Connect Provider URL');
      if (url.includes('?') || url.includes('#') || parsed.username || parsed.password || parsed.port) {
        throw E.invalidInput('Invalid Open ID Connect Provider URL.');
      }
      for (const tp of thumbprints) {
        if (tp.length !== 40) throw E.invalidInput('Thumbprint must be exactly 40 characters.');
      }
      if (thumbprints.length > 5) throw E.invalidInput('Thumbprint list must contain fewer than 5 entries.');
      if (clientIds.length > CLIENT_IDS_PER_PROVIDER) {
        throw E.limitExceeded(`Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: ${CLIENT_IDS_PER_PROVIDER}`);
      }
      const arn = this.providerArn(url);
      // Same host+path ⇒ same ARN ⇒ already exists (aws.md §5.1 step 3: treat as success on re-runs).
      if (this.state.providers.has(arn)) throw E.alreadyExists(`Provider with url ${url} already exists.`);
      if (this.state.providers.size >= OIDC_PROVIDERS_PER_ACCOUNT) {
        // aws.md §5.3 (eksctl-io/eksctl#4513).
        throw E.limitExceeded(`Cannot exceed quota for OpenIdConnectProvidersPerAccount: ${OIDC_PROVIDERS_PER_ACCOUNT}`);
      }
      this.state.providers.set(arn, {
        arn,
        url,
        clientIds: [...new Set(clientIds)],
        thumbprints: thumbprints.length > 0 ? thumbprints : [syntheticThumbprint(url)],
        created: new Date(),
        tags,
      });
      return compact([t('OpenIDConnectProviderArn', arn), tags.length > 0 && memberList('Tags', tagNodes(tags))]);
    },

    GetOpenIDConnectProvider: (q) => {
      const p = this.needProvider(q);
      return [
        // Without the scheme: the real API does this (aws.md §5.2; pulumi/pulumi#8632 shows it from the CLI).
        { tag: 'Url', text: stripScheme(p.url) },
        stringList('ClientIDList', p.clientIds),
        stringList('ThumbprintList', p.thumbprints),
        { tag: 'CreateDate', text: isoSeconds(p.created) },
        memberList('Tags', tagNodes(p.tags)),
      ];
    },

    AddClientIDToOpenIDConnectProvider: (q) => {
      const p = this.needProvider(q);
      const id = q.need('ClientID');
      if (id.length < 1 || id.length > 255) throw constraint('clientID', id, 'Member must have length less than or equal to 255');
      // "This operation is idempotent; it does not fail or return an error if you add an existing
      // client ID to the provider." (IAM API reference)
      if (!p.clientIds.includes(id)) {
        if (p.clientIds.length >= CLIENT_IDS_PER_PROVIDER) {
          throw E.limitExceeded(`Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: ${CLIENT_IDS_PER_PROVIDER}`);
        }
        p.clientIds.push(id);
      }
      return undefined;
    },

    RemoveClientIDFromOpenIDConnectProvider: (q) => {
      const p = this.needProvider(q);
      const id = q.need('ClientID');
      // Idempotent for a client ID that is not registered (IAM API reference).
      p.clientIds = p.clientIds.filter((c) => c !== id);
      return undefined;
    },

    UpdateOpenIDConnectProviderThumbprint: (q) => {
      const p = this.needProvider(q);
      const thumbprints = q.list('ThumbprintList');
      if (thumbprints === undefined) throw constraint('thumbprintList', null, 'Member must not be null');
      for (const tp of thumbprints) {
        if (tp.length !== 40) throw E.invalidInput('Thumbprint must be exactly 40 characters.');
      }
      if (thumbprints.length > 5) throw E.invalidInput('Thumbprint list must contain fewer than 5 entries.');
      p.thumbprints = thumbprints;
      return undefined;
    },

    DeleteOpenIDConnectProvider: (q) => {
      // "This operation is idempotent; it does not fail or return an error if you call the operation
      // for a provider that does not exist." (IAM API reference, DeleteOpenIDConnectProvider)
      this.state.providers.delete(q.need('OpenIDConnectProviderArn'));
      return undefined;
    },

    ListOpenIDConnectProviders: () => {
      // Not paginated in the real API; entries carry only the ARN.
      const arns = [...this.state.providers.keys()].sort();
      return [memberList('OpenIDConnectProviderList', arns.map((arn) => [{ tag: 'Arn', text: arn }]))];
    },

    ListOpenIDConnectProviderTags: (q) => {
      const page = pageByOffset(this.needProvider(q).tags, q);
      return [memberList('Tags', tagNodes(page.items)), ...pagingNodes(page)];
    },

    TagOpenIDConnectProvider: (q) => {
      const p = this.needProvider(q);
      const tags = q.tags();
      if (tags === undefined) throw constraint('tags', null, 'Member must not be null');
      p.tags = mergeTags(p.tags, tags);
      return undefined;
    },

    UntagOpenIDConnectProvider: (q) => {
      const p = this.needProvider(q);
      const keys = (q.list('TagKeys') ?? []).map((k) => k.toLowerCase());
      p.tags = p.tags.filter((tg) => !keys.includes(tg.Key.toLowerCase()));
      return undefined;
    },

    // --- Roles ---

    CreateRole: (q) => {
      const name = q.need('RoleName');
      const document = q.need('AssumeRolePolicyDocument');
      this.validateRoleName(name);
      const path = q.get('Path') ?? '/';
      if (!/^(\/|\/[\u0021-\u007E]+\/)$/.test(path) || path.length > 512) {
        throw constraint('path', path, 'Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)');
      }
      const description = q.get('Description');
      if (description !== undefined && description.length > 1000) {
        throw constraint('description', description, 'Member must have length less than or equal to 1000');
      }
      const rawDuration = q.get('MaxSessionDuration');
      const maxSessionDuration = rawDuration === undefined ? 3600 : Number(rawDuration);
      if (!Number.isInteger(maxSessionDuration) || maxSessionDuration < 3600) {
        throw constraint('maxSessionDuration', rawDuration ?? '', 'Member must have value greater than or equal to 3600');
      }
      if (maxSessionDuration > 43200) {
        throw constraint('maxSessionDuration', rawDuration ?? '', 'Member must have value less than or equal to 43200');
      }
      const tags = q.tags() ?? [];
      // Role names are unique case-insensitively.
      if (this.state.roles.has(name.toLowerCase())) throw E.alreadyExists(`Role with name ${name} already exists.`);
      validateTrustPolicy(document, 'assumeRolePolicyDocument', this.state.providers);
      const boundary = q.get('PermissionsBoundary');
      if (boundary !== undefined && !this.isAttachable(boundary)) {
        // Text as reported for real IAM when the boundary policy does not exist.
        throw E.noSuchEntity(`Scope ARN: ${boundary} does not exist or is not attachable.`);
      }
      if (this.state.roles.size >= ROLES_PER_ACCOUNT) {
        throw E.limitExceeded(`Cannot exceed quota for RolesPerAccount: ${ROLES_PER_ACCOUNT}`);
      }
      const role: Role = {
        name,
        path,
        roleId: uniqueId('AROA'),
        arn: this.roleArn(name, path),
        created: new Date(),
        document,
        maxSessionDuration,
        tags,
        attached: [],
      };
      if (description !== undefined) role.description = description;
      if (boundary !== undefined) role.boundary = boundary;
      this.state.roles.set(name.toLowerCase(), role);
      return [this.roleNode(role, 'create')];
    },

    GetRole: (q) => {
      return [this.roleNode(this.needRole(q), 'get')];
    },

    UpdateAssumeRolePolicy: (q) => {
      const role = this.needRole(q);
      const document = q.need('PolicyDocument');
      validateTrustPolicy(document, 'policyDocument', this.state.providers);
      role.document = document;
      return undefined;
    },

    UpdateRole: (q) => {
      const role = this.needRole(q);
      const description = q.get('Description');
      if (description !== undefined) role.description = description;
      const duration = q.get('MaxSessionDuration');
      if (duration !== undefined) {
        const n = Number(duration);
        if (!Number.isInteger(n) || n < 3600) {
          throw constraint('maxSessionDuration', duration, 'Member must have value greater than or equal to 3600');
        }
        if (n > 43200) throw constraint('maxSessionDuration', duration, 'Member must have value less than or equal to 43200');
        role.maxSessionDuration = n;
      }
      return [];
    },

    DeleteRole: (q) => {
      const role = this.needRole(q);
      // Real IAM text while managed policies are attached.
      if (role.attached.length > 0) throw E.deleteConflict('Cannot delete entity, must detach all policies first.');
      this.state.roles.delete(role.name.toLowerCase());
      return undefined;
    },

    ListRoles: (q) => {
      const prefix = q.get('PathPrefix') ?? '/';
      const max = q.maxItems();
      const after = decodeMarker(q.get('Marker'));
      // Ordered by name, case-insensitively; the marker remembers the last name returned, so roles
      // created or deleted between pages neither repeat nor shift the listing.
      const all = [...this.state.roles.entries()]
        .filter(([, r]) => r.path.startsWith(prefix))
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .filter(([key]) => after === undefined || key > after);
      const items = all.slice(0, max);
      const last = items[items.length - 1];
      const page: Page<unknown> = { items, marker: all.length > max && last ? encodeMarker(last[0]) : undefined };
      return [el('Roles', items.map(([, r]) => this.roleNode(r, 'list', 'member'))), ...pagingNodes(page)];
    },

    TagRole: (q) => {
      const role = this.needRole(q);
      const tags = q.tags();
      if (tags === undefined) throw constraint('tags', null, 'Member must not be null');
      role.tags = mergeTags(role.tags, tags);
      return undefined;
    },

    UntagRole: (q) => {
      const role = this.needRole(q);
      const keys = q.list('TagKeys');
      if (keys === undefined) throw constraint('tagKeys', null, 'Member must not be null');
      const lower = keys.map((k) => k.toLowerCase());
      role.tags = role.tags.filter((tg) => !lower.includes(tg.Key.toLowerCase()));
      return undefined;
    },

    ListRoleTags: (q) => {
      const page = pageByOffset(this.needRole(q).tags, q);
      return [memberList('Tags', tagNodes(page.items)), ...pagingNodes(page)];
    },

    // --- Managed policies ---

    GetPolicy: (q) => {
      const arn = q.need('PolicyArn');
      if (!POLICY_ARN.test(arn)) throw E.invalidInput(`ARN ${arn} is not valid.`);
      // Real IAM text for GetPolicy on a missing policy.
      if (!this.isAttachable(arn)) throw E.noSuchEntity(`Policy ${arn} was not found.`);
      const { name, path } = policyNameAndPath(arn);
      const attachments = [...this.state.roles.values()].filter((r) => r.attached.includes(arn)).length;
      const epoch = isoSeconds(new Date(0));
      return [
        el('Policy', [
          t('PolicyName', name),
          t('PolicyId', stableId('ANPA', arn)),
          t('Arn', arn),
          t('Path', path),
          t('DefaultVersionId', 'v1'),
          t('AttachmentCount', attachments),
          t('PermissionsBoundaryUsageCount', 0),
          t('IsAttachable', true),
          t('CreateDate', epoch),
          t('UpdateDate', epoch),
        ]),
      ];
    },


    AttachRolePolicy: (q) => {
      const role = this.needRole(q);
      const arn = q.need('PolicyArn');
      // Text as reported for real IAM when PolicyArn is not an ARN.
      if (!POLICY_ARN.test(arn)) throw E.invalidInput(`ARN ${arn} is not valid.`);
      // Real text (eksctl-io/eksctl#2901, aws.md §5.1 step 6).
      if (!this.isAttachable(arn)) throw E.noSuchEntity(`Policy ${arn} does not exist or is not attachable.`);
      if (role.attached.includes(arn)) return undefined; // Attaching again is a no-op.
      // Real text (aws/eks-hybrid#741, aws.md §5.3).
      if (role.attached.length >= POLICIES_PER_ROLE) {
        throw E.limitExceeded(`Cannot exceed quota for PoliciesPerRole: ${POLICIES_PER_ROLE}`);
      }
      role.attached.push(arn);
      return undefined;
    },

    DetachRolePolicy: (q) => {
      const role = this.needRole(q);
      const arn = q.need('PolicyArn');
      // moto's text; no capture of the real one was available.
      if (!role.attached.includes(arn)) throw E.noSuchEntity(`Policy ${arn} was not found.`);
      role.attached = role.attached.filter((a) => a !== arn);
      return undefined;
    },

    ListAttachedRolePolicies: (q) => {
      const role = this.needRole(q);
      const prefix = q.get('PathPrefix') ?? '/';
      const matching = role.attached.filter((arn) => policyNameAndPath(arn).path.startsWith(prefix));
      const page = pageByOffset(matching, q);
      return [
        memberList(
          'AttachedPolicies',
          page.items.map((arn) => [
            { tag: 'PolicyName', text: policyNameAndPath(arn).name },
            { tag: 'PolicyArn', text: arn },
          ]),
        ),
        ...pagingNodes(page),
      ];
    },
  };

  // --- EKS (restJson1) ------------------------------------------------------------------------

  private async handleEks(req: IncomingMessage, url: URL, record: AwsRequestRecord, requestId: string): Promise<Reply> {
    const segments = url.pathname.split('/').filter((s) => s !== '');
    let action: string;
    let clusterName: string | undefined;
    if (req.method === 'GET' && segments.length === 2 && segments[0] === 'clusters') {
      action = 'DescribeCluster';
      clusterName = decodeURIComponent(segments[1] ?? '');
      record.params.name = clusterName;
    } else if (req.method === 'GET' && segments.length === 1 && segments[0] === 'clusters') {
      action = 'ListClusters';
      for (const [k, v] of url.searchParams) record.params[k] = v;
    } else {
      action = `${req.method ?? 'GET'} ${url.pathname}`;
    }
    record.action = action;
    record.write = WRITE_ACTION.test(action);

    const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
      status,
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(value),
    });
    /** restJson1 errors: the code in `x-amzn-ErrorType`, the text in `message` (aws.md §5.6). */
    const error = (err: AwsError): Reply => json(err.status, { message: err.message }, { 'x-amzn-ErrorType': err.code });

    await this.delay();
    let region: string;
    try {
      region = checkAuthorization(req.headers.authorization, 'eks').region;
    } catch (e) {
      if (!(e instanceof AwsError)) throw e;
      // JSON services use the Exception-suffixed codes, and for a missing header the front end's text
      // "Missing Authentication Token" (quoted for ECR, a JSON service, in jenkinsci/aws-credentials-plugin#270).
      if (e.code === 'MissingAuthenticationToken') {
        return error(new AwsError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token'));
      }
      if (e.code === 'SignatureDoesNotMatch') return error(new AwsError(403, 'InvalidSignatureException', e.message));
      return error(new AwsError(e.status, `${e.code}Exception`, e.message));
    }
    record.params.region = region;

    try {
      const clusterArn = (name: string) => `arn:${PARTITION}:eks:${region}:${this.accountId}:cluster/${name}`;
      if (action === 'DescribeCluster' && clusterName !== undefined) {
        const name = clusterName;
        const fault = this.injectedFault('eks', action, () => clusterArn(name));
        if (fault) throw fault;
        if (this.takeAnswerDrop('eks', action)) return DROPPED;
        const cluster = this.state.clusters.get(`${region}/${name}`);
        // Real text; clusters are regional, so one in another region is not found either.
        if (!cluster) throw new AwsError(404, 'ResourceNotFoundException', `No cluster found for name: ${name}.`);
        return json(200, { cluster: this.clusterJson(cluster, clusterArn(cluster.name)) });
      }
      if (action === 'ListClusters') {
        const fault = this.injectedFault('eks', action, () => `arn:${PARTITION}:eks:${region}:${this.accountId}:cluster/*`);
        if (fault) throw fault;
        if (this.takeAnswerDrop('eks', action)) return DROPPED;
        const names = [...this.state.clusters.values()]
          .filter((c) => c.region === region)
          .map((c) => c.name)
          .sort();
        const max = Number(url.searchParams.get('maxResults') ?? '100');
        if (!Number.isInteger(max) || max < 1 || max > 100) {
          throw new AwsError(400, 'InvalidParameterException', 'maxResults must be between 1 and 100');
        }
        const token = url.searchParams.get('nextToken');
        const start = token === null ? 0 : Number(Buffer.from(token, 'base64').toString('utf8'));
        if (!Number.isInteger(start) || start < 0) throw new AwsError(400, 'InvalidParameterException', 'Invalid nextToken');
        const page = names.slice(start, start + max);
        const out: Record<string, unknown> = { clusters: page };
        if (start + max < names.length) out.nextToken = Buffer.from(String(start + max)).toString('base64');
        return json(200, out);
      }
      // Not a real AWS response: an emulator gap should be loud, not look like a missing cluster.
      throw new AwsError(404, 'UnknownOperationException', `aws emulator: EKS operation ${action} is not implemented`);
    } catch (e) {
      if (e instanceof DroppedConnection) return DROPPED;
      return error(e instanceof AwsError ? e : new AwsError(500, 'ServerException', `emulator error: ${String(e)}`));
    }
  }

  /** The DescribeCluster `cluster` object; `createdAt` is epoch seconds, as restJson1 timestamps are. */
  private clusterJson(c: Cluster, arn: string): Record<string, unknown> {
    const creating = c.status === 'CREATING';
    const out: Record<string, unknown> = {
      name: c.name,
      arn,
      createdAt: c.created.getTime() / 1000,
      version: c.version,
      roleArn: `arn:${PARTITION}:iam::${this.accountId}:role/${c.name}-cluster-role`,
      resourcesVpcConfig: {
        subnetIds: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002'],
        securityGroupIds: [],
        clusterSecurityGroupId: 'sg-0a1b2c3d4e5f60001',
        vpcId: 'vpc-0a1b2c3d4e5f60001',
        endpointPublicAccess: true,
        endpointPrivateAccess: false,
        publicAccessCidrs: ['0.0.0.0/0'],
      },
      kubernetesNetworkConfig:
        c.ipFamily === 'ipv6'
          ? { serviceIpv6Cidr: 'fd00:ec2::/108', ipFamily: 'ipv6' }
          : { serviceIpv4Cidr: '10.100.0.0/16', ipFamily: 'ipv4' },
      logging: { clusterLogging: [{ types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'], enabled: false }] },
      status: c.status,
      platformVersion: 'eks.1',
      tags: {},
      accessConfig: { authenticationMode: 'API_AND_CONFIG_MAP' },
    };
    // A cluster still CREATING has no endpoint or CA yet.
    if (!creating) {
      out.endpoint = `https://${c.endpointId}.gr7.${c.region}.eks.amazonaws.com`;
      out.certificateAuthority = {
        data: Buffer.from('-----BEGIN CERTIFICATE-----\nd2lkLWF3cy1lbXVsYXRvcg==\n-----END CERTIFICATE-----\n').toString('base64'),
      };
    }
    if (c.issuer !== undefined) out.identity = { oidc: { issuer: c.issuer } };
    return out;
  }
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
