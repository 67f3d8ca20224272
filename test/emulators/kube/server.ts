/**
 * In-memory Kubernetes API server subset for wid's tests: namespaces, ServiceAccounts and the
 * ServiceAccount TokenRequest subresource, Pods, Secrets (read-only) and MutatingWebhookConfigurations
 * (read-only), on plain http at 127.0.0.1 (port 0).
 *
 * The aim is wire fidelity, so the real `@kubernetes/client-node` (and anything else speaking the
 * API) parses every response: the same JSON shapes, the same status codes, and `Status` error bodies
 * whose `message`/`reason`/`details` are worded as kube-apiserver words them. Where a message below is
 * quoted from the API server it says so; where the emulator had to approximate, it says that too.
 * See SPEC.md in this folder for the endpoint-by-endpoint contract and what is deliberately missing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, createSign, generateKeyPair, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

// ---------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface KubeRequestRecord {
  method: string;
  /** URL path without the query string, as sent (still percent-encoded). */
  path: string;
  /** Query parameters (last value wins). */
  query: Record<string, string>;
  contentType?: string;
  /** Parsed request body: JSON/YAML as an object, anything else as the raw string; absent when empty. */
  body?: unknown;
  /** HTTP status sent back; 0 when a fault dropped the connection. */
  status: number;
  /** POST/PUT/PATCH/DELETE, except TokenRequest POSTs (they change no state). */
  write: boolean;
  /** The request carried `?dryRun=All`: validated and answered, nothing stored. */
  dryRun: boolean;
  /** Parsed response body (a Status for errors). */
  response?: unknown;
  /** `Warning` headers sent back (e.g. unknown fields dropped). */
  warnings: string[];
}

export interface IssuedToken {
  namespace: string;
  name: string;
  audiences: string[];
  expirationSeconds: number;
  token: string;
  claims: JsonObject;
  /** The `kid` in the token's header. */
  kid: string;
  /** Signed by the rogue key of `faults.signWithUnknownKey` (so it does not verify against the JWKS). */
  signedWithUnknownKey: boolean;
}

export interface KubeFaults {
  /**
   * The next `times` (default 1) requests whose method matches (`'*'` = any) and whose path (no query)
   * matches `pathRegex` get a `Status` error with this code, reason and message instead of being
   * handled. Status 0 destroys the socket without an answer (a network error on the client side).
   */
  failNext(method: string, pathRegex: RegExp, status: number, reason: string, message: string, times?: number): void;
  /**
   * The next `times` (default 1) issued TokenRequest tokens are signed with a second RSA key that is
   * NOT in /openid/v1/jwks. By default the header carries that key's own kid (so a JWKS lookup finds no
   * key); `{ sameKid: true }` keeps the published kid, so the key is found and the signature check fails.
   */
  signWithUnknownKey(times?: number, opts?: { sameKid?: boolean }): void;
  /**
   * The next `times` (default 1) issued tokens come back already expired: `exp` = now - agoSeconds
   * (default 60), `iat` = `nbf` = exp - expirationSeconds; status.expirationTimestamp says the same.
   */
  expireTokens(agoSeconds?: number, times?: number): void;
  /** Delay added before every response, in milliseconds. */
  latencyMs: number;
  /** Drops pending request faults and token faults, and sets the latency back to 0. */
  clear(): void;
}

export interface SeedPod {
  namespace: string;
  name: string;
  /** spec.serviceAccountName (and the deprecated spec.serviceAccount). Default "default". */
  serviceAccountName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** ISO time; sets metadata.creationTimestamp and status.startTime. Default now. */
  createdAt?: string;
  hostNetwork?: boolean;
  /** Stored as given. Default one container `{ name: 'app', image: 'busybox', … }`. */
  containers?: any[];
  /** Stored as given. */
  initContainers?: any[];
  /** Stored as given; none by default (no kube-api-access-xxxxx volume: see SPEC.md). */
  volumes?: any[];
  /** status.phase. Default "Running". */
  phase?: string;
}

export interface SeedSecret {
  namespace: string;
  name: string;
  /** Default "Opaque". */
  type?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Base64 values, stored as given. Default: none, except a service-account-token Secret gets placeholders. */
  data?: Record<string, string>;
}

export interface SeedWebhook {
  /** Must be a DNS subdomain with at least three segments, as the API server requires (e.g. "iam-for-pods.amazonaws.com"). */
  name: string;
  /** Default {service: {namespace: "default", name: <configuration name>, path: "/mutate", port: 443}, caBundle: <placeholder>}. */
  clientConfig?: any;
  /** Default [{operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "*"}]. */
  rules?: any[];
  /** Default "Fail" (the v1 default). */
  failurePolicy?: 'Fail' | 'Ignore';
  /** Default {} (everything). */
  namespaceSelector?: any;
  /** Default {} (everything). */
  objectSelector?: any;
  /** Default "Equivalent". */
  matchPolicy?: 'Exact' | 'Equivalent';
  /** Default "None". */
  sideEffects?: string;
  /** Default 10. */
  timeoutSeconds?: number;
  /** Default ["v1"]. */
  admissionReviewVersions?: string[];
  /** Default "Never". */
  reinvocationPolicy?: 'Never' | 'IfNeeded';
}

export interface SeedMutatingWebhookConfiguration {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  webhooks: SeedWebhook[];
}

export interface SeedServiceAccount {
  namespace: string;
  name: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  automountServiceAccountToken?: boolean;
}

export interface KubeEmulator {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** Every request, in arrival order. The same array for the emulator's lifetime (reset empties it). */
  log: KubeRequestRecord[];
  /** POST/PUT/PATCH/DELETE except TokenRequest POSTs, failed ones included. */
  writes(): KubeRequestRecord[];
  /** Creates the namespace if missing (no request logged). */
  seedNamespace(name: string, opts?: { labels?: Record<string, string>; annotations?: Record<string, string> }): void;
  /** Stores the ServiceAccount (replacing one of the same name), creating its namespace if missing. Returns a copy. */
  seedServiceAccount(sa: SeedServiceAccount): any;
  /** A deep copy of the stored object, or undefined. */
  getServiceAccount(ns: string, name: string): any | undefined;
  /** Deep copies, sorted by namespace then name; all namespaces when `ns` is omitted. */
  listServiceAccounts(ns?: string): any[];
  /** Sorted namespace names. */
  namespaces(): string[];
  /**
   * Stores a Pod as it looks on a cluster after scheduling (uid, resourceVersion, nodeName, status with
   * conditions and containerStatuses), replacing one of the same name and creating its namespace if
   * missing. Returns a copy.
   */
  seedPod(pod: SeedPod): any;
  /** A deep copy of the stored Pod, or undefined. */
  getPod(ns: string, name: string): any | undefined;
  /** Deep copies, sorted by namespace then name; all namespaces when `ns` is omitted. */
  listPods(ns?: string): any[];
  /** Stores a Secret (replacing one of the same name), creating its namespace if missing. Returns a copy. */
  seedSecret(secret: SeedSecret): any;
  /**
   * Stores a MutatingWebhookConfiguration with the v1 defaults filled in (replacing one of the same
   * name). Throws if a webhook name is not one the API server would accept. Returns a copy.
   */
  seedMutatingWebhook(config: SeedMutatingWebhookConfiguration): any;
  /** Tokens handed out by TokenRequest, oldest first. */
  tokens: IssuedToken[];
  /**
   * Writes a kubeconfig whose single cluster points at `url` with `insecure-skip-tls-verify: true`
   * (client-node 1.x refuses plain http otherwise), one user (a bearer token: the configured one, or a
   * placeholder the no-auth server ignores), one context (default name "emulator"), current-context set.
   */
  writeKubeconfig(path: string, opts?: { context?: string; namespace?: string }): void;
  /** `iss` of issued tokens and of /.well-known/openid-configuration. Assignable. */
  issuer: string;
  /**
   * Seconds added to the issuer's clock for every token (iat, nbf, exp, status.expirationTimestamp).
   * Negative = tokens from the past (e.g. -7200 with a 3600 s token: already expired). Assignable;
   * starts at the `tokenClockOffsetSeconds` option; reset() leaves it alone, like `issuer`.
   */
  tokenClockOffsetSeconds: number;
  faults: KubeFaults;
  /**
   * Called synchronously with the request's record (status filled in) right after its answer was
   * handed to the socket (`res.end`), or after a `status: 0` fault destroyed the socket (status 0).
   * A test hook (e.g. to kill the client right after its k-th write was answered); reset() leaves it
   * in place.
   */
  onResponse?: (record: KubeRequestRecord) => void;
  /** Empty state (plus "default" and "kube-system"), empty log, tokens and faults. */
  reset(): void;
  close(): Promise<void>;
}

export interface KubeEmulatorOptions {
  /** Service account token issuer. Default "https://kubernetes.default.svc.cluster.local" (kubeadm/kind). */
  issuer?: string;
  /** When set, every request must carry `Authorization: Bearer <token>` or gets 401. */
  token?: string;
  /** Audiences used when a TokenRequest names none (kube-apiserver --api-audiences). Default [issuer]. */
  apiAudiences?: string[];
  /**
   * What a TokenRequest with expirationSeconds < 600 gets. The real API server rejects it with 422
   * ("may not specify a duration less than 10 minutes"): 'reject', the default. 'raise' issues a
   * 600-second token instead.
   */
  shortTokenExpiration?: 'reject' | 'raise';
  /** kube-apiserver --service-account-max-token-expiration: longer requests are shortened, with a warning. */
  maxTokenExpirationSeconds?: number;
  /**
   * A real cluster's serviceaccount controller creates a "default" ServiceAccount in every namespace
   * shortly after the namespace appears. Off by default so the state stays exactly what tests seed.
   */
  defaultServiceAccounts?: boolean;
  /** /version minor; default "31". */
  minorVersion?: string;
  /** Initial `tokenClockOffsetSeconds` (default 0). */
  tokenClockOffsetSeconds?: number;
}

// ---------------------------------------------------------------------------------------------------
// Status errors, worded as kube-apiserver words them (k8s.io/apimachinery/pkg/api/errors)
// ---------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(readonly code: number, readonly body: JsonObject) {
    super(typeof body.message === 'string' ? body.message : `status ${code}`);
  }
}

function status(code: number, reason: string, message: string, details?: JsonObject): ApiError {
  // Key order as metav1.Status marshals: kind, apiVersion, metadata, status, message, reason, details, code.
  const body: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason !== '') body.reason = reason;
  if (details !== undefined) body.details = details;
  body.code = code;
  return new ApiError(code, body);
}

/**
 * errors.NewNotFound: `serviceaccounts "x" not found`, details {name, kind: <resource>}; for a named
 * group `mutatingwebhookconfigurations.admissionregistration.k8s.io "x" not found`, details {name, group, kind}.
 */
function notFound(resource: string, name: string, group = ''): ApiError {
  const details: JsonObject = { name };
  if (group !== '') details.group = group;
  details.kind = resource;
  return status(404, 'NotFound', `${group === '' ? resource : `${resource}.${group}`} "${name}" not found`, details);
}

/** errors.NewAlreadyExists: `serviceaccounts "x" already exists`. */
function alreadyExists(resource: string, name: string): ApiError {
  return status(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource });
}

