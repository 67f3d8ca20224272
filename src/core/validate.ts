/**
 * Input validation. Every function names the flag, quotes the value and states the rule it broke, and
 * throws a UsageError (exit 2) before anything is read, written or sent.
 */
import { UsageError } from './errors.js';

function fail(flag: string, value: string, rule: string, hint?: string): never {
  throw new UsageError('WID_E_INPUT_INVALID', `${flag} ${JSON.stringify(value)} is invalid: ${rule}`, {
    flag,
    ...(hint === undefined ? {} : { hint }),
  });
}

function check(flag: string, value: string, ok: boolean, rule: string, hint?: string): string {
  if (!ok) fail(flag, value, rule, hint);
  return value;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A Kubernetes namespace: a DNS-1123 label. */
export function namespace(flag: string, v: string): string {
  return check(flag, v, v.length <= 63 && DNS1123_LABEL.test(v),
    'a namespace must be a DNS-1123 label: at most 63 characters, lowercase letters, digits and "-", starting and ending with a letter or digit');
}

/** A Kubernetes ServiceAccount name: a DNS-1123 subdomain. */
export function serviceAccountName(flag: string, v: string): string {
  return check(flag, v, v.length <= 253 && DNS1123_SUBDOMAIN.test(v),
    'a ServiceAccount name must be a DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, "-" and ".", each part starting and ending with a letter or digit');
}

/**
 * An OIDC issuer URL. It is kept byte for byte (never normalised): the cloud compares it with the
 * token's `iss` claim exactly, and AKS issuers end in "/" while EKS issuers do not.
 */
export function issuer(flag: string, v: string): string {
  if (v !== v.trim() || /\s/.test(v)) fail(flag, v, 'an issuer URL must not contain whitespace (the cloud compares it with the token\'s iss claim byte for byte)');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return fail(flag, v, 'not a URL; an issuer looks like https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE');
  }
  if (u.protocol !== 'https:' || !v.toLowerCase().startsWith('https://')) fail(flag, v, 'an issuer URL must use https://');
  if (u.username || u.password) fail(flag, v, 'an issuer URL must not contain a user name or password');
  if (u.search || v.includes('?')) fail(flag, v, 'an issuer URL must not have a query string');
  if (u.hash || v.includes('#')) fail(flag, v, 'an issuer URL must not have a fragment');
  if (!u.hostname) fail(flag, v, 'an issuer URL needs a host');
  return v;
}

export function awsAccountId(flag: string, v: string): string {
  return check(flag, v, /^\d{12}$/.test(v), 'an AWS account id is exactly 12 digits');
}

export const AWS_PARTITIONS = ['aws', 'aws-cn', 'aws-us-gov'] as const;
export type AwsPartition = (typeof AWS_PARTITIONS)[number];

export function awsPartition(flag: string, v: string): AwsPartition {
  return oneOf(flag, v, AWS_PARTITIONS);
}

/** IAM role names: 1-64 characters of letters, digits and +=,.@_- (IAM API `roleNameType`). */
export function iamRoleName(flag: string, v: string): string {
  return check(flag, v, /^[\w+=,.@-]{1,64}$/.test(v),
    'an IAM role name is 1 to 64 characters of letters, digits and + = , . @ _ -');
}

/** A managed policy ARN, in the same partition as the role when that is known. */
export function iamPolicyArn(flag: string, v: string, partition: AwsPartition | undefined): string {
  const m = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}|aws):policy\/([\w+=,.@/-]+)$/.exec(v);
  if (!m) fail(flag, v, 'a policy ARN looks like arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess or arn:aws:iam::111122223333:policy/NAME');
  if (partition !== undefined && m[1] !== partition) fail(flag, v, `the policy is in partition ${m[1]} but the role is in ${partition}`);
  return v;
}

/** The token audience: what the cloud lists as a client id (IAM allows 1-255 characters). */
export function audience(flag: string, v: string): string {
  return check(flag, v, v.length >= 1 && v.length <= 255 && !/\s/.test(v),
    'an audience is 1 to 255 characters with no whitespace');
}

/** Projected token lifetime: the API server's minimum is 600 s; EKS caps it at 86400 s. */
export function tokenExpiration(flag: string, v: string): number {
  if (!/^\d+$/.test(v)) fail(flag, v, 'expected a whole number of seconds between 600 and 86400');
  const n = Number(v);
  if (n < 600 || n > 86400) fail(flag, v, 'the token lifetime must be between 600 and 86400 seconds');
  return n;
}

export function boolean(flag: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  return fail(flag, v, 'expected true or false');
}

export function awsRegion(flag: string, v: string): string {
  return check(flag, v, /^[a-z]{2}(-[a-z]+)+-\d+$/.test(v), 'an AWS region looks like us-west-2');
}

export function guid(flag: string, v: string): string {
  return check(flag, v, GUID.test(v), 'expected a GUID such as 00000000-0000-0000-0000-000000000000');
}

export function isGuid(v: string): boolean {
  return GUID.test(v);
}

/** Azure resource group names: 1-90 characters of letters, digits, _ - . ( ), not ending in ".". */
export function resourceGroup(flag: string, v: string): string {
  return check(flag, v, /^[-\w.()]{1,90}$/.test(v) && !v.endsWith('.'),
    'a resource group name is 1 to 90 letters, digits, "_", "-", ".", "(" or ")", not ending in "."');
}

