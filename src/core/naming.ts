/**
 * Deterministic names and identifiers, each from one pure function, so a re-run finds what the last
 * run created.
 */
import { createHash } from 'node:crypto';

/** The `sub` claim of a projected ServiceAccount token. */
export function subject(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Joins `parts` with "-"; when longer than `max`, truncates and appends a hash of the whole so names stay unique. */
export function boundedName(parts: string[], max: number): string {
  const full = parts.join('-');
  if (full.length <= max) return full;
  const hash = shortHash(full);
  return `${full.slice(0, max - hash.length - 1).replace(/[-_.]+$/, '')}-${hash}`;
}

/** Default IAM role name `wid-<ns>-<sa>`, at most 64 characters (IAM's limit). */
export function defaultRoleName(namespace: string, serviceAccount: string): string {
  return boundedName(['wid', namespace, serviceAccount], 64);
}

/** `<issuer host + path>`: the OIDC provider's name in its ARN and the prefix of the trust policy's condition keys. */
export function issuerHostPath(issuer: string): string {
  // Verbatim, minus the scheme: IAM keys the provider on this text and compares it with the token's iss.
  return issuer.replace(/^https:\/\//i, '');
}

/**
 * Federated identity credential name: `wid-<ns>-<sa>-<hash of issuer>`, matching Azure's
 * `^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$`. The issuer hash keeps one identity usable from several clusters.
 */
export function federatedCredentialName(issuer: string, namespace: string, serviceAccount: string): string {
  const sa = serviceAccount.replace(/\./g, '-');
  return boundedName(['wid', namespace, sa, shortHash(issuer)], 120);
}

/** A name-based (version 5, SHA-1) UUID, used for role assignment names so a re-run finds the same one. */
export function uuidV5(name: string, namespace = '6ba7b811-9dad-11d1-80b4-00c04fd430c8'): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const bytes = createHash('sha1').update(ns).update(name).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Name of the check Pod for a ServiceAccount (a DNS-1123 subdomain of at most 253 characters). */
export function checkPodName(serviceAccount: string): string {
  return boundedName(['wid-check', serviceAccount], 253);
}