/** storage.OptimisticLockErrorMsg, wrapped by errors.NewConflict. */
const OPTIMISTIC_LOCK = 'the object has been modified; please apply your changes to the latest version and try again';
function conflict(resource: string, name: string, why: string): ApiError {
  return status(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": ${why}`, { name, kind: resource });
}

function badRequest(message: string): ApiError {
  return status(400, 'BadRequest', message);
}

function forbidden(resource: string, name: string, why: string): ApiError {
  return status(403, 'Forbidden', `${resource} "${name}" is forbidden: ${why}`, { name, kind: resource });
}

/** The generic "no such route" answer of the API server for paths under /api and /apis. */
function routeNotFound(): ApiError {
  return status(404, 'NotFound', 'the server could not find the requested resource', {});
}

function methodNotAllowed(): ApiError {
  return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
}

function unsupportedMediaType(accepted: string[]): ApiError {
  return status(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );
}

/** k8s.io/apimachinery/pkg/util/validation/field.Error */
interface FieldError {
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueTooLong' | 'FieldValueNotSupported';
  field: string;
  value?: Json;
  detail: string;
}

/** Go's %v/%q rendering of the bad value inside "Invalid value: ...". */
function goValue(v: Json | undefined): string {
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v ?? null);
}

function fieldErrorBody(e: FieldError): string {
  switch (e.type) {
    case 'FieldValueInvalid':
      return `Invalid value: ${goValue(e.value)}: ${e.detail}`;
    case 'FieldValueRequired':
      return e.detail === '' ? 'Required value' : `Required value: ${e.detail}`;
    case 'FieldValueForbidden':
      return `Forbidden: ${e.detail}`;
    case 'FieldValueTooLong':
      return `Too long: ${e.detail}`;
    case 'FieldValueNotSupported':
      return `Unsupported value: ${goValue(e.value)}: ${e.detail}`;
  }
}

/**
 * errors.NewInvalid: 422, `ServiceAccount "Bad_Name" is invalid: metadata.name: Invalid value: ...`,
 * several errors aggregated as `[e1, e2]`; details carry one cause per field error.
 */
function invalid(kind: string, group: string, name: string, errs: FieldError[]): ApiError {
  const causes: Json[] = errs.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field }));
  const msgs = [...new Set(errs.map((e) => `${e.field}: ${fieldErrorBody(e)}`))];
  const qualified = group === '' ? kind : `${kind}.${group}`;
  const agg = msgs.length === 1 ? msgs[0] : `[${msgs.join(', ')}]`;
  const details: JsonObject = {};
  if (name !== '') details.name = name;
  if (group !== '') details.group = group;
  details.kind = kind;
  details.causes = causes;
  return status(422, 'Invalid', `${qualified} "${name}" is invalid: ${agg}`, details);
}

// ---------------------------------------------------------------------------------------------------
// Validation helpers (k8s.io/apimachinery/pkg/util/validation), messages verbatim
// ---------------------------------------------------------------------------------------------------

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const QUALIFIED_NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE_FMT = '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?';

