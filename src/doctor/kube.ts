/**
 * Checks every provider shares, through the Kubernetes API: the ServiceAccount, the cluster's issuer
 * (discovery document and keys) and a real token for the ServiceAccount. Tokens are checked and
 * dropped: never printed, logged or stored.
 */
import type { JSONWebKeySet } from 'jose';
import { subject } from '../core/naming.js';
import type { KubeObject } from '../core/phase.js';
import type { KubeApi } from '../kube/client.js';
import type { Checks } from './report.js';

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string[];
}

type Meta = { name?: string; annotations?: Record<string, string>; labels?: Record<string, string>; creationTimestamp?: unknown };
export const metaOf = (o: KubeObject | undefined): Meta => ((o?.metadata ?? {}) as Meta);

export async function checkServiceAccount(kube: KubeApi, namespace: string, name: string, checks: Checks): Promise<KubeObject | undefined> {
  const sa = await kube.getServiceAccount(namespace, name);
  if (!sa) {
    checks.fail('service-account', `ServiceAccount ${namespace}/${name} does not exist in kube context ${kube.context}`, {
      fix: `check --sa and -n (kubectl get serviceaccounts -n ${namespace}), or create it with wid setup`,
    });
    return undefined;
  }
  checks.pass('service-account', `ServiceAccount ${namespace}/${name} exists`);
  return sa;
}

/**
 * The cluster's issuer as its discovery document names it, and a token for the ServiceAccount with
 * the audience the cloud expects: signed by one of the cluster's keys, with the issuer, subject and
 * audience the cloud will compare.
 */
export async function checkIssuerAndToken(kube: KubeApi, namespace: string, name: string, audience: string, checks: Checks): Promise<{ issuer?: string; claims?: TokenClaims }> {
  let issuer: string | undefined;
  let jwks: JSONWebKeySet | undefined;
  try {
    const doc = await kube.openidConfiguration();
    issuer = typeof doc.issuer === 'string' ? doc.issuer : undefined;
    jwks = (await kube.jwks()) as JSONWebKeySet;
  } catch (e) {
    checks.fail('issuer-discovery', `the cluster's OIDC discovery could not be read: ${(e as Error).message}`, { fix: 'kubectl get --raw /.well-known/openid-configuration' });
  }
  if (issuer !== undefined) {
    const keys = jwks?.keys?.length ?? 0;
    if (keys > 0) checks.pass('issuer-discovery', `the cluster's issuer is ${issuer}, with ${keys} signing key${keys === 1 ? '' : 's'}`);
    else checks.fail('issuer-discovery', 'the cluster publishes no signing keys (/openid/v1/jwks is empty)', { expected: 'at least one key', found: '0 keys', fix: 'kubectl get --raw /openid/v1/jwks' });
  }

  let token: string;
  try {
    token = (await kube.createToken(namespace, name, [audience], 600)).token;
  } catch (e) {
    checks.fail('token', `no token could be requested for ${namespace}/${name}: ${(e as Error).message}`, { fix: `kubectl create token ${name} -n ${namespace} --audience ${audience}` });
    return issuer === undefined ? {} : { issuer };
  }
  // Loaded on use: `wid --help` should not pay for a crypto library.
  const { createLocalJWKSet, decodeJwt, jwtVerify } = await import('jose');
  const raw = decodeJwt(token);
  const claims: TokenClaims = {
    iss: String(raw.iss ?? ''),
    sub: String(raw.sub ?? ''),
    aud: Array.isArray(raw.aud) ? raw.aud.map(String) : raw.aud === undefined ? [] : [String(raw.aud)],
  };
  const wantSub = subject(namespace, name);
  const problems: string[] = [];
  if (claims.sub !== wantSub) problems.push(`sub is ${claims.sub}, not ${wantSub}`);
  if (!claims.aud.includes(audience)) problems.push(`aud is ${JSON.stringify(claims.aud)}, without ${audience}`);
  if (issuer !== undefined && claims.iss !== issuer) problems.push(`iss is ${claims.iss}, but discovery names ${issuer}`);
  if (jwks) {
    try {
      await jwtVerify(token, createLocalJWKSet(jwks));
    } catch (e) {
      problems.push(`its signature does not verify against the cluster's keys (${(e as Error).message})`);
    }
  }
  if (problems.length > 0) {
    checks.fail('token', `a token for ${namespace}/${name} is wrong: ${problems.join('; ')}`, {
      fix: 'check the API server flags --service-account-issuer and --service-account-signing-key-file, and that /openid/v1/jwks serves the current key',
    });
  } else {
    checks.pass('token', `a token for ${namespace}/${name} carries iss ${claims.iss}, sub ${claims.sub}, aud ${audience}${jwks ? ', and its signature verifies' : ''}`);
  }
  return { ...(issuer === undefined ? {} : { issuer }), claims };
}

/** The pods running as the ServiceAccount; undefined (and a warning) when pods cannot be listed. */
export async function podsOf(kube: KubeApi, namespace: string, name: string, checks: Checks): Promise<KubeObject[] | undefined> {
  try {
    return (await kube.listPods(namespace)).filter((p) => ((p.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName ?? 'default') === name);
  } catch (e) {
    checks.warn('pods', `could not list the pods of ${namespace}: ${(e as Error).message}`, { fix: `kubectl auth can-i list pods -n ${namespace}` });
    return undefined;
  }
}

/** Every container (init containers first) of a Pod. */
export function containersOf(pod: KubeObject): { name?: string; env?: { name?: string }[] }[] {
  const spec = (pod.spec ?? {}) as { initContainers?: unknown[]; containers?: unknown[] };
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])] as { name?: string; env?: { name?: string }[] }[];
}

export const hasEnv = (pod: KubeObject, env: string): boolean => containersOf(pod).some((c) => (c.env ?? []).some((e) => e.name === env));

/**
 * The webhook check: passes when a MutatingWebhookConfiguration with one of these names (or name
 * fragments) is installed. Listing them needs cluster-wide read access; without it the check is a
 * warning, not a failure of the chain.
 */
export async function checkWebhook(kube: KubeApi, names: string[], what: string, fix: string, checks: Checks): Promise<void> {
  let all: KubeObject[];
  try {
    all = await kube.listMutatingWebhooks();
  } catch (e) {
    checks.warn('webhook', `could not list the mutating webhooks to find ${what}: ${(e as Error).message}`, { fix: 'kubectl auth can-i list mutatingwebhookconfigurations.admissionregistration.k8s.io' });
    return;
  }
  const found = all.map((w) => metaOf(w).name ?? '').find((n) => names.some((x) => n === x || n.includes(x)));
  if (found) checks.pass('webhook', `${what} is installed (${found})`);
  else checks.fail('webhook', `${what} is not installed`, { fix });
}
