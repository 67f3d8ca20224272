/**
 * Reading and editing role trust policies without disturbing what others put there. Pure.
 */
import type { PolicyDocument } from './client.js';

/** IAM's default trust policy quota (ACLSizePerRole), raisable to 4096. */
export const TRUST_POLICY_QUOTA = 2048;

type Statement = Record<string, unknown>;

const asArray = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function statements(doc: PolicyDocument): Statement[] {
  return asArray(doc.Statement).filter((s): s is Statement => !!s && typeof s === 'object');
}

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(value);
}

/** The values a condition puts on `key` under `operator`, or undefined when it does not mention the key. */
function conditionValues(stmt: Statement, operator: string, key: string): string[] | undefined {
  const cond = stmt.Condition as Record<string, Record<string, unknown>> | undefined;
  const block = cond?.[operator];
  if (!block || !(key in block)) return undefined;
  return asArray(block[key]).map(String);
}

function allowsWebIdentity(stmt: Statement): boolean {
  return stmt.Effect === 'Allow' && asArray(stmt.Action).some((a) => a === 'sts:AssumeRoleWithWebIdentity' || a === 'sts:*' || a === '*');
}

export function federatedTo(stmt: Statement, providerArn: string): boolean {
  const principal = stmt.Principal as Record<string, unknown> | undefined;
  return asArray(principal?.Federated).includes(providerArn);
}

/**
 * Does this statement let a token with this subject and audience, from this provider, assume the role?
 * A condition that does not mention a claim does not restrict it.
 */
export function statementGrants(stmt: Statement, providerArn: string, prefix: string, subject: string, audience: string): boolean {
  if (!allowsWebIdentity(stmt) || !federatedTo(stmt, providerArn)) return false;
  const admits = (claim: 'sub' | 'aud', value: string): boolean => {
    const key = `${prefix}:${claim}`;
    const equals = conditionValues(stmt, 'StringEquals', key);
    const like = conditionValues(stmt, 'StringLike', key);
    if (equals === undefined && like === undefined) return true;
    if (equals !== undefined && !equals.includes(value)) return false;
    if (like !== undefined && !like.some((p) => globMatch(p, value))) return false;
    return true;
  };
  return admits('sub', subject) && admits('aud', audience);
}

export function grants(doc: PolicyDocument, providerArn: string, prefix: string, subject: string, audience: string): boolean {
  return statements(doc).some((s) => statementGrants(s, providerArn, prefix, subject, audience));
}

/** Appends a statement; every other statement, condition and key stays exactly as it was. */
export function addStatement(doc: PolicyDocument, stmt: Statement): PolicyDocument {
  return { ...doc, Version: doc.Version ?? '2012-10-17', Statement: [...asArray(doc.Statement), stmt] };
}

/** Key-order-insensitive JSON form, to compare statements as IAM documents rather than as text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Removes the statements equal to `stmt` (the one wid writes for a ServiceAccount), whatever their key
 * order. A statement of any other shape, even one that also trusts this subject (a shared subject
 * list, a wildcard), was written by someone else and stays exactly as it is.
 */
export function removeStatement(doc: PolicyDocument, stmt: Record<string, unknown>): PolicyDocument {
  const target = canonical(stmt);
  const kept = asArray(doc.Statement).filter((s) => canonical(s) !== target);
  if (kept.length === asArray(doc.Statement).length) return doc;
  return { ...doc, Statement: kept };
}

/** Characters IAM counts against the quota: the document without whitespace. */
export function policySize(doc: PolicyDocument): number {
  return JSON.stringify(doc).replace(/\s/g, '').length;
}

export function trustsProvider(doc: PolicyDocument, providerArn: string): boolean {
  return statements(doc).some((s) => federatedTo(s, providerArn));
}

/** The claims IAM compares for AssumeRoleWithWebIdentity, keyed `<issuer host+path>:<claim>`. */
export interface WebIdentityClaims {
  sub: string;
  aud: string[];
}

export interface TrustEvaluation {
  allowed: boolean;
  /** Statements that name this provider as Federated principal. */
  statementsForProvider: number;
  /** Why each of those statements refuses the token: the condition, what it wants, what the token has. */
  failures: string[];
}

function compare(op: string, value: string, wanted: string[]): boolean {
  switch (op) {
    case 'StringEquals':
      return wanted.includes(value);
    case 'StringNotEquals':
      return !wanted.includes(value);
    case 'StringEqualsIgnoreCase':
      return wanted.some((w) => w.toLowerCase() === value.toLowerCase());
    case 'StringNotEqualsIgnoreCase':
      return !wanted.some((w) => w.toLowerCase() === value.toLowerCase());
    case 'StringLike':
      return wanted.some((w) => globMatch(w, value));
    case 'StringNotLike':
      return !wanted.some((w) => globMatch(w, value));
    default:
      return false;
  }
}

/** One condition operator block against the token's claims, as IAM evaluates it; returns why it fails. */
function conditionFails(operator: string, block: Record<string, unknown>, prefix: string, claims: WebIdentityClaims): string | undefined {
  const m = /^(ForAnyValue:|ForAllValues:)?(.+?)(IfExists)?$/.exec(operator);
  const set = m?.[1];
  const op = m?.[2] ?? operator;
  const ifExists = m?.[3] !== undefined;
  for (const [key, raw] of Object.entries(block)) {
    const wanted = asArray(raw).map(String);
    const claim = key === `${prefix}:sub` ? [claims.sub] : key === `${prefix}:aud` ? claims.aud : undefined;
    let ok: boolean;
    if (claim === undefined || claim.length === 0) ok = ifExists || set === 'ForAllValues:';
    else if (set === 'ForAllValues:') ok = claim.every((v) => compare(op, v, wanted));
    else if (set === 'ForAnyValue:') ok = claim.some((v) => compare(op, v, wanted));
    else ok = compare(op, claim[0]!, wanted);
    if (!ok) {
      const has = claim === undefined ? 'no such claim' : claim.length === 1 ? JSON.stringify(claim[0]) : JSON.stringify(claim);
      return `${operator} ${key}: wants ${wanted.length === 1 ? JSON.stringify(wanted[0]) : JSON.stringify(wanted)}, the token has ${has}`;
    }
  }
  return undefined;
}

/**
 * Would IAM let this token assume the role? Evaluates each Allow statement for the provider
 * (Action, Federated principal, every condition), the way IAM does for AssumeRoleWithWebIdentity.
 * Deny statements are not evaluated; wid never writes them.
 */
export function evaluateTrust(doc: PolicyDocument, providerArn: string, prefix: string, claims: WebIdentityClaims): TrustEvaluation {
  const failures: string[] = [];
  let forProvider = 0;
  for (const stmt of statements(doc)) {
    if (!federatedTo(stmt, providerArn)) continue;
    forProvider++;
    if (!allowsWebIdentity(stmt)) {
      failures.push('a statement for this provider does not Allow sts:AssumeRoleWithWebIdentity');
      continue;
    }
    const cond = (stmt.Condition ?? {}) as Record<string, Record<string, unknown>>;
    const why = Object.entries(cond).map(([op, block]) => conditionFails(op, block, prefix, claims)).find((x) => x !== undefined);
    if (why === undefined) return { allowed: true, statementsForProvider: forProvider, failures: [] };
    failures.push(why);
  }
  return { allowed: false, statementsForProvider: forProvider, failures };
}