/** User-assigned managed identity names: 3-128 characters, letters, digits, "-" and "_", starting with a letter or digit. */
export function identityName(flag: string, v: string): string {
  return check(flag, v, /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(v),
    'a managed identity name is 3 to 128 letters, digits, "-" or "_", starting with a letter or digit');
}

export function azureLocation(flag: string, v: string): string {
  return check(flag, v, /^[a-z0-9]+$/.test(v), 'an Azure location is lowercase letters and digits, such as westeurope');
}

/** An Azure role: a built-in or custom role name, its GUID, or a full role definition id. */
export function azureRole(flag: string, v: string): string {
  if (v.startsWith('/')) {
    return check(flag, v, /^(\/subscriptions\/[^/]+)?\/providers\/Microsoft\.Authorization\/roleDefinitions\/[0-9a-fA-F-]{36}$/i.test(v),
      'a role definition id looks like /subscriptions/SUB/providers/Microsoft.Authorization/roleDefinitions/GUID');
  }
  return check(flag, v, v.trim() === v && v.length >= 1 && v.length <= 512,
    'a role is a role name such as "Storage Blob Data Reader", a role GUID, or a role definition id');
}

/** An Azure RBAC scope: a subscription, resource group, resource or management group id. */
export function azureScope(flag: string, v: string): string {
  const sub = /^\/subscriptions\/([^/]+)(\/resourceGroups\/[^/]+(\/providers\/[^/]+\/.+)?)?$/i.exec(v);
  if (sub) {
    if (!GUID.test(sub[1] ?? '')) fail(flag, v, 'the subscription in a scope must be a GUID');
    if (v.endsWith('/')) fail(flag, v, 'a scope must not end in "/"');
    return v;
  }
  return check(flag, v, /^\/providers\/Microsoft\.Management\/managementGroups\/[^/]+$/i.test(v),
    'a scope is a resource id starting with /subscriptions/SUB (optionally /resourceGroups/RG/...) or /providers/Microsoft.Management/managementGroups/NAME');
}

/** GCP project ids: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter. */
export function gcpProjectId(flag: string, v: string): string {
  return check(flag, v, /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/.test(v),
    'a project id is 6 to 30 lowercase letters, digits and "-", starting with a letter and not ending with "-"');
}

export function gcpProjectNumber(flag: string, v: string): string {
  return check(flag, v, /^[1-9]\d{5,19}$/.test(v), 'a project number is all digits, such as 123456789012 (gcloud projects describe PROJECT --format="value(projectNumber)")');
}

const GSA_ACCOUNT_ID = /^[a-z]([-a-z0-9]{4,28}[a-z0-9])$/;

/**
 * A Google service account: an email `NAME@PROJECT.iam.gserviceaccount.com`, or a short account id that is
 * completed with the project. Account ids are 6-30 characters `[a-z]([-a-z0-9]*[a-z0-9])`.
 */
export function gsa(flag: string, v: string, project: string): string {
  if (!v.includes('@')) {
    check(flag, v, GSA_ACCOUNT_ID.test(v),
      'a service account id is 6 to 30 lowercase letters, digits and "-", starting with a letter (or give the full email)');
    return `${v}@${project}.iam.gserviceaccount.com`;
  }
  const m = /^([^@]+)@([^@]+)\.iam\.gserviceaccount\.com$/.exec(v);
  if (!m) fail(flag, v, 'a Google service account email looks like NAME@PROJECT.iam.gserviceaccount.com');
  check(flag, v, GSA_ACCOUNT_ID.test(m[1] ?? ''), 'the part before "@" is 6 to 30 lowercase letters, digits and "-", starting with a letter');
  check(flag, v, /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/.test(m[2] ?? ''), 'the project in the email is not a valid project id');
  return v;
}

/** A GKE workload identity pool: `PROJECT_ID.svc.id.goog`. */
export function workloadPool(flag: string, v: string): string {
  return check(flag, v, /^[a-z][-a-z0-9]{4,28}[a-z0-9]\.svc\.id\.goog$/.test(v), 'a workload pool is PROJECT_ID.svc.id.goog');
}

/** An IAM role granted on a project: predefined (`roles/…`) or custom (`projects/P/roles/…`, `organizations/N/roles/…`). */
export function gcpRole(flag: string, v: string): string {
  return check(flag, v, /^(roles\/[A-Za-z0-9_.]+|projects\/[a-z][-a-z0-9]{4,28}[a-z0-9]\/roles\/[A-Za-z0-9_.]{3,64}|organizations\/\d+\/roles\/[A-Za-z0-9_.]{3,64})$/.test(v),
    'a role looks like roles/storage.objectViewer, projects/PROJECT/roles/NAME or organizations/ORG/roles/NAME');
}

/** A GCP region or zone, such as europe-west1 or us-central1-a. */
export function gcpLocation(flag: string, v: string): string {
  return check(flag, v, /^[a-z]+(-[a-z]+)+\d+(-[a-z])?$/.test(v), 'a location is a region or zone such as europe-west1 or us-central1-a');
}

export function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) fail(flag, v, `expected one of ${allowed.join(', ')}`);
  return v as T;
}