/** validation.RegexError: note the double space before "or", which the real message has. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;
}

function isDNS1123Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push('must be no more than 63 characters');
  if (!new RegExp(`^${DNS1123_LABEL_FMT}$`).test(v)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        DNS1123_LABEL_FMT,
        'my-name',
        '123-abc',
      ),
    );
  }
  return errs;
}

function isDNS1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push('must be no more than 253 characters');
  if (!new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`).test(v)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN_FMT,
        'example.com',
      ),
    );
  }
  return errs;
}

function isQualifiedName(v: string): string[] {
  const errs: string[] = [];
  const parts = v.split('/');
  let name: string;
  const nameRegexMsg = regexError(
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    QUALIFIED_NAME_FMT,
    'MyName',
    'my.name',
    '123-abc',
  );
  if (parts.length === 1) {
    name = parts[0] ?? '';
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...isDNS1123Subdomain(prefix).map((m) => `prefix part ${m}`));
  } else {
    return [`a qualified name ${nameRegexMsg} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push('name part must be no more than 63 characters');
  if (!new RegExp(`^${QUALIFIED_NAME_FMT}$`).test(name)) errs.push(`name part ${nameRegexMsg}`);
  return errs;
}

function isValidLabelValue(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push('must be no more than 63 characters');
  if (!new RegExp(`^${LABEL_VALUE_FMT}$`).test(v)) {
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        LABEL_VALUE_FMT,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  }
  return errs;
}

/** apimachinery ValidateObjectMeta's label/annotation part. */
function validateLabelsAndAnnotations(meta: JsonObject): FieldError[] {
  const errs: FieldError[] = [];
  const labels = meta.labels;
  if (isObj(labels)) {
    for (const [k, v] of Object.entries(labels)) {
      for (const m of isQualifiedName(k)) errs.push({ type: 'FieldValueInvalid', field: 'metadata.labels', value: k, detail: m });
      if (typeof v === 'string') {
        for (const m of isValidLabelValue(v)) errs.push({ type: 'FieldValueInvalid', field: 'metadata.labels', value: v, detail: m });
      }
    }
  }
  const annotations = meta.annotations;
  if (isObj(annotations)) {
    let total = 0;
    for (const [k, v] of Object.entries(annotations)) {
      for (const m of isQualifiedName(k.toLowerCase())) {
        errs.push({ type: 'FieldValueInvalid', field: 'metadata.annotations', value: k, detail: m });
      }
      total += k.length + (typeof v === 'string' ? v.length : 0);
    }
    // TotalAnnotationSizeLimitB = 256 KiB
    if (total > 256 * 1024) {
      errs.push({ type: 'FieldValueTooLong', field: 'metadata.annotations', detail: 'may not be more than 262144 bytes' });
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------------

function isObj(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObj(a)) {
    if (!isObj(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/** Go's json type names, for "cannot unmarshal X into ..." messages. */
function goJsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return 'object';
  return typeof v === 'boolean' ? 'bool' : typeof v;
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

// ---------------------------------------------------------------------------------------------------
// Resource types
// ---------------------------------------------------------------------------------------------------

const META_FIELDS = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];

interface ResourceType {
  resource: 'namespaces' | 'serviceaccounts' | 'pods' | 'secrets' | 'mutatingwebhookconfigurations';
  kind: string;
  /** API group; '' is the core group. */
  group: string;
  /** apiVersion of objects and lists. */
  apiVersion: string;
  listKind: string;
  namespaced: boolean;
  /** Top-level fields in the order the API server emits them (Go struct order). */
  fields: string[];
  validateName(name: string): string[];
  /** Strategic-merge-patch list merge keys by dotted path ('' = merge a list of scalars as a set). */
  smpMergeKeys: Record<string, string>;
  /** fieldSelector labels the real server supports for this resource, and how to read each (missing = ""). */
  selectableFields: Record<string, (obj: JsonObject) => string>;
  prepareForCreate(obj: JsonObject): void;
  prepareForUpdate(obj: JsonObject, old: JsonObject): void;
  /** Kind-specific create validation (the strategy's Validate), after the metadata checks. */
  validate?(obj: JsonObject): FieldError[];
}

/** Field reader for selectors: a dotted path, missing or non-string values as the real fields.Set has them. */
function fieldAt(path: string): (obj: JsonObject) => string {
  const parts = path.split('.');
  return (obj) => {
    let cur: Json | undefined = obj;
    for (const p of parts) cur = isObj(cur) ? cur[p] : undefined;
    if (cur === undefined || cur === null) return '';
    return typeof cur === 'string' ? cur : String(cur);
  };
}

/** generic.ObjectMetaFieldsSet: every namespaced resource has these two. */
const NAMESPACED_META_FIELDS = { 'metadata.name': fieldAt('metadata.name'), 'metadata.namespace': fieldAt('metadata.namespace') };

const SERVICE_ACCOUNTS: ResourceType = {
  resource: 'serviceaccounts',
  kind: 'ServiceAccount',
  group: '',
  apiVersion: 'v1',
  listKind: 'ServiceAccountList',
  namespaced: true,
  selectableFields: NAMESPACED_META_FIELDS,
  fields: ['kind', 'apiVersion', 'metadata', 'secrets', 'imagePullSecrets', 'automountServiceAccountToken'],
  // ValidateServiceAccountName = NameIsDNSSubdomain
  validateName: isDNS1123Subdomain,
  // core/v1 ServiceAccount: secrets has patchStrategy=merge, patchMergeKey=name; imagePullSecrets none.
  smpMergeKeys: { secrets: 'name', 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' },
  prepareForCreate() {},
  prepareForUpdate() {},
};

const NAMESPACES: ResourceType = {
  resource: 'namespaces',
  kind: 'Namespace',
  group: '',
  apiVersion: 'v1',
  listKind: 'NamespaceList',
  namespaced: false,
  // NamespaceToSelectableFields: metadata.name plus status.phase (cluster-scoped: no metadata.namespace).
  selectableFields: { 'metadata.name': fieldAt('metadata.name'), 'status.phase': fieldAt('status.phase') },
  fields: ['kind', 'apiVersion', 'metadata', 'spec', 'status'],
  // ValidateNamespaceName = NameIsDNSLabel
  validateName: isDNS1123Label,
  smpMergeKeys: { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' },
  prepareForCreate(obj) {
    // namespaceStrategy.PrepareForCreate: status is server-owned, the "kubernetes" finalizer is always there.
    const spec = isObj(obj.spec) ? obj.spec : {};
    const fin = Array.isArray(spec.finalizers) ? spec.finalizers.filter((f) => f !== 'kubernetes') : [];
    obj.spec = { ...spec, finalizers: [...fin, 'kubernetes'] };
    obj.status = { phase: 'Active' };
    setNamespaceNameLabel(obj);
  },
  prepareForUpdate(obj, old) {
    // namespaceStrategy.PrepareForUpdate: spec.finalizers and status only change through subresources.
    obj.spec = clone(isObj(old.spec) ? old.spec : {});
    obj.status = clone(isObj(old.status) ? old.status : { phase: 'Active' });
    setNamespaceNameLabel(obj);
  },
};

/** PodSpec keys in Go struct order (k8s.io/api/core/v1), which is how the API server emits them. */
const POD_SPEC_ORDER = [
  'volumes', 'initContainers', 'containers', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds',
  'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector', 'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken',
  'nodeName', 'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext', 'imagePullSecrets', 'hostname',
  'subdomain', 'affinity', 'schedulerName', 'tolerations', 'hostAliases', 'priorityClassName', 'priority', 'dnsConfig',
  'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints',
  'setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates', 'resourceClaims', 'resources',
];

/** An object with `order`'s keys first (in that order), then any others as they were. */
function orderKeys(obj: JsonObject, order: string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of order) if (obj[k] !== undefined) out[k] = obj[k] as Json;
  for (const [k, v] of Object.entries(obj)) if (!(k in out)) out[k] = v;
  return out;
}

/** qos.GetPodQOS, simplified: BestEffort without any requests/limits, Guaranteed when every container's cpu and memory limits equal its requests. */
function podQOS(spec: JsonObject): string {
  const containers = [...(Array.isArray(spec.initContainers) ? spec.initContainers : []), ...(Array.isArray(spec.containers) ? spec.containers : [])];
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const res = isObj(c) && isObj(c.resources) ? c.resources : {};
    const req = isObj(res.requests) ? res.requests : {};
    const lim = isObj(res.limits) ? res.limits : {};
    if (Object.keys(req).length > 0 || Object.keys(lim).length > 0) any = true;
    for (const r of ['cpu', 'memory']) {
      if (lim[r] === undefined || (req[r] !== undefined && req[r] !== lim[r])) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/**
 * The v1 conversion fills the deprecated spec.serviceAccount from spec.serviceAccountName (and the other
 * way round when only the old field is sent), so both always come back from the API server.
 */
function syncServiceAccountFields(spec: JsonObject): JsonObject {
  const sa = typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : spec.serviceAccount;
  if (typeof sa === 'string' && sa !== '') {
    spec.serviceAccountName = sa;
    spec.serviceAccount = sa;
  }
  return orderKeys(spec, POD_SPEC_ORDER);
}

const PODS: ResourceType = {
  resource: 'pods',
  kind: 'Pod',
  group: '',
  apiVersion: 'v1',
  listKind: 'PodList',
  namespaced: true,
  fields: ['kind', 'apiVersion', 'metadata', 'spec', 'status'],
  // ValidatePodName = NameIsDNSSubdomain
  validateName: isDNS1123Subdomain,
  smpMergeKeys: { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' },
  // pkg/registry/core/pod: PodToSelectableFields.
  selectableFields: {
    ...NAMESPACED_META_FIELDS,
    'spec.nodeName': fieldAt('spec.nodeName'),
    'spec.restartPolicy': fieldAt('spec.restartPolicy'),
    'spec.schedulerName': fieldAt('spec.schedulerName'),
    'spec.serviceAccountName': fieldAt('spec.serviceAccountName'),
    'spec.hostNetwork': (o) => String(isObj(o.spec) && o.spec.hostNetwork === true),
    'status.phase': fieldAt('status.phase'),
    'status.podIP': fieldAt('status.podIP'),
    'status.nominatedNodeName': fieldAt('status.nominatedNodeName'),
  },
  prepareForCreate(obj) {
    // podStrategy.PrepareForCreate: status is the server's (Pending plus the QoS class). No defaulting
    // and no admission (see SPEC.md): the spec is stored as sent.
    const spec = isObj(obj.spec) ? obj.spec : {};
    obj.spec = syncServiceAccountFields(spec);
    obj.status = { phase: 'Pending', qosClass: podQOS(spec) };
  },
  prepareForUpdate() {},
  validate(obj) {
    // The first checks of ValidatePodSpec, with the real messages.
    const errs: FieldError[] = [];
    const spec = isObj(obj.spec) ? obj.spec : {};
    const containers = Array.isArray(spec.containers) ? spec.containers : [];
    if (containers.length === 0) errs.push({ type: 'FieldValueRequired', field: 'spec.containers', detail: '' });
    containers.forEach((c, i) => {
      const cont = isObj(c) ? c : {};
      const name = typeof cont.name === 'string' ? cont.name : '';
      if (name === '') errs.push({ type: 'FieldValueRequired', field: `spec.containers[${i}].name`, detail: '' });
      else for (const m of isDNS1123Label(name)) errs.push({ type: 'FieldValueInvalid', field: `spec.containers[${i}].name`, value: name, detail: m });
      if (typeof cont.image !== 'string' || cont.image.trim() === '') errs.push({ type: 'FieldValueRequired', field: `spec.containers[${i}].image`, detail: '' });
    });
    return errs;
  },
};

const SECRETS: ResourceType = {
  resource: 'secrets',
  kind: 'Secret',
  group: '',
  apiVersion: 'v1',
  listKind: 'SecretList',
  namespaced: true,
  fields: ['kind', 'apiVersion', 'metadata', 'immutable', 'data', 'stringData', 'type'],
  validateName: isDNS1123Subdomain,
  smpMergeKeys: { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' },
  // pkg/registry/core/secret: SelectableFields adds "type".
  selectableFields: { ...NAMESPACED_META_FIELDS, type: fieldAt('type') },
  prepareForCreate() {},
  prepareForUpdate() {},
};

const ADMISSION_GROUP = 'admissionregistration.k8s.io';

const MUTATING_WEBHOOKS: ResourceType = {
  resource: 'mutatingwebhookconfigurations',
  kind: 'MutatingWebhookConfiguration',
  group: ADMISSION_GROUP,
  apiVersion: `${ADMISSION_GROUP}/v1`,
  listKind: 'MutatingWebhookConfigurationList',
  namespaced: false,
  fields: ['kind', 'apiVersion', 'metadata', 'webhooks'],
  validateName: isDNS1123Subdomain,
  smpMergeKeys: { 'metadata.ownerReferences': 'uid', 'metadata.finalizers': '' },
  // Cluster-scoped, no extra fields: generic.DefaultClusterScopedAttr (metadata.name only).
  selectableFields: { 'metadata.name': fieldAt('metadata.name') },
  prepareForCreate() {},
  prepareForUpdate() {},
};

/** MutatingWebhook keys in Go struct order. */
const WEBHOOK_ORDER = [
  'name', 'clientConfig', 'rules', 'failurePolicy', 'matchPolicy', 'namespaceSelector', 'objectSelector', 'sideEffects',
  'timeoutSeconds', 'admissionReviewVersions', 'reinvocationPolicy', 'matchConditions',
];

/** The API server forces the label kubernetes.io/metadata.name=<name> on every namespace (1.21+). */
function setNamespaceNameLabel(obj: JsonObject): void {
  const meta = obj.metadata as JsonObject;
  if (typeof meta.name !== 'string' || meta.name === '') return; // validation reports the missing name
  const labels = isObj(meta.labels) ? meta.labels : {};
  labels['kubernetes.io/metadata.name'] = meta.name;
  meta.labels = labels;
}

/** Namespaces the NamespaceLifecycle admission plugin refuses to delete. */
const IMMORTAL_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);

/** Emit an object with the API server's key order (Go struct order), unknown keys last. */
function canonical(rt: ResourceType, obj: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const f of rt.fields) {
    const v = obj[f];
    if (f === 'metadata' && isObj(v)) {
      const meta: JsonObject = {};
      for (const m of META_FIELDS) if (v[m] !== undefined) meta[m] = v[m] as Json;
      for (const [k, mv] of Object.entries(v)) if (!(k in meta)) meta[k] = mv;
      // ObjectMeta's labels and annotations are `map[string]string` with `omitempty`: a map emptied by
      // a patch (its last key set to null) is not serialised, so the object has no such key.
      for (const m of ['labels', 'annotations']) if (isObj(meta[m]) && Object.keys(meta[m] as JsonObject).length === 0) delete meta[m];
      out.metadata = meta;
    } else if (v !== undefined) {
      out[f] = v;
    }
  }
  for (const [k, v] of Object.entries(obj)) if (!(k in out)) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Patches
// ---------------------------------------------------------------------------------------------------

/** RFC 7386 JSON merge patch: objects merge recursively, null deletes a key, anything else replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: JsonObject = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch, the subset these two kinds need: a merge patch, except that lists with a
 * patchMergeKey merge element-wise, `$patch: replace|delete` directives, and
 * `$deleteFromPrimitiveList/<field>`. Other `$` directives (`$setElementOrder/…`, `$retainKeys`) are ignored.
 */
function strategicMerge(target: Json | undefined, patch: Json, path: string, keys: Record<string, string>): Json | undefined {
  if (!isObj(patch)) return clone(patch);
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  const base: JsonObject = directive === 'replace' || !isObj(target) ? {} : { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = base[field];
      if (Array.isArray(cur) && Array.isArray(v)) base[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
      continue;
    }
    if (k.startsWith('$')) continue;
    const childPath = path === '' ? k : `${path}.${k}`;
    if (v === null) {
      delete base[k];
    } else if (Array.isArray(v) && childPath in keys) {
      base[k] = mergeList(base[k], v, keys[childPath] ?? '', childPath, keys);
    } else {
      const merged = strategicMerge(base[k], v, childPath, keys);
      if (merged === undefined) delete base[k];
      else base[k] = merged;
    }
  }
  return base;
}

function mergeList(target: Json | undefined, patch: Json[], key: string, path: string, keys: Record<string, string>): Json[] {
  const out: Json[] = Array.isArray(target) ? [...target] : [];
  if (key === '') {
    for (const v of patch) if (!out.some((x) => deepEqual(x, v))) out.push(clone(v));
    return out;
  }
  for (const el of patch) {
    if (!isObj(el)) continue;
    const idx = out.findIndex((x) => isObj(x) && deepEqual(x[key], el[key]));
    if (el.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = strategicMerge(out[idx], el, path, keys);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      const { $patch: _ignored, ...rest } = el;
      out.push(clone(rest));
    }
  }
  return out;
}

/** A JSON patch failure: `decode` ones are 400s, `apply` ones the 422 the API server sends. */
class JsonPatchError extends Error {
  constructor(readonly phase: 'decode' | 'apply', message: string) {
    super(message);
  }
}

function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new JsonPatchError('apply', `JSON pointer must be empty or start with a "/": ${p}`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Resolve the container holding the last pointer segment; undefined when a parent is missing. */
function container(doc: Json, parts: string[]): JsonObject | Json[] | undefined {
  let cur: Json | undefined = doc;
  for (const seg of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = /^\d+$/.test(seg) ? cur[Number(seg)] : undefined;
    else if (isObj(cur)) cur = cur[seg];
    else return undefined;
  }
  return Array.isArray(cur) || isObj(cur) ? cur : undefined;
}

function getAt(doc: Json, path: string): Json | undefined {
  let cur: Json | undefined = doc;
  for (const seg of parsePointer(path)) {
    if (Array.isArray(cur)) cur = /^\d+$/.test(seg) ? cur[Number(seg)] : undefined;
    else if (isObj(cur)) cur = cur[seg];
    else return undefined;
  }
  return cur;
}

function arrayIndex(arr: Json[], seg: string, allowEnd: boolean): number {
  if (allowEnd && seg === '-') return arr.length;
  const i = /^\d+$/.test(seg) ? Number(seg) : NaN;
  if (Number.isNaN(i) || i < 0 || i > arr.length || (!allowEnd && i === arr.length)) {
    // evanphx/json-patch: "Unable to access invalid index: %d: invalid index referenced"
    throw new JsonPatchError('apply', `Unable to access invalid index: ${seg}: invalid index referenced`);
  }
  return i;
}

/**
 * RFC 6902 JSON patch, with evanphx/json-patch's (the API server's library) error wording: notably an
 * `add` under a missing parent (e.g. /metadata/annotations/x on an object without annotations) fails.
 */
export function applyJsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) {
    throw new JsonPatchError('decode', `json: cannot unmarshal ${goJsonType(ops)} into Go value of type jsonpatch.Patch`);
  }
  let root = clone(doc);
  const add = (path: string, value: Json): void => {
    const parts = parsePointer(path);
    if (parts.length === 0) {
      root = clone(value);
      return;
    }
    const c = container(root, parts);
    const last = parts[parts.length - 1] ?? '';
    if (c === undefined) throw new JsonPatchError('apply', `add operation does not apply: doc is missing path: "${path}": missing value`);
    if (Array.isArray(c)) c.splice(arrayIndex(c, last, true), 0, clone(value));
    else c[last] = clone(value);
  };
  const remove = (path: string): Json => {
    const parts = parsePointer(path);
    const c = container(root, parts);
    const last = parts[parts.length - 1] ?? '';
    if (c === undefined) throw new JsonPatchError('apply', `remove operation does not apply: doc is missing path: "${path}": missing value`);
    if (Array.isArray(c)) {
      const i = arrayIndex(c, last, false);
      return c.splice(i, 1)[0] ?? null;
    }
    if (!(last in c)) throw new JsonPatchError('apply', `unable to remove nonexistent key: ${last}: missing value`);
    const v = c[last] ?? null;
    delete c[last];
    return v;
  };
  for (const op of ops) {
    if (!isObj(op)) throw new JsonPatchError('decode', `json: cannot unmarshal ${goJsonType(op)} into Go value of type jsonpatch.Operation`);
    const kind = op.op;
    const path = op.path;
    if (typeof path !== 'string') throw new JsonPatchError('apply', `${String(kind)} operation missing path`);
    switch (kind) {
      case 'add':
        add(path, op.value ?? null);
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace': {
        const parts = parsePointer(path);
        if (parts.length === 0) {
          root = clone(op.value ?? null);
          break;
        }
        const c = container(root, parts);
        const last = parts[parts.length - 1] ?? '';
        if (c === undefined) throw new JsonPatchError('apply', `replace operation does not apply: doc is missing path: ${path}: missing value`);
        if (Array.isArray(c)) c[arrayIndex(c, last, false)] = clone(op.value ?? null);
        else if (!(last in c)) throw new JsonPatchError('apply', `replace operation does not apply: doc is missing key: ${path}: missing value`);
        else c[last] = clone(op.value ?? null);
        break;
      }
      case 'move':
      case 'copy': {
        const from = op.from;
        if (typeof from !== 'string') throw new JsonPatchError('apply', `${kind} operation missing from`);
        const v = kind === 'move' ? remove(from) : getAt(root, from);
        if (v === undefined) throw new JsonPatchError('apply', `copy operation does not apply: doc is missing from path: ${from}: missing value`);
        add(path, v);
        break;
      }
      case 'test': {
        const cur = getAt(root, path);
        // evanphx treats a missing path as equal to a null value.
        const ok = cur === undefined ? (op.value ?? null) === null : deepEqual(cur, op.value ?? null);
        if (!ok) throw new JsonPatchError('apply', `testing value ${path} failed: test failed`);
        break;
      }
      default:
        throw new JsonPatchError('apply', `Unexpected kind: ${String(kind)}`);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------------------
// Token signing: one 2048-bit RSA key per process, generated off-thread when first needed (~0.3 s on
// this 2-core VM, so emulators that never issue a token never pay for it). 2048 bits because JWT
// libraries such as jose refuse RS256 keys below that.
// ---------------------------------------------------------------------------------------------------

interface SigningKey {
  privateKey: KeyObject;
  kid: string;
  jwk: JsonObject;
}

function newSigningKey(): Promise<SigningKey> {
  return new Promise<SigningKey>((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
      if (err) return reject(err);
      // The API server's kid: base64url(sha256(DER(SubjectPublicKeyInfo))).
      const der = publicKey.export({ type: 'spki', format: 'der' });
      const kid = b64url(createHash('sha256').update(der).digest());
      const pub = publicKey.export({ format: 'jwk' });
      resolve({ privateKey, kid, jwk: { use: 'sig', kty: 'RSA', kid, alg: 'RS256', n: String(pub.n), e: String(pub.e) } });
    });
  });
}

let signingKeyPromise: Promise<SigningKey> | undefined;
/** The key published at /openid/v1/jwks. */
function signingKey(): Promise<SigningKey> {
  signingKeyPromise ??= newSigningKey();
  return signingKeyPromise;
}

let rogueKeyPromise: Promise<SigningKey> | undefined;
/** faults.signWithUnknownKey: a second key, never published; generated only when a test asks for it. */
function rogueKey(): Promise<SigningKey> {
  rogueKeyPromise ??= newSigningKey();
  return rogueKeyPromise;
}

/** An RS256 JWT. `rogue` signs with the unpublished key, under its own kid or (sameKid) the published one. */
async function signJwt(claims: JsonObject, rogue?: { sameKid: boolean }): Promise<{ token: string; kid: string }> {
  const published = await signingKey();
  const key = rogue === undefined ? published : await rogueKey();
  const kid = rogue?.sameKid === true ? published.kid : key.kid;
  const head = b64url(JSON.stringify({ alg: 'RS256', kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(key.privateKey);
  return { token: `${head}.${body}.${b64url(sig)}`, kid };
}

// ---------------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------------

type LabelReq = (labels: Record<string, string>) => boolean;

function parseLabelSelector(sel: string): LabelReq[] {
  const reqs: LabelReq[] = [];
  // Split on commas that are not inside parentheses.
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else cur += ch;
  }
  terms.push(cur);
  for (const raw of terms) {
    const t = raw.trim();
    if (t === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = t.match(/^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const [, key = '', op, list = ''] = m;
      const values = list.split(',').map((s) => s.trim());
      reqs.push(op === 'in' ? (l) => key in l && values.includes(l[key] ?? '') : (l) => !(key in l) || !values.includes(l[key] ?? ''));
    } else if ((m = t.match(/^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$/))) {
      const [, key = '', op, value = ''] = m;
      reqs.push(op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value);
    } else if ((m = t.match(/^!\s*([^\s!=()]+)$/))) {
      const key = m[1] ?? '';
      reqs.push((l) => !(key in l));
    } else if ((m = t.match(/^([^\s!=()]+)$/))) {
      const key = m[1] ?? '';
      reqs.push((l) => key in l);
    } else {
      throw badRequest(`unable to parse requirement: ${t}`);
    }
  }
  return reqs;
}

function parseFieldSelector(sel: string, rt: ResourceType): ((obj: JsonObject) => boolean)[] {
  const out: ((obj: JsonObject) => boolean)[] = [];
  for (const raw of sel.split(',')) {
    const t = raw.trim();
    if (t === '') continue;
    const m = t.match(/^([^!=]+)(==|=|!=)(.*)$/);
    if (!m) throw badRequest(`invalid selector: '${sel}'; can't understand '${t}'`);
    const [, rawField = '', op, value = ''] = m;
    const field = rawField.trim();
    const read = Object.hasOwn(rt.selectableFields, field) ? rt.selectableFields[field] : undefined;
    // The real server answers an unknown label with 400 BadRequest "field label not supported: <f>".
    if (read === undefined) throw badRequest(`field label not supported: ${field}`);
    out.push((obj) => (op === '!=' ? read(obj) !== value : read(obj) === value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------------

interface Fault {
  method: string;
  pathRegex: RegExp;
  status: number;
  reason: string;
  message: string;
  remaining: number;
}

interface Reply {
  code: number;
  body: Json | string;
  contentType?: string;
  warnings?: string[];
}

interface WriteOptions {
  dryRun: boolean;
  fieldValidation: 'Ignore' | 'Warn' | 'Strict';
}

const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'];

export async function startKubeEmulator(opts: KubeEmulatorOptions = {}): Promise<KubeEmulator> {
  const minor = opts.minorVersion ?? '31';

  // etcd-like global revision: every stored change takes the next one; resourceVersion is its string.
  let revision = 1000;
  const stores: Record<ResourceType['resource'], Map<string, JsonObject>> = {
    namespaces: new Map(),
    serviceaccounts: new Map(),
    pods: new Map(),
    secrets: new Map(),
    mutatingwebhookconfigurations: new Map(),
  };
  const log: KubeRequestRecord[] = [];
  const tokens: IssuedToken[] = [];
  let faultList: Fault[] = [];
  // Token faults: pending counts, consumed one per issued token.
  let unknownKeyFault = { remaining: 0, sameKid: false };
  let expireFault = { remaining: 0, agoSeconds: 60 };

  const keyOf = (rt: ResourceType, ns: string, name: string): string => (rt.namespaced ? `${ns}/${name}` : name);
  const nextRV = (): string => String(++revision);
  const genName = (prefix: string): string => {
    // names.SimpleNameGenerator: 5 chars from an alphabet without vowels or confusable digits.
    const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
    let s = '';
    for (const b of randomBytes(5)) s += alphabet[b % alphabet.length];
    return prefix + s;
  };

  function storeNew(rt: ResourceType, obj: JsonObject, createdAt?: string): JsonObject {
    const meta = obj.metadata as JsonObject;
    meta.uid = randomUUID();
    meta.creationTimestamp = createdAt ?? rfc3339(Date.now());
    meta.resourceVersion = nextRV();
    const stored = canonical(rt, obj);
    stores[rt.resource].set(keyOf(rt, String(meta.namespace ?? ''), String(meta.name)), stored);
    return stored;
  }

  function seedNamespace(name: string, extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): void {
    if (stores.namespaces.has(name)) return;
    const meta: JsonObject = { name };
    if (extra.labels) meta.labels = { ...extra.labels };
    if (extra.annotations) meta.annotations = { ...extra.annotations };
    const obj: JsonObject = { kind: 'Namespace', apiVersion: 'v1', metadata: meta };
    NAMESPACES.prepareForCreate(obj);
    storeNew(NAMESPACES, obj);
    if (opts.defaultServiceAccounts) seedSA({ namespace: name, name: 'default' });
  }

  function seedSA(sa: SeedServiceAccount): JsonObject {
    seedNamespace(sa.namespace);
    const meta: JsonObject = { name: sa.name, namespace: sa.namespace };
    if (sa.labels) meta.labels = { ...sa.labels };
    if (sa.annotations) meta.annotations = { ...sa.annotations };
    const obj: JsonObject = { kind: 'ServiceAccount', apiVersion: 'v1', metadata: meta };
    if (sa.automountServiceAccountToken !== undefined) obj.automountServiceAccountToken = sa.automountServiceAccountToken;
    return clone(storeNew(SERVICE_ACCOUNTS, obj));
  }

  function sortedValues(rt: ResourceType, ns?: string): JsonObject[] {
    return [...stores[rt.resource].entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, v]) => v)
      .filter((o) => ns === undefined || (o.metadata as JsonObject).namespace === ns);
  }

  /** A running pod as a real cluster shows it: scheduled, with conditions and container statuses. */
  function seedPod(pod: SeedPod): JsonObject {
    seedNamespace(pod.namespace);
    const createdMs = pod.createdAt !== undefined ? Date.parse(pod.createdAt) : Date.now();
    if (Number.isNaN(createdMs)) throw new Error(`seedPod: createdAt is not a date: ${pod.createdAt ?? ''}`);
    const created = rfc3339(createdMs);
    const phase = pod.phase ?? 'Running';
    const meta: JsonObject = { name: pod.name, namespace: pod.namespace };
    if (pod.labels) meta.labels = { ...pod.labels };
    if (pod.annotations) meta.annotations = { ...pod.annotations };
    const containers: Json[] = pod.containers
      ? (clone(pod.containers) as Json[])
      : [{ name: 'app', image: 'busybox', resources: {}, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'Always' }];
    const sa = pod.serviceAccountName ?? 'default';
    const spec: JsonObject = {};
    if (pod.volumes) spec.volumes = clone(pod.volumes) as Json[];
    if (pod.initContainers) spec.initContainers = clone(pod.initContainers) as Json[];
    Object.assign(spec, {
      containers,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst', // SetDefaults_PodSpec, hostNetwork or not
      serviceAccountName: sa,
      serviceAccount: sa,
      nodeName: 'node-1',
    });
    if (pod.hostNetwork !== undefined) spec.hostNetwork = pod.hostNetwork;
    Object.assign(spec, {
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    });
    const hostIP = '172.18.0.2';
    const podIP = pod.hostNetwork ? hostIP : `10.244.0.${(revision % 250) + 2}`;
    const running = phase === 'Running';
    const done = phase === 'Succeeded' || phase === 'Failed';
    const cond = (type: string, ok: boolean): Json => ({ type, status: ok ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: created });
    const conditions: Json[] = [
      cond('PodReadyToStartContainers', running),
      cond('Initialized', phase !== 'Pending'),
      cond('Ready', running),
      cond('ContainersReady', running),
      cond('PodScheduled', true),
    ];
    const containerStatuses = containers.map((c): Json => {
      const cont = isObj(c) ? c : {};
      const image = typeof cont.image === 'string' ? cont.image : '';
      const digest = createHash('sha256').update(image).digest('hex');
      const state: JsonObject = running
        ? { running: { startedAt: created } }
        : done
          ? { terminated: { exitCode: phase === 'Failed' ? 1 : 0, reason: phase === 'Failed' ? 'Error' : 'Completed', startedAt: created, finishedAt: created } }
          : { waiting: { reason: 'ContainerCreating' } };
      const st: JsonObject = { name: typeof cont.name === 'string' ? cont.name : '', state, lastState: {}, ready: running, restartCount: 0, image };
      if (phase !== 'Pending') {
        st.imageID = `${image}@sha256:${digest}`;
        st.containerID = `containerd://${createHash('sha256').update(`${pod.namespace}/${pod.name}/${String(st.name)}`).digest('hex')}`;
      }
      st.started = running;
      return st;
    });
    const status: JsonObject = {
      phase,
      conditions,
      hostIP,
      hostIPs: [{ ip: hostIP }],
      podIP,
      podIPs: [{ ip: podIP }],
      startTime: created,
      containerStatuses,
      qosClass: podQOS(spec),
    };
    const obj: JsonObject = { kind: 'Pod', apiVersion: 'v1', metadata: meta, spec, status };
    return clone(storeNew(PODS, obj, created));
  }

  function seedSecret(sec: SeedSecret): JsonObject {
    seedNamespace(sec.namespace);
    const type = sec.type ?? 'Opaque';
    const meta: JsonObject = { name: sec.name, namespace: sec.namespace };
    if (sec.labels) meta.labels = { ...sec.labels };
    const annotations: Record<string, string> = { ...(sec.annotations ?? {}) };
    const placeholder = Buffer.from('placeholder').toString('base64');
    let data: Record<string, string> | undefined = sec.data ? { ...sec.data } : undefined;
    if (type === 'kubernetes.io/service-account-token') {
      // What the token controller fills in: the SA's uid and the three data keys. Placeholders, not credentials.
      const saName = annotations['kubernetes.io/service-account.name'];
      const sa = saName === undefined ? undefined : stores.serviceaccounts.get(`${sec.namespace}/${saName}`);
      const saUid = sa === undefined ? undefined : (sa.metadata as JsonObject).uid;
      if (typeof saUid === 'string' && annotations['kubernetes.io/service-account.uid'] === undefined) {
        annotations['kubernetes.io/service-account.uid'] = saUid;
      }
      data ??= { 'ca.crt': placeholder, namespace: Buffer.from(sec.namespace).toString('base64'), token: placeholder };
    }
    if (Object.keys(annotations).length > 0) meta.annotations = annotations;
    const obj: JsonObject = { kind: 'Secret', apiVersion: 'v1', metadata: meta };
    if (data !== undefined && Object.keys(data).length > 0) obj.data = data;
    obj.type = type;
    return clone(storeNew(SECRETS, obj));
  }

  function seedMutatingWebhook(cfg: SeedMutatingWebhookConfiguration): JsonObject {
    // ValidateMutatingWebhookConfiguration's webhook-name rules, so a seed is something a cluster could hold.
    const seen = new Set<string>();
    cfg.webhooks.forEach((w, i) => {
      const problems = isDNS1123Subdomain(w.name);
      if (w.name.split('.').length < 3) problems.push('should be a domain with at least three segments separated by dots');
      if (seen.has(w.name)) problems.push('Duplicate value');
      seen.add(w.name);
      if (problems.length > 0) throw new Error(`seedMutatingWebhook: webhooks[${i}].name: Invalid value: ${JSON.stringify(w.name)}: ${problems.join('; ')}`);
    });
    const meta: JsonObject = { name: cfg.name };
    if (cfg.labels) meta.labels = { ...cfg.labels };
    if (cfg.annotations) meta.annotations = { ...cfg.annotations };
    meta.generation = 1; // the strategy's PrepareForCreate
    const webhooks = cfg.webhooks.map((w): Json => {
      // SetDefaults_MutatingWebhook and friends (admissionregistration/v1 defaults).
      const clientConfig: JsonObject = clone(
        (w.clientConfig ?? { service: { namespace: 'default', name: cfg.name, path: '/mutate' }, caBundle: Buffer.from('placeholder').toString('base64') }) as JsonObject,
      );
      if (isObj(clientConfig.service)) {
        clientConfig.service = orderKeys({ port: 443, ...clientConfig.service }, ['namespace', 'name', 'path', 'port']);
      }
      const rules = (clone(w.rules ?? [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }]) as Json[]).map((r) =>
        isObj(r) ? orderKeys({ scope: '*', ...r }, ['operations', 'apiGroups', 'apiVersions', 'resources', 'scope']) : r,
      );
      return orderKeys(
        {
          name: w.name,
          clientConfig: orderKeys(clientConfig, ['url', 'service', 'caBundle']),
          rules,
          failurePolicy: w.failurePolicy ?? 'Fail',
          matchPolicy: w.matchPolicy ?? 'Equivalent',
          namespaceSelector: clone((w.namespaceSelector ?? {}) as Json),
          objectSelector: clone((w.objectSelector ?? {}) as Json),
          sideEffects: w.sideEffects ?? 'None',
          timeoutSeconds: w.timeoutSeconds ?? 10,
          admissionReviewVersions: w.admissionReviewVersions ?? ['v1'],
          reinvocationPolicy: w.reinvocationPolicy ?? 'Never',
        },
        WEBHOOK_ORDER,
      );
    });
    const obj: JsonObject = { kind: MUTATING_WEBHOOKS.kind, apiVersion: MUTATING_WEBHOOKS.apiVersion, metadata: meta, webhooks };
    return clone(storeNew(MUTATING_WEBHOOKS, obj));
  }

  function reset(): void {
    for (const m of Object.values(stores)) m.clear();
    log.length = 0;
    tokens.length = 0;
    faultList = [];
    unknownKeyFault = { remaining: 0, sameKid: false };
    expireFault = { remaining: 0, agoSeconds: 60 };
    faults.latencyMs = 0;
    seedNamespace('default');
    seedNamespace('kube-system');
  }

  // ---- request decoding -----------------------------------------------------------------------

  function writeOptions(query: URLSearchParams, optionsKind: string): WriteOptions {
    const dry = query.getAll('dryRun');
    for (const d of dry) {
      if (d !== 'All') {
        // ValidateDryRun
        throw invalid(optionsKind, 'meta.k8s.io', '', [
          { type: 'FieldValueNotSupported', field: 'dryRun', value: d, detail: 'supported values: "All"' },
        ]);
      }
    }
    const fv = query.get('fieldValidation') ?? 'Warn';
    if (fv !== 'Ignore' && fv !== 'Warn' && fv !== 'Strict') {
      throw badRequest(`fieldValidation parameter unsupported: ${fv}`);
    }
    return { dryRun: dry.length > 0, fieldValidation: fv };
  }

  /** The body of a POST/PUT as an object (JSON or YAML), or the API server's decode error. */
  function parseBody(raw: string, contentType: string): Json {
    const ct = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (ct !== 'application/json' && ct !== 'application/yaml' && ct !== '') {
      throw unsupportedMediaType(['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']);
    }
    try {
      return (ct === 'application/yaml' ? parseYaml(raw) : JSON.parse(raw)) as Json;
    } catch (e) {
      throw badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
    }
  }

  /**
   * Decode a request object of kind rt the way the API server's JSON decoder does: type errors are 400s
   * worded like Go's encoding/json; unknown fields are dropped with a Warning (fieldValidation=Warn, the
   * default), silently (Ignore) or refused (Strict).
   */
  function decodeObject(rt: ResourceType, input: Json, fv: WriteOptions['fieldValidation'], warnings: string[]): JsonObject {
    const cannotHandle = (why: string): ApiError => badRequest(`${rt.kind} in version "v1" cannot be handled as a ${rt.kind}: ${why}`);
    if (!isObj(input)) throw cannotHandle(`json: cannot unmarshal ${goJsonType(input)} into Go value of type struct`);
    const obj = clone(input);
    if (obj.apiVersion !== undefined && obj.apiVersion !== 'v1') {
      throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (v1)`);
    }
    if (obj.kind !== undefined && obj.kind !== rt.kind) {
      // Approximation: the real decoder's wording for a kind mismatch varies by version.
      throw badRequest(`${String(obj.kind)} in version "v1" cannot be handled as a ${rt.kind}: the kind in the data does not match the requested resource`);
    }
    obj.apiVersion = 'v1';
    obj.kind = rt.kind;
    const meta = obj.metadata ?? {};
    if (!isObj(meta)) throw cannotHandle(`json: cannot unmarshal ${goJsonType(meta)} into Go struct field ${rt.kind}.metadata of type v1.ObjectMeta`);
    obj.metadata = meta;
    for (const f of ['name', 'generateName', 'namespace', 'uid', 'resourceVersion'] as const) {
      const v = meta[f];
      if (v === null) delete meta[f];
      else if (v !== undefined && typeof v !== 'string') {
        throw cannotHandle(`json: cannot unmarshal ${goJsonType(v)} into Go struct field ObjectMeta.metadata.${f} of type string`);
      }
    }
    for (const f of ['labels', 'annotations'] as const) {
      const v = meta[f];
      if (v === null) delete meta[f];
      else if (v !== undefined) {
        if (!isObj(v)) throw cannotHandle(`json: cannot unmarshal ${goJsonType(v)} into Go struct field ObjectMeta.metadata.${f} of type map[string]string`);
        for (const [k, val] of Object.entries(v)) {
          if (val === null) v[k] = '';
          else if (typeof val !== 'string') {
            throw cannotHandle(`json: cannot unmarshal ${goJsonType(val)} into Go struct field ObjectMeta.metadata.${f} of type string`);
          }
        }
      }
    }
    if (rt === PODS) {
      for (const f of ['spec', 'status'] as const) {
        const v = obj[f];
        if (v === null) delete obj[f];
        else if (v !== undefined && !isObj(v)) {
          throw cannotHandle(`json: cannot unmarshal ${goJsonType(v)} into Go struct field Pod.${f} of type v1.Pod${f === 'spec' ? 'Spec' : 'Status'}`);
        }
      }
      const spec = isObj(obj.spec) ? obj.spec : {};
      for (const f of ['volumes', 'initContainers', 'containers'] as const) {
        const v = spec[f];
        if (v === null) delete spec[f];
        else if (v !== undefined && !Array.isArray(v)) {
          const goType = f === 'volumes' ? 'Volume' : 'Container';
          throw cannotHandle(`json: cannot unmarshal ${goJsonType(v)} into Go struct field PodSpec.spec.${f} of type []v1.${goType}`);
        }
      }
    }
    if (rt === SERVICE_ACCOUNTS) {
      const a = obj.automountServiceAccountToken;
      if (a === null) delete obj.automountServiceAccountToken;
      else if (a !== undefined && typeof a !== 'boolean') {
        throw cannotHandle(`json: cannot unmarshal ${goJsonType(a)} into Go struct field ServiceAccount.automountServiceAccountToken of type bool`);
      }
      for (const f of ['secrets', 'imagePullSecrets'] as const) {
        const v = obj[f];
        if (v === null) delete obj[f];
        else if (v !== undefined && !Array.isArray(v)) {
          throw cannotHandle(`json: cannot unmarshal ${goJsonType(v)} into Go struct field ServiceAccount.${f} of type []v1.${f === 'secrets' ? 'ObjectReference' : 'LocalObjectReference'}`);
        }
      }
    }
    const unknown: string[] = [];
    for (const k of Object.keys(obj)) {
      if (!rt.fields.includes(k)) {
        unknown.push(k);
        delete obj[k];
      }
    }
    for (const k of Object.keys(meta)) {
      if (!META_FIELDS.includes(k)) {
        unknown.push(`metadata.${k}`);
        delete meta[k];
      }
    }
    if (unknown.length > 0) {
      if (fv === 'Strict') {
        throw cannotHandle(`strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`);
      }
      if (fv === 'Warn') for (const u of unknown) warnings.push(`unknown field "${u}"`);
    }
    return obj;
  }

  // ---- generic REST verbs -----------------------------------------------------------------------

  function list(rt: ResourceType, ns: string | undefined, query: URLSearchParams): Reply {
    if (query.get('watch') === 'true' || query.get('watch') === '1') {
      throw badRequest('kube emulator: watch is not implemented');
    }
    const labelReqs = parseLabelSelector(query.get('labelSelector') ?? '');
    const fieldReqs = parseFieldSelector(query.get('fieldSelector') ?? '', rt);
    // etcd returns keys sorted, so lists come back ordered by namespace, then name.
    const items = sortedValues(rt, ns)
      .filter((o) => {
        const meta = o.metadata as JsonObject;
        const labels = (isObj(meta.labels) ? meta.labels : {}) as Record<string, string>;
        return labelReqs.every((r) => r(labels)) && fieldReqs.every((r) => r(o));
      })
      .map((o) => {
        // List items come without kind/apiVersion from the real API server.
        const { kind: _k, apiVersion: _a, ...rest } = clone(o);
        return rest as JsonObject;
      });
    return { code: 200, body: { kind: rt.listKind, apiVersion: rt.apiVersion, metadata: { resourceVersion: String(revision) }, items } };
  }

  function get(rt: ResourceType, ns: string, name: string): Reply {
    const obj = stores[rt.resource].get(keyOf(rt, ns, name));
    if (!obj) throw notFound(rt.resource, name, rt.group);
    return { code: 200, body: clone(obj) };
  }

  function create(rt: ResourceType, ns: string, raw: string, contentType: string, query: URLSearchParams): Reply {
    const wo = writeOptions(query, 'CreateOptions');
    const warnings: string[] = [];
    const obj = decodeObject(rt, parseBody(raw, contentType), wo.fieldValidation, warnings);
    const meta = obj.metadata as JsonObject;
    if (rt.namespaced) {
      // rest.EnsureObjectNamespaceMatchesRequestNamespace, checked by the create handler before admission.
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== ns) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = ns;
      // NamespaceLifecycle admission: no new content in a namespace that does not exist.
      if (!stores.namespaces.has(ns)) throw notFound('namespaces', ns);
    } else {
      delete meta.namespace; // cluster-scoped: the API server clears it
    }
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string' && meta.generateName !== '') {
      meta.name = genName(meta.generateName);
    }
    const name = typeof meta.name === 'string' ? meta.name : '';
    // rest.BeforeCreate: system fields are the server's; then strategy validation (422).
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'selfLink', 'managedFields']) {
      delete meta[f];
    }
    rt.prepareForCreate(obj);
    const errs: FieldError[] = [];
    if (name === '') {
      errs.push({ type: 'FieldValueRequired', field: 'metadata.name', detail: 'name or generateName is required' });
    } else {
      for (const m of rt.validateName(name)) errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', value: name, detail: m });
    }
    errs.push(...validateLabelsAndAnnotations(meta));
    if (rt.validate) errs.push(...rt.validate(obj));
    if (errs.length > 0) throw invalid(rt.kind, rt.group, name, errs);
    // The etcd3 store refuses a resourceVersion on create with a plain error, which the API server
    // turns into a 500 with no reason: "resourceVersion should not be set on objects to be created".
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      throw status(500, '', 'resourceVersion should not be set on objects to be created');
    }
    delete meta.resourceVersion;
    if (stores[rt.resource].has(keyOf(rt, ns, name))) throw alreadyExists(rt.resource, name);
    if (wo.dryRun) {
      meta.uid = randomUUID();
      meta.creationTimestamp = rfc3339(Date.now());
      return { code: 201, body: canonical(rt, obj), warnings };
    }
    const stored = storeNew(rt, obj);
    if (rt === NAMESPACES && opts.defaultServiceAccounts) seedSA({ namespace: name, name: 'default' });
    return { code: 201, body: clone(stored), warnings };
  }

  /**
   * The common tail of PUT and PATCH (genericregistry.Store.Update): resourceVersion precondition,
   * immutable system fields, strategy, validation; a no-op write keeps the old resourceVersion, as
   * etcd's GuaranteedUpdate does when the bytes do not change.
   */
  function commitUpdate(rt: ResourceType, ns: string, name: string, existing: JsonObject, obj: JsonObject, wo: WriteOptions, warnings: string[]): Reply {
    const meta = obj.metadata as JsonObject;
    const oldMeta = existing.metadata as JsonObject;
    if (rt.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== ns) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = ns;
    } else delete meta.namespace;
    if (meta.name !== name) {
      throw badRequest(`the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`);
    }
    const rv = meta.resourceVersion;
    if (typeof rv === 'string' && rv !== '' && rv !== oldMeta.resourceVersion) {
      throw conflict(rt.resource, name, OPTIMISTIC_LOCK);
    }
    const errs: FieldError[] = [];
    if (typeof meta.uid === 'string' && meta.uid !== '' && meta.uid !== oldMeta.uid) {
      errs.push({ type: 'FieldValueInvalid', field: 'metadata.uid', value: meta.uid, detail: 'field is immutable' });
    }
    meta.uid = oldMeta.uid ?? null;
    meta.creationTimestamp = oldMeta.creationTimestamp ?? null;
    for (const f of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'selfLink', 'managedFields']) {
      if (oldMeta[f] !== undefined) meta[f] = oldMeta[f] as Json;
      else delete meta[f];
    }
    rt.prepareForUpdate(obj, existing);
    errs.push(...validateLabelsAndAnnotations(meta));
    if (errs.length > 0) throw invalid(rt.kind, '', name, errs);
    meta.resourceVersion = oldMeta.resourceVersion ?? null;
    const candidate = canonical(rt, obj);
    if (deepEqual(candidate, existing) || wo.dryRun) return { code: 200, body: candidate, warnings };
    (candidate.metadata as JsonObject).resourceVersion = nextRV();
    stores[rt.resource].set(keyOf(rt, ns, name), candidate);
    return { code: 200, body: clone(candidate), warnings };
  }

  function update(rt: ResourceType, ns: string, name: string, raw: string, contentType: string, query: URLSearchParams): Reply {
    const wo = writeOptions(query, 'UpdateOptions');
    const warnings: string[] = [];
    const obj = decodeObject(rt, parseBody(raw, contentType), wo.fieldValidation, warnings);
    const meta = obj.metadata as JsonObject;
    if (rt.namespaced && meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== ns) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (meta.name !== name) {
      throw badRequest(`the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`);
    }
    // Neither kind allows create-on-update: PUT to a missing object is a 404.
    const existing = stores[rt.resource].get(keyOf(rt, ns, name));
    if (!existing) throw notFound(rt.resource, name);
    return commitUpdate(rt, ns, name, existing, obj, wo, warnings);
  }

  function patch(rt: ResourceType, ns: string, name: string, raw: string, contentType: string, query: URLSearchParams): Reply {
    const wo = writeOptions(query, 'PatchOptions');
    const ct = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (!PATCH_TYPES.includes(ct)) {
      // Server-side apply (application/apply-patch+yaml) is not emulated; see SPEC.md.
      throw unsupportedMediaType(PATCH_TYPES);
    }
    const existing = stores[rt.resource].get(keyOf(rt, ns, name));
    if (!existing) throw notFound(rt.resource, name);
    let patchDoc: Json;
    try {
      patchDoc = JSON.parse(raw) as Json;
    } catch {
      // evanphx/json-patch's ErrBadJSONPatch / ErrBadJSONDoc, turned into a 400 by the patch handler.
      throw badRequest(ct === 'application/json-patch+json' ? 'invalid character in JSON patch' : 'Invalid JSON Patch');
    }
    let patched: Json | undefined;
    if (ct === 'application/json-patch+json') {
      try {
        patched = applyJsonPatch(existing, patchDoc);
      } catch (e) {
        if (!(e instanceof JsonPatchError)) throw e;
        if (e.phase === 'decode') throw badRequest(e.message);
        // errors.NewGenericServerResponse(422, ...): kubectl prints "The request is invalid: the server
        // rejected our request due to an error in our request".
        throw status(422, 'Invalid', 'the server rejected our request due to an error in our request', {
          causes: [{ reason: 'UnexpectedServerResponse', message: e.message }],
        });
      }
    } else if (ct === 'application/merge-patch+json') {
      if (!isObj(patchDoc)) throw badRequest('Invalid JSON Patch');
      patched = mergePatch(existing, patchDoc);
    } else {
      if (!isObj(patchDoc)) {
        throw badRequest(`json: cannot unmarshal ${goJsonType(patchDoc)} into Go value of type map[string]interface {}`);
      }
      patched = strategicMerge(existing, patchDoc, '', rt.smpMergeKeys);
    }
    const warnings: string[] = [];
    const obj = decodeObject(rt, patched ?? null, wo.fieldValidation, warnings);
    return commitUpdate(rt, ns, name, existing, obj, wo, warnings);
  }

  function remove(rt: ResourceType, ns: string, name: string, raw: string, query: URLSearchParams): Reply {
    let deleteOptions: Json = null;
    if (raw.trim() !== '') {
      try {
        deleteOptions = JSON.parse(raw) as Json;
      } catch (e) {
        throw badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
      }
    }
    const bodyDry = isObj(deleteOptions) && Array.isArray(deleteOptions.dryRun) && deleteOptions.dryRun.includes('All');
    const wo = writeOptions(query, 'DeleteOptions');
    const dryRun = wo.dryRun || bodyDry;
    if (rt === NAMESPACES && IMMORTAL_NAMESPACES.has(name)) {
      // NamespaceLifecycle admission
      throw forbidden('namespaces', name, 'this namespace may not be deleted');
    }
    const key = keyOf(rt, ns, name);
    const existing = stores[rt.resource].get(key);
    if (!existing) throw notFound(rt.resource, name);
    const meta = existing.metadata as JsonObject;
    const pre = isObj(deleteOptions) && isObj(deleteOptions.preconditions) ? deleteOptions.preconditions : {};
    if (typeof pre.uid === 'string' && pre.uid !== meta.uid) {
      throw conflict(rt.resource, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(meta.uid)}`);
    }
    if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== meta.resourceVersion) {
      throw conflict(
        rt.resource,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in meta: ${String(meta.resourceVersion)}`,
      );
    }
    if (rt === NAMESPACES) {
      // A namespace is deleted gracefully: the answer is the object in phase Terminating with a
      // deletionTimestamp. The emulator then finalizes at once (the real namespace controller takes a while).
      const out = clone(existing);
      const om = out.metadata as JsonObject;
      om.deletionTimestamp = rfc3339(Date.now());
      om.resourceVersion = dryRun ? om.resourceVersion ?? null : nextRV();
      out.status = { phase: 'Terminating' };
      if (!dryRun) {
        stores.namespaces.delete(key);
        for (const store of [stores.serviceaccounts, stores.pods, stores.secrets]) {
          for (const k of [...store.keys()]) if (k.startsWith(`${name}/`)) store.delete(k);
        }
      }
      return { code: 200, body: canonical(rt, out) };
    }
    if (rt === PODS) {
      // podStrategy.CheckGracefulDelete: an unscheduled pod, or one that has finished, goes at once
      // (the answer is the pod as it was); otherwise the grace period (DeleteOptions, else
      // spec.terminationGracePeriodSeconds, else 30) starts: the answer carries deletionTimestamp =
      // now + grace and deletionGracePeriodSeconds. The emulator then removes the pod at once (a real
      // kubelet takes up to the grace period).
      const spec = isObj(existing.spec) ? existing.spec : {};
      const st = isObj(existing.status) ? existing.status : {};
      const asked = isObj(deleteOptions) && typeof deleteOptions.gracePeriodSeconds === 'number' ? deleteOptions.gracePeriodSeconds : undefined;
      const qGrace = query.get('gracePeriodSeconds');
      let grace = qGrace !== null && /^-?\d+$/.test(qGrace) ? Number(qGrace) : asked ?? (typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30);
      if (typeof spec.nodeName !== 'string' || spec.nodeName === '' || st.phase === 'Succeeded' || st.phase === 'Failed') grace = 0;
      if (grace <= 0) {
        if (!dryRun) {
          stores.pods.delete(key);
          nextRV();
        }
        return { code: 200, body: clone(existing) };
      }
      const out = clone(existing);
      const om = out.metadata as JsonObject;
      om.deletionTimestamp = rfc3339(Date.now() + grace * 1000);
      om.deletionGracePeriodSeconds = grace;
      om.resourceVersion = dryRun ? om.resourceVersion ?? null : nextRV();
      if (!dryRun) stores.pods.delete(key);
      return { code: 200, body: canonical(rt, out) };
    }
    if (!dryRun) {
      stores[rt.resource].delete(key);
      nextRV();
    }
    // A ServiceAccount has no finalizers, so DELETE answers 200 with the object as it was.
    return { code: 200, body: clone(existing) };
  }

  async function tokenRequest(ns: string, name: string, raw: string, contentType: string, query: URLSearchParams): Promise<Reply> {
    const wo = writeOptions(query, 'CreateOptions');
    const input = parseBody(raw, contentType);
    if (!isObj(input)) throw badRequest(`json: cannot unmarshal ${goJsonType(input)} into Go value of type struct`);
    if (input.apiVersion !== undefined && input.apiVersion !== 'authentication.k8s.io/v1') {
      throw badRequest(`the API version in the data (${String(input.apiVersion)}) does not match the expected API version (authentication.k8s.io/v1)`);
    }
    if (input.kind !== undefined && input.kind !== 'TokenRequest') {
      throw badRequest(`${String(input.kind)} in version "v1" cannot be handled as a TokenRequest: the kind in the data does not match the requested resource`);
    }
    const reqMeta = isObj(input.metadata) ? input.metadata : {};
    const spec = isObj(input.spec) ? input.spec : {};
    // pkg/registry/core/serviceaccount/storage/token.go, in its order.
    if (typeof reqMeta.name === 'string' && reqMeta.name !== '' && reqMeta.name !== name) {
      throw invalid('TokenRequest', 'authentication.k8s.io', name, [
        { type: 'FieldValueInvalid', field: 'metadata.name', value: reqMeta.name, detail: 'must match the service account name if specified' },
      ]);
    }
    if (typeof reqMeta.namespace === 'string' && reqMeta.namespace !== '' && reqMeta.namespace !== ns) {
      throw invalid('TokenRequest', 'authentication.k8s.io', name, [
        { type: 'FieldValueInvalid', field: 'metadata.namespace', value: reqMeta.namespace, detail: 'must match the service account namespace if specified' },
      ]);
    }
    const sa = stores.serviceaccounts.get(`${ns}/${name}`);
    if (!sa) throw notFound('serviceaccounts', name);
    const saMeta = sa.metadata as JsonObject;
    const auds = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : [];
    const audiences = auds.length > 0 ? auds : opts.apiAudiences ?? [api.issuer];
    // v1 defaulting: expirationSeconds = 3600.
    let expirationSeconds = typeof spec.expirationSeconds === 'number' ? Math.trunc(spec.expirationSeconds) : 3600;
    const warnings: string[] = [];
    if (expirationSeconds < 600) {
      if (opts.shortTokenExpiration === 'raise') {
        expirationSeconds = 600;
      } else {
        // ValidateTokenRequest; kubectl shows: TokenRequest.authentication.k8s.io "" is invalid:
        // spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes
        throw invalid('TokenRequest', 'authentication.k8s.io', '', [
          { type: 'FieldValueInvalid', field: 'spec.expirationSeconds', value: expirationSeconds, detail: 'may not specify a duration less than 10 minutes' },
        ]);
      }
    }
    if (expirationSeconds > 2 ** 32) {
      throw invalid('TokenRequest', 'authentication.k8s.io', '', [
        { type: 'FieldValueInvalid', field: 'spec.expirationSeconds', value: expirationSeconds, detail: 'may not specify a duration larger than 2^32 seconds' },
      ]);
    }
    const bound = spec.boundObjectRef;
    // Private claims added by a bound object (pod or secret), and the reference echoed with its uid.
    const boundClaims: JsonObject = {};
    let boundRef: Json = null;
    if (isObj(bound)) {
      const kind = String(bound.kind ?? '');
      const apiVersion = String(bound.apiVersion ?? '');
      const refName = String(bound.name ?? '');
      // schema.FromAPIVersionAndKind: "v1" is the core group; gvk.String() is "<group>/<version>, Kind=<kind>".
      const slash = apiVersion.indexOf('/');
      const group = slash >= 0 ? apiVersion.slice(0, slash) : '';
      const version = slash >= 0 ? apiVersion.slice(slash + 1) : apiVersion;
      let uid: string;
      if (group === '' && kind === 'Pod') {
        const pod = stores.pods.get(`${ns}/${refName}`);
        if (!pod) throw notFound('pods', refName);
        const podSpec = isObj(pod.spec) ? pod.spec : {};
        if (podSpec.serviceAccountName !== name) {
          throw badRequest(`cannot bind token for serviceaccount "${name}" to pod running with different serviceaccount name.`);
        }
        uid = String((pod.metadata as JsonObject).uid ?? '');
        // With ServiceAccountTokenPodNodeInfo the node would be added too, but only when the Node object
        // exists; the emulator stores no nodes, so, as on a cluster whose node is gone, no node claim.
        boundClaims.pod = { name: refName, uid };
      } else if (group === '' && kind === 'Secret') {
        const secret = stores.secrets.get(`${ns}/${refName}`);
        if (!secret) throw notFound('secrets', refName);
        uid = String((secret.metadata as JsonObject).uid ?? '');
        boundClaims.secret = { name: refName, uid };
      } else if (group === '' && kind === 'Node') {
        throw notFound('nodes', refName); // no nodes are stored
      } else {
        throw badRequest(`cannot bind token for serviceaccount "${name}" to object of type ${group}/${version}, Kind=${kind}`);
      }
      if (typeof bound.uid === 'string' && bound.uid !== '' && bound.uid !== uid) {
        // errors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ...)
        throw conflict(
          kind,
          refName,
          `the UID in the bound object reference (${bound.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
        );
      }
      boundRef = { kind, apiVersion, name: refName, uid };
    }
    if (opts.maxTokenExpirationSeconds !== undefined && expirationSeconds > opts.maxTokenExpirationSeconds) {
      warnings.push(`requested expiration of ${expirationSeconds} seconds shortened to ${opts.maxTokenExpirationSeconds} seconds`);
      expirationSeconds = opts.maxTokenExpirationSeconds;
    }
    const now = Date.now();
    // The issuer's clock: the tokenClockOffsetSeconds skew, or a one-shot expireTokens fault.
    let iat = Math.floor(now / 1000) + Math.trunc(api.tokenClockOffsetSeconds);
    if (expireFault.remaining > 0) {
      expireFault.remaining--;
      iat = Math.floor(now / 1000) - expireFault.agoSeconds - expirationSeconds;
    }
    let rogue: { sameKid: boolean } | undefined;
    if (unknownKeyFault.remaining > 0) {
      unknownKeyFault.remaining--;
      rogue = { sameKid: unknownKeyFault.sameKid };
    }
    // Claims as the API server's serviceaccount token generator emits them. go-jose merges the claim
    // structs through maps, so keys come out sorted at every level.
    const k8sClaims: JsonObject = { namespace: ns, ...boundClaims, serviceaccount: { name, uid: saMeta.uid ?? '' } };
    const claims: JsonObject = {
      aud: audiences,
      exp: iat + expirationSeconds,
      iat,
      iss: api.issuer,
      jti: randomUUID(),
      'kubernetes.io': Object.fromEntries(Object.entries(k8sClaims).sort(([a], [b]) => (a < b ? -1 : 1))),
      nbf: iat,
      sub: `system:serviceaccount:${ns}:${name}`,
    };
    const { token, kid } = await signJwt(claims, rogue);
    if (!wo.dryRun) tokens.push({ namespace: ns, name, audiences, expirationSeconds, token, claims, kid, signedWithUnknownKey: rogue !== undefined });
    return {
      code: 201,
      warnings,
      body: {
        kind: 'TokenRequest',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { name, namespace: ns, creationTimestamp: rfc3339(now) },
        spec: { audiences, expirationSeconds, boundObjectRef: boundRef },
        status: { token, expirationTimestamp: rfc3339((iat + expirationSeconds) * 1000) },
      },
    };
  }

  // ---- discovery ----------------------------------------------------------------------------------

  const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update'];
  const discovery = {
    api: (): JsonObject => ({
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${api.port}` }],
    }),
    v1: (): JsonObject => ({
      kind: 'APIResourceList',
      groupVersion: 'v1',
      // Sorted by name as the real list is; verbs are the ones the emulator implements.
      resources: [
        { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs, shortNames: ['ns'] },
        { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'get', 'list'], shortNames: ['po'], categories: ['all'] },
        { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['get', 'list'] },
        { name: 'serviceaccounts', singularName: 'serviceaccount', namespaced: true, kind: 'ServiceAccount', verbs, shortNames: ['sa'] },
        { name: 'serviceaccounts/token', singularName: '', namespaced: true, group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] },
      ],
    }),
    admissionGroup: (): JsonObject => ({
      name: ADMISSION_GROUP,
      versions: [{ groupVersion: `${ADMISSION_GROUP}/v1`, version: 'v1' }],
      preferredVersion: { groupVersion: `${ADMISSION_GROUP}/v1`, version: 'v1' },
    }),
    apis: (): JsonObject => ({ kind: 'APIGroupList', apiVersion: 'v1', groups: [discovery.admissionGroup()] }),
    admissionV1: (): JsonObject => ({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: `${ADMISSION_GROUP}/v1`,
      resources: [
        { name: 'mutatingwebhookconfigurations', singularName: 'mutatingwebhookconfiguration', namespaced: false, kind: 'MutatingWebhookConfiguration', verbs: ['get', 'list'], categories: ['api-extensions'] },
      ],
    }),
    version: (): JsonObject => ({
      major: '1',
      minor,
      gitVersion: `v1.${minor}.0`,
      gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean',
      buildDate: '2024-08-13T07:28:49Z',
      goVersion: 'go1.22.5',
      compiler: 'gc',
      platform: 'linux/amd64',
    }),
  };

  // ---- routing ------------------------------------------------------------------------------------

  async function route(method: string, segs: string[], raw: string, contentType: string, query: URLSearchParams): Promise<Reply> {
    const only = (m: string, fn: () => Reply | Promise<Reply>): Reply | Promise<Reply> => {
      if (method !== m) throw methodNotAllowed();
      return fn();
    };
    const p = segs.join('/');
    if (p === 'version') return only('GET', () => ({ code: 200, body: discovery.version() }));
    if (p === 'api') return only('GET', () => ({ code: 200, body: discovery.api() }));
    if (p === 'api/v1') return only('GET', () => ({ code: 200, body: discovery.v1() }));
    if (p === 'apis') return only('GET', () => ({ code: 200, body: discovery.apis() }));
    if (p === 'healthz' || p === 'livez' || p === 'readyz') return only('GET', () => ({ code: 200, body: 'ok', contentType: 'text/plain; charset=utf-8' }));
    if (p === '.well-known/openid-configuration') {
      return only('GET', () => ({
        code: 200,
        body: {
          issuer: api.issuer,
          jwks_uri: `${api.url}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        },
      }));
    }
    if (p === 'openid/v1/jwks') {
      if (method !== 'GET') throw methodNotAllowed();
      const key = await signingKey();
      return { code: 200, body: { keys: [key.jwk] }, contentType: 'application/jwk-set+json' };
    }
    if (segs[0] !== 'api' && segs[0] !== 'apis') {
      return { code: 404, body: '404 page not found\n', contentType: 'text/plain; charset=utf-8' };
    }
    if (segs[0] === 'apis') {
      // /apis/admissionregistration.k8s.io[/v1[/mutatingwebhookconfigurations[/{name}]]]
      if (segs[1] !== ADMISSION_GROUP) throw routeNotFound();
      if (segs.length === 2) return only('GET', () => ({ code: 200, body: { kind: 'APIGroup', apiVersion: 'v1', ...discovery.admissionGroup() } }));
      if (segs[2] !== 'v1') throw routeNotFound();
      if (segs.length === 3) return only('GET', () => ({ code: 200, body: discovery.admissionV1() }));
      if (segs[3] !== 'mutatingwebhookconfigurations') throw routeNotFound();
      if (segs.length === 4) return only('GET', () => list(MUTATING_WEBHOOKS, undefined, query));
      if (segs.length === 5) return only('GET', () => get(MUTATING_WEBHOOKS, '', segs[4] ?? ''));
      throw routeNotFound();
    }
    if (segs[0] !== 'api' || segs[1] !== 'v1') throw routeNotFound();
    const rest = segs.slice(2);
    const [r0, r1, r2, r3, r4] = rest;
    // /api/v1/namespaces, /api/v1/{serviceaccounts,pods,secrets}
    if (rest.length === 1 && r0 === 'namespaces') {
      if (method === 'GET') return list(NAMESPACES, undefined, query);
      if (method === 'POST') return create(NAMESPACES, '', raw, contentType, query);
      throw methodNotAllowed();
    }
    if (rest.length === 1 && r0 === 'serviceaccounts') return only('GET', () => list(SERVICE_ACCOUNTS, undefined, query));
    if (rest.length === 1 && r0 === 'pods') return only('GET', () => list(PODS, undefined, query));
    if (rest.length === 1 && r0 === 'secrets') return only('GET', () => list(SECRETS, undefined, query));
    if (r0 !== 'namespaces' || r1 === undefined) throw routeNotFound();
    const ns = r1;
    // /api/v1/namespaces/{ns}
    if (rest.length === 2) {
      switch (method) {
        case 'GET':
          return get(NAMESPACES, '', ns);
        case 'PUT':
          return update(NAMESPACES, '', ns, raw, contentType, query);
        case 'PATCH':
          return patch(NAMESPACES, '', ns, raw, contentType, query);
        case 'DELETE':
          return remove(NAMESPACES, '', ns, raw, query);
        default:
          throw methodNotAllowed();
      }
    }
    if (r2 === 'pods') {
      // /api/v1/namespaces/{ns}/pods[/{name}]; PUT/PATCH and subresources are not emulated.
      if (rest.length === 3) {
        if (method === 'GET') return list(PODS, ns, query);
        if (method === 'POST') return create(PODS, ns, raw, contentType, query);
        throw methodNotAllowed();
      }
      if (rest.length === 4) {
        if (method === 'GET') return get(PODS, ns, r3 ?? '');
        if (method === 'DELETE') return remove(PODS, ns, r3 ?? '', raw, query);
        throw methodNotAllowed();
      }
      throw routeNotFound();
    }
    if (r2 === 'secrets') {
      // /api/v1/namespaces/{ns}/secrets[/{name}]: read-only in the emulator.
      if (rest.length === 3) return only('GET', () => list(SECRETS, ns, query));
      if (rest.length === 4) return only('GET', () => get(SECRETS, ns, r3 ?? ''));
      throw routeNotFound();
    }
    if (r2 !== 'serviceaccounts') throw routeNotFound();
    // /api/v1/namespaces/{ns}/serviceaccounts
    if (rest.length === 3) {
      if (method === 'GET') return list(SERVICE_ACCOUNTS, ns, query);
      if (method === 'POST') return create(SERVICE_ACCOUNTS, ns, raw, contentType, query);
      throw methodNotAllowed();
    }
    const name = r3 ?? '';
    // /api/v1/namespaces/{ns}/serviceaccounts/{name}
    if (rest.length === 4) {
      switch (method) {
        case 'GET':
          return get(SERVICE_ACCOUNTS, ns, name);
        case 'PUT':
          return update(SERVICE_ACCOUNTS, ns, name, raw, contentType, query);
        case 'PATCH':
          return patch(SERVICE_ACCOUNTS, ns, name, raw, contentType, query);
        case 'DELETE':
          return remove(SERVICE_ACCOUNTS, ns, name, raw, query);
        default:
          throw methodNotAllowed();
      }
    }
    // /api/v1/namespaces/{ns}/serviceaccounts/{name}/token
    if (rest.length === 5 && r4 === 'token') return only('POST', () => tokenRequest(ns, name, raw, contentType, query));
    throw routeNotFound();
  }

  function isTokenPath(pathname: string): boolean {
    return /^\/api\/v1\/namespaces\/[^/]+\/serviceaccounts\/[^/]+\/token\/?$/.test(pathname);
  }

  function parseForLog(raw: string, contentType: string): unknown {
    if (raw === '') return undefined;
    const ct = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    try {
      if (ct === 'application/yaml' || ct === 'application/apply-patch+yaml') return parseYaml(raw) as unknown;
      if (ct === '' || ct.includes('json')) return JSON.parse(raw) as unknown;
    } catch {
      // fall through: keep the raw text
    }
    return raw;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = url.searchParams;
    const contentType = req.headers['content-type'] ?? '';
    const isWrite = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method) && !(method === 'POST' && isTokenPath(url.pathname));
    const record: KubeRequestRecord = {
      method,
      path: url.pathname,
      query: Object.fromEntries(query.entries()),
      status: 0,
      write: isWrite,
      dryRun: query.getAll('dryRun').includes('All'),
      warnings: [],
    };
    if (contentType !== '') record.contentType = contentType;
    const parsedBody = parseForLog(raw, contentType);
    if (parsedBody !== undefined) record.body = parsedBody;
    log.push(record);

    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));

    const send = (reply: Reply): void => {
      record.status = reply.code;
      record.warnings = reply.warnings ?? [];
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body, null, query.get('pretty') === 'true' ? 2 : undefined);
      record.response = reply.body;
      const headers: http.OutgoingHttpHeaders = {
        'Content-Type': reply.contentType ?? 'application/json',
        'Cache-Control': 'no-cache, private',
        'Audit-Id': randomUUID(),
        'Content-Length': Buffer.byteLength(text),
      };
      // Warning: 299 - "<text>", one header line per warning, as the API server sends them.
      if (reply.warnings && reply.warnings.length > 0) headers.Warning = reply.warnings.map((w) => `299 - ${JSON.stringify(w)}`);
      res.writeHead(reply.code, headers);
      res.end(text);
      api.onResponse?.(record);
    };

    const fault = faultList.find((f) => (f.method === '*' || f.method.toUpperCase() === method) && f.pathRegex.test(url.pathname));
    if (fault) {
      fault.remaining--;
      if (fault.remaining <= 0) faultList = faultList.filter((f) => f !== fault);
      if (fault.status === 0) {
        record.status = 0;
        req.socket.destroy();
        api.onResponse?.(record);
        return;
      }
      const err = status(fault.status, fault.reason, fault.message);
      send({ code: fault.status, body: err.body });
      return;
    }

    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      send({ code: 401, body: status(401, 'Unauthorized', 'Unauthorized').body });
      return;
    }

    try {
      let segs: string[];
      try {
        segs = url.pathname.replace(/\/+$/, '').split('/').slice(1).map(decodeURIComponent);
      } catch {
        throw badRequest('invalid path encoding');
      }
      send(await route(method, segs, raw, contentType, query));
    } catch (e) {
      if (e instanceof ApiError) {
        send({ code: e.code, body: e.body });
      } else {
        // errors.NewInternalError
        const msg = e instanceof Error ? e.message : String(e);
        send({
          code: 500,
          body: status(500, 'InternalError', `Internal error occurred: ${msg}`, { causes: [{ message: msg }] }).body,
        });
      }
    }
  }

  const faults: KubeFaults = {
    latencyMs: 0,
    failNext(method, pathRegex, code, reason, message, times = 1) {
      faultList.push({ method, pathRegex, status: code, reason, message, remaining: times });
    },
    signWithUnknownKey(times = 1, o = {}) {
      unknownKeyFault = { remaining: times, sameKid: o.sameKid === true };
    },
    expireTokens(agoSeconds = 60, times = 1) {
      expireFault = { remaining: times, agoSeconds: Math.trunc(agoSeconds) };
    },
    clear() {
      faultList = [];
      unknownKeyFault = { remaining: 0, sameKid: false };
      expireFault = { remaining: 0, agoSeconds: 60 };
      faults.latencyMs = 0;
    },
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(e));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const api: KubeEmulator = {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    tokens,
    issuer: opts.issuer ?? 'https://kubernetes.default.svc.cluster.local',
    tokenClockOffsetSeconds: opts.tokenClockOffsetSeconds ?? 0,
    faults,
    writes: () => log.filter((r) => r.write),
    seedNamespace,
    seedServiceAccount: seedSA,
    getServiceAccount(ns, name) {
      const o = stores.serviceaccounts.get(`${ns}/${name}`);
      return o === undefined ? undefined : clone(o);
    },
    listServiceAccounts(ns) {
      return sortedValues(SERVICE_ACCOUNTS, ns).map((o) => clone(o));
    },
    namespaces: () => [...stores.namespaces.keys()].sort(),
    seedPod,
    getPod(ns, name) {
      const o = stores.pods.get(`${ns}/${name}`);
      return o === undefined ? undefined : clone(o);
    },
    listPods(ns) {
      return sortedValues(PODS, ns).map((o) => clone(o));
    },
    seedSecret,
    seedMutatingWebhook,
    writeKubeconfig(path, kc = {}) {
      const ctx = kc.context ?? 'emulator';
      const q = (s: string): string => JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
      const lines = [
        'apiVersion: v1',
        'kind: Config',
        'preferences: {}',
        'clusters:',
        `- name: ${q(ctx)}`,
        '  cluster:',
        `    server: ${q(api.url)}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        `- name: ${q(ctx)}`,
        '  user:',
        `    token: ${q(opts.token ?? 'kube-emulator-no-auth')}`,
        'contexts:',
        `- name: ${q(ctx)}`,
        '  context:',
        `    cluster: ${q(ctx)}`,
        `    user: ${q(ctx)}`,
        ...(kc.namespace !== undefined ? [`    namespace: ${q(kc.namespace)}`] : []),
        `current-context: ${q(ctx)}`,
        '',
      ];
      writeFileSync(path, lines.join('\n'), { mode: 0o600 });
    },
    reset,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
  reset();
  return api;
}
