/**
 * Self-tests of the Kubernetes API emulator, driven through the real @kubernetes/client-node 1.4 so
 * that every response shape is proven parseable by the client wid uses. These calls double as the
 * reference for how wid has to call client-node (see SPEC.md "Calling it from client-node 1.4").
 */
import { createPublicKey, createVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  KubeConfig,
  OpenidApi,
  PatchStrategy,
  setHeaderOptions,
  WellKnownApi,
} from '@kubernetes/client-node';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { startKubeEmulator, type KubeEmulator } from './server.js';

let emu: KubeEmulator;
let dir: string;
let core: CoreV1Api;
let kc: KubeConfig;

/** Loads the kubeconfig the emulator wrote, the way wid does (a file named by KUBECONFIG). */
function clientFor(e: KubeEmulator, file: string): CoreV1Api {
  e.writeKubeconfig(file, { namespace: 'default' });
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc.makeApiClient(CoreV1Api);
}

/** The rejection of `p`, which must be client-node's ApiException. */
async function apiError(p: Promise<unknown>): Promise<ApiException<unknown>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiException) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

/** client-node puts the raw response text in ApiException.body for statuses its spec does not list. */
function statusOf(e: ApiException<unknown>): any {
  expect(typeof e.body).toBe('string');
  return JSON.parse(e.body as string);
}

function jwtPart(token: string, i: number): any {
  return JSON.parse(Buffer.from(token.split('.')[i] ?? '', 'base64url').toString('utf8'));
}

beforeAll(async () => {
  emu = await startKubeEmulator({ issuer: 'https://oidc.example.test/cluster-1' });
  dir = mkdtempSync(join(tmpdir(), 'kube-emu-'));
  core = clientFor(emu, join(dir, 'kubeconfig'));
  kc = new KubeConfig();
  kc.loadFromFile(join(dir, 'kubeconfig'));
});

afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => emu.reset());

describe('kubeconfig', () => {
  it('points at the emulator over http with insecure-skip-tls-verify and one context', () => {
    const text = readFileSync(join(dir, 'kubeconfig'), 'utf8');
    expect(text).toContain(`server: "${emu.url}"`);
    expect(text).toContain('insecure-skip-tls-verify: true');
    const kc = new KubeConfig();
    kc.loadFromFile(join(dir, 'kubeconfig'));
    expect(kc.getCurrentContext()).toBe('emulator');
    expect(kc.getCurrentCluster()?.server).toBe(emu.url);
    expect(kc.getContextObject('emulator')?.namespace).toBe('default');
  });
});

describe('ServiceAccounts', () => {
  it('a missing SA is an ApiException with code 404 and the Status text as body', async () => {
    const e = await apiError(core.readNamespacedServiceAccount({ name: 'x', namespace: 'default' }));
    expect(e.code).toBe(404);
    expect(statusOf(e)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'serviceaccounts "x" not found',
      reason: 'NotFound',
      details: { name: 'x', kind: 'serviceaccounts' },
      code: 404,
    });
    expect(e.message).toContain('HTTP-Code: 404');
  });

  it('creates an SA with server-populated metadata', async () => {
    const sa = await core.createNamespacedServiceAccount({
      namespace: 'default',
      body: { metadata: { name: 'wid-sa', annotations: { a: '1' } } },
    });
    expect(sa.kind).toBe('ServiceAccount');
    expect(sa.apiVersion).toBe('v1');
    expect(sa.metadata?.namespace).toBe('default');
    expect(sa.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(sa.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(sa.metadata?.creationTimestamp).toBeInstanceOf(Date); // client-node turns it into a Date
    expect(emu.getServiceAccount('default', 'wid-sa').metadata.annotations).toEqual({ a: '1' });
    expect(emu.log.at(-1)).toMatchObject({ method: 'POST', path: '/api/v1/namespaces/default/serviceaccounts', status: 201, write: true });
  });

  it('create in a missing namespace: 404 namespaces "nope" not found', async () => {
    const e = await apiError(core.createNamespacedServiceAccount({ namespace: 'nope', body: { metadata: { name: 'x' } } }));
    expect(e.code).toBe(404);
    expect(statusOf(e)).toMatchObject({ message: 'namespaces "nope" not found', reason: 'NotFound', details: { name: 'nope', kind: 'namespaces' } });
  });

  it('duplicate create: 409 AlreadyExists', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'dup' });
    const e = await apiError(core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'dup' } } }));
    expect(e.code).toBe(409);
    expect(statusOf(e)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'serviceaccounts "dup" already exists',
      reason: 'AlreadyExists',
      details: { name: 'dup', kind: 'serviceaccounts' },
      code: 409,
    });
  });

  it('invalid name: 422 Invalid with the RFC 1123 message', async () => {
    const e = await apiError(core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'Bad_Name' } } }));
    expect(e.code).toBe(422);
    const s = statusOf(e);
    expect(s.reason).toBe('Invalid');
    expect(s.message).toBe(
      `ServiceAccount "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    );
    expect(s.details).toMatchObject({ name: 'Bad_Name', kind: 'ServiceAccount', causes: [{ reason: 'FieldValueInvalid', field: 'metadata.name' }] });
  });

  it('a body naming another namespace: 400 BadRequest', async () => {
    const e = await apiError(core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'x', namespace: 'other' } } }));
    expect(e.code).toBe(400);
    expect(statusOf(e)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the namespace of the provided object does not match the namespace sent on the request',
      reason: 'BadRequest',
      code: 400,
    });
  });

  it('merge patch adds one annotation and removes another, keeping the rest', async () => {
    const seeded = emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa', annotations: { keep: 'k', drop: 'd' }, labels: { app: 'x' } });
    const patched = await core.patchNamespacedServiceAccount(
      { name: 'wid-sa', namespace: 'default', body: { metadata: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/r', drop: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.metadata?.annotations).toEqual({ keep: 'k', 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/r' });
    expect(patched.metadata?.labels).toEqual({ app: 'x' });
    expect(patched.metadata?.uid).toBe(seeded.metadata.uid);
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(seeded.metadata.resourceVersion));
    const rec = emu.writes().at(-1);
    expect(rec).toMatchObject({ method: 'PATCH', contentType: 'application/merge-patch+json', status: 200 });
    expect(rec?.body).toEqual({ metadata: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/r', drop: null } } });
  });

  it('a merge patch that changes nothing keeps the resourceVersion', async () => {
    const seeded = emu.seedServiceAccount({ namespace: 'default', name: 'same', annotations: { a: '1' } });
    const patched = await core.patchNamespacedServiceAccount(
      { name: 'same', namespace: 'default', body: { metadata: { annotations: { a: '1' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.metadata?.resourceVersion).toBe(seeded.metadata.resourceVersion);
  });

  it('without setHeaderOptions client-node sends application/json-patch+json, so an object body is a 400', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const e = await apiError(core.patchNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default', body: { metadata: { annotations: { a: 'b' } } } }));
    expect(e.code).toBe(400);
    expect(statusOf(e).message).toBe('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
    expect(emu.log.at(-1)?.contentType).toBe('application/json-patch+json');
  });

  it('json patch: add/replace/remove/test; add under a missing parent is a 422', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa', annotations: { a: '1', b: '2' } });
    const patched = await core.patchNamespacedServiceAccount({
      name: 'wid-sa',
      namespace: 'default',
      body: [
        { op: 'test', path: '/metadata/annotations/a', value: '1' },
        { op: 'add', path: '/metadata/annotations/c~1d', value: '3' }, // key "c/d"
        { op: 'replace', path: '/metadata/annotations/a', value: '10' },
        { op: 'remove', path: '/metadata/annotations/b' },
      ],
    });
    expect(patched.metadata?.annotations).toEqual({ a: '10', 'c/d': '3' });

    const failedTest = await apiError(
      core.patchNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default', body: [{ op: 'test', path: '/metadata/annotations/a', value: 'nope' }] }),
    );
    expect(failedTest.code).toBe(422);
    expect(statusOf(failedTest)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the server rejected our request due to an error in our request',
      reason: 'Invalid',
      details: { causes: [{ reason: 'UnexpectedServerResponse', message: 'testing value /metadata/annotations/a failed: test failed' }] },
      code: 422,
    });

    emu.seedServiceAccount({ namespace: 'default', name: 'bare' });
    const noParent = await apiError(
      core.patchNamespacedServiceAccount({ name: 'bare', namespace: 'default', body: [{ op: 'add', path: '/metadata/annotations/x', value: 'y' }] }),
    );
    expect(noParent.code).toBe(422);
    expect(statusOf(noParent).details.causes[0].message).toBe('add operation does not apply: doc is missing path: "/metadata/annotations/x": missing value');
  });

  it('strategic merge patch behaves as a merge patch for metadata', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa', annotations: { a: '1', b: '2' } });
    const patched = await core.patchNamespacedServiceAccount(
      { name: 'wid-sa', namespace: 'default', body: { metadata: { annotations: { b: null, c: '3' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(patched.metadata?.annotations).toEqual({ a: '1', c: '3' });
  });

  it('PUT with a stale resourceVersion: 409 Conflict', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const current = await core.readNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default' });
    current.metadata!.annotations = { first: 'yes' };
    await core.replaceNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default', body: current });
    current.metadata!.annotations = { second: 'yes' }; // still carries the old resourceVersion
    const e = await apiError(core.replaceNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default', body: current }));
    expect(e.code).toBe(409);
    expect(statusOf(e)).toMatchObject({
      message: 'Operation cannot be fulfilled on serviceaccounts "wid-sa": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'wid-sa', kind: 'serviceaccounts' },
    });
    expect(emu.getServiceAccount('default', 'wid-sa').metadata.annotations).toEqual({ first: 'yes' });
  });

  it('delete returns the object; a second delete is a 404', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'gone' });
    const deleted = await core.deleteNamespacedServiceAccount({ name: 'gone', namespace: 'default' });
    expect(deleted.metadata?.name).toBe('gone');
    expect(emu.getServiceAccount('default', 'gone')).toBeUndefined();
    const e = await apiError(core.deleteNamespacedServiceAccount({ name: 'gone', namespace: 'default' }));
    expect(e.code).toBe(404);
  });

  it('lists as a ServiceAccountList whose items carry no kind/apiVersion', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'b', labels: { team: 'x' } });
    emu.seedServiceAccount({ namespace: 'default', name: 'a' });
    emu.seedServiceAccount({ namespace: 'other', name: 'c' });
    const all = await core.listNamespacedServiceAccount({ namespace: 'default' });
    expect(all.kind).toBe('ServiceAccountList');
    expect(all.items.map((i) => i.metadata?.name)).toEqual(['a', 'b']);
    expect(all.items[0]?.kind).toBeUndefined();
    const sel = await core.listNamespacedServiceAccount({ namespace: 'default', labelSelector: 'team=x' });
    expect(sel.items.map((i) => i.metadata?.name)).toEqual(['b']);
    const missingNs = await core.listNamespacedServiceAccount({ namespace: 'nowhere' });
    expect(missingNs.items).toEqual([]); // listing in a missing namespace is an empty list, not a 404
  });
});

describe('Namespaces', () => {
  it('create, list, read; default and kube-system always exist and cannot be deleted', async () => {
    expect(emu.namespaces()).toEqual(['default', 'kube-system']);
    const ns = await core.createNamespace({ body: { metadata: { name: 'wid-test' } } });
    expect(ns.status?.phase).toBe('Active');
    expect(ns.metadata?.labels).toEqual({ 'kubernetes.io/metadata.name': 'wid-test' });
    const list = await core.listNamespace();
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['default', 'kube-system', 'wid-test']);
    const dup = await apiError(core.createNamespace({ body: { metadata: { name: 'wid-test' } } }));
    expect(statusOf(dup)).toMatchObject({ code: 409, reason: 'AlreadyExists', message: 'namespaces "wid-test" already exists' });
    const forbidden = await apiError(core.deleteNamespace({ name: 'default' }));
    expect(statusOf(forbidden)).toMatchObject({ code: 403, reason: 'Forbidden', message: 'namespaces "default" is forbidden: this namespace may not be deleted' });
  });

  it('delete answers the namespace in phase Terminating and removes its ServiceAccounts', async () => {
    emu.seedServiceAccount({ namespace: 'tmp', name: 'sa' });
    await core.deleteNamespace({ name: 'tmp' });
    const rec = emu.log.at(-1);
    expect(rec?.response).toMatchObject({ kind: 'Namespace', status: { phase: 'Terminating' } });
    expect(emu.namespaces()).not.toContain('tmp');
    expect(emu.listServiceAccounts('tmp')).toEqual([]);
    expect((await apiError(core.readNamespace({ name: 'tmp' }))).code).toBe(404);
  });
});

describe('TokenRequest', () => {
  it('issues a signed JWT with sub/aud/iss and the kubernetes.io claims', async () => {
    const sa = emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'wid-sa',
      namespace: 'default',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 3600 } },
    });
    expect(tr.kind).toBe('TokenRequest');
    expect(tr.status?.expirationTimestamp).toBeInstanceOf(Date);
    const token = tr.status?.token ?? '';
    expect(token.split('.')).toHaveLength(3);
    const header = jwtPart(token, 0);
    const claims = jwtPart(token, 1);
    expect(header.alg).toBe('RS256');
    expect(claims).toMatchObject({
      iss: 'https://oidc.example.test/cluster-1',
      sub: 'system:serviceaccount:default:wid-sa',
      aud: ['sts.amazonaws.com'],
      'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'wid-sa', uid: sa.metadata.uid } },
    });
    expect(claims.exp - claims.iat).toBe(3600);
    expect(claims.nbf).toBe(claims.iat);
    // The signature verifies against the JWKS the emulator publishes, like a real issuer's.
    const disco = (await (await fetch(`${emu.url}/.well-known/openid-configuration`)).json()) as any;
    expect(disco.issuer).toBe('https://oidc.example.test/cluster-1');
    const jwks = (await (await fetch(disco.jwks_uri)).json()) as any;
    const key = createPublicKey({ key: jwks.keys[0], format: 'jwk' });
    const [h, p, s] = token.split('.');
    expect(createVerify('RSA-SHA256').update(`${h}.${p}`).verify(key, Buffer.from(s ?? '', 'base64url'))).toBe(true);
    // TokenRequests are not writes.
    expect(emu.log.at(-1)?.write).toBe(false);
    expect(emu.writes()).toEqual([]);
    expect(emu.tokens).toHaveLength(1);
  });

  it('expirationSeconds below 600 is a 422 as on a real API server', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const e = await apiError(
      core.createNamespacedServiceAccountToken({ name: 'wid-sa', namespace: 'default', body: { spec: { audiences: ['x'], expirationSeconds: 60 } } }),
    );
    expect(e.code).toBe(422);
    expect(statusOf(e).message).toBe(
      'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes',
    );
  });

  it("with shortTokenExpiration 'raise', a short request gets a 600-second token", async () => {
    const lax = await startKubeEmulator({ shortTokenExpiration: 'raise' });
    try {
      const c = clientFor(lax, join(dir, 'kubeconfig-lax'));
      lax.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
      const tr = await c.createNamespacedServiceAccountToken({ name: 'wid-sa', namespace: 'default', body: { spec: { audiences: [], expirationSeconds: 60 } } });
      const claims = jwtPart(tr.status?.token ?? '', 1);
      expect(claims.exp - claims.iat).toBe(600);
      expect(claims.aud).toEqual(['https://kubernetes.default.svc.cluster.local']); // defaults to the API audiences
    } finally {
      await lax.close();
    }
  });

  it('404 when the ServiceAccount does not exist', async () => {
    const e = await apiError(core.createNamespacedServiceAccountToken({ name: 'nope', namespace: 'default', body: { spec: { audiences: ['x'] } } }));
    expect(e.code).toBe(404);
    expect(statusOf(e).message).toBe('serviceaccounts "nope" not found');
  });
});

describe('faults, log, auth, discovery', () => {
  it('failNext answers the next matching request with the given Status, then clears', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    emu.faults.failNext('GET', /\/serviceaccounts\/wid-sa$/, 503, 'ServiceUnavailable', 'etcdserver: leader changed');
    const e = await apiError(core.readNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default' }));
    expect(e.code).toBe(503);
    expect(statusOf(e)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'etcdserver: leader changed',
      reason: 'ServiceUnavailable',
      code: 503,
    });
    const ok = await core.readNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default' });
    expect(ok.metadata?.name).toBe('wid-sa');
  });

  it('a status-0 fault drops the connection: a network error, not an ApiException', async () => {
    emu.faults.failNext('*', /./, 0, '', '');
    const err = await core.listNamespace().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApiException);
    expect(emu.log.at(-1)?.status).toBe(0);
  });

  it('records every request; writes() keeps the state-changing ones', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    await core.readNamespacedServiceAccount({ name: 'wid-sa', namespace: 'default' });
    await core.patchNamespacedServiceAccount(
      { name: 'wid-sa', namespace: 'default', body: { metadata: { labels: { a: 'b' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.createNamespacedServiceAccountToken({ name: 'wid-sa', namespace: 'default', body: { spec: { audiences: ['x'] } } });
    await core.createNamespace({ body: { metadata: { name: 'n1' } } });
    expect(emu.log.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'GET /api/v1/namespaces/default/serviceaccounts/wid-sa 200',
      'PATCH /api/v1/namespaces/default/serviceaccounts/wid-sa 200',
      'POST /api/v1/namespaces/default/serviceaccounts/wid-sa/token 201',
      'POST /api/v1/namespaces 201',
    ]);
    expect(emu.writes().map((r) => `${r.method} ${r.path}`)).toEqual([
      'PATCH /api/v1/namespaces/default/serviceaccounts/wid-sa',
      'POST /api/v1/namespaces',
    ]);
  });

  it('unknown fields are dropped with a Warning header', async () => {
    await core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'w' } } });
    const res = await fetch(`${emu.url}/api/v1/namespaces/default/serviceaccounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { name: 'w2', annotation: { typo: 'x' } } }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('warning')).toBe('299 - "unknown field \\"metadata.annotation\\""');
  });

  it('bearer-token auth: the kubeconfig token passes, a bare request is 401', async () => {
    const locked = await startKubeEmulator({ token: 's3cret' });
    try {
      const c = clientFor(locked, join(dir, 'kubeconfig-auth'));
      expect((await c.listNamespace()).items).toHaveLength(2);
      // setHeaderOptions appends a middleware; the bearer token still goes out with the patch.
      locked.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
      await c.patchNamespacedServiceAccount(
        { name: 'wid-sa', namespace: 'default', body: { metadata: { annotations: { a: 'b' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      expect(locked.log.at(-1)?.status).toBe(200);
      const res = await fetch(`${locked.url}/api/v1/namespaces`);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
      // client-node maps a 401 to ApiException(401, "Unauthorized") with body undefined.
      locked.writeKubeconfig(join(dir, 'kubeconfig-auth'));
      const kc = new KubeConfig();
      kc.loadFromString(readFileSync(join(dir, 'kubeconfig-auth'), 'utf8').replace('s3cret', 'wrong'));
      const e = await apiError(kc.makeApiClient(CoreV1Api).listNamespace());
      expect(e.code).toBe(401);
      expect(e.body).toBeUndefined();
    } finally {
      await locked.close();
    }
  });

  it('serves discovery and /version', async () => {
    const api = (await (await fetch(`${emu.url}/api`)).json()) as any;
    expect(api).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const v1 = (await (await fetch(`${emu.url}/api/v1`)).json()) as any;
    expect(v1.resources.map((r: any) => r.name)).toEqual(['namespaces', 'pods', 'secrets', 'serviceaccounts', 'serviceaccounts/token']);
    const version = (await (await fetch(`${emu.url}/version`)).json()) as any;
    expect(version).toMatchObject({ major: '1', gitVersion: expect.stringMatching(/^v1\.\d+\.\d+$/) });
    const unknown = await fetch(`${emu.url}/api/v1/namespaces/default/configmaps`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).message).toBe('the server could not find the requested resource');
  });
});

describe('wire details (raw http)', () => {
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> => {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers = { 'content-type': contentType };
    }
    const res = await fetch(`${emu.url}${path}`, init);
    const text = await res.text();
    return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : text };
  };
  const SA = '/api/v1/namespaces/default/serviceaccounts';

  it('PUT and PATCH of a missing SA are 404s; PUT with another name in the body is a 400', async () => {
    expect((await call('PUT', `${SA}/ghost`, { metadata: { name: 'ghost' } })).json).toMatchObject({ code: 404, message: 'serviceaccounts "ghost" not found' });
    expect((await call('PATCH', `${SA}/ghost`, { metadata: {} }, 'application/merge-patch+json')).status).toBe(404);
    emu.seedServiceAccount({ namespace: 'default', name: 'a' });
    expect((await call('PUT', `${SA}/a`, { metadata: { name: 'b' } })).json).toMatchObject({
      code: 400,
      message: 'the name of the object (b) does not match the name on the URL (a)',
    });
  });

  it('PUT without a resourceVersion is an unconditional update; uid and creationTimestamp are kept', async () => {
    const seeded = emu.seedServiceAccount({ namespace: 'default', name: 'a', labels: { x: 'y' } });
    const r = await call('PUT', `${SA}/a`, { metadata: { name: 'a', annotations: { n: '1' } }, automountServiceAccountToken: false });
    expect(r.status).toBe(200);
    expect(r.json.metadata).toMatchObject({ uid: seeded.metadata.uid, creationTimestamp: seeded.metadata.creationTimestamp, annotations: { n: '1' } });
    expect(r.json.metadata.labels).toBeUndefined(); // PUT replaces the whole object
    expect(r.json.automountServiceAccountToken).toBe(false);
  });

  it('create with a resourceVersion is the storage layer 500; generateName and dryRun work', async () => {
    expect((await call('POST', SA, { metadata: { name: 'a', resourceVersion: '5' } })).json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'resourceVersion should not be set on objects to be created',
      code: 500,
    });
    const gen = await call('POST', SA, { metadata: { generateName: 'wid-' } });
    expect(gen.json.metadata.name).toMatch(/^wid-[a-z0-9]{5}$/);
    const dry = await call('POST', `${SA}?dryRun=All`, { metadata: { name: 'dry' } });
    expect(dry.status).toBe(201);
    expect(emu.getServiceAccount('default', 'dry')).toBeUndefined();
    expect(emu.log.at(-1)?.dryRun).toBe(true);
  });

  it('label and annotation validation; non-string annotation values are decode errors', async () => {
    const bad = await call('POST', SA, { metadata: { name: 'a', labels: { 'bad key!': 'v' } } });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toBe(
      `ServiceAccount "a" is invalid: metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
    );
    const num = await call('POST', SA, { metadata: { name: 'a', annotations: { n: 1 } } });
    expect(num.json).toMatchObject({
      code: 400,
      reason: 'BadRequest',
      message: 'ServiceAccount in version "v1" cannot be handled as a ServiceAccount: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string',
    });
  });

  it('strategic merge patch merges secrets by name; merge patch replaces the list', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'a' });
    await call('PATCH', `${SA}/a`, { secrets: [{ name: 's1' }] }, 'application/merge-patch+json');
    const smp = await call('PATCH', `${SA}/a`, { secrets: [{ name: 's2' }] }, 'application/strategic-merge-patch+json');
    expect(smp.json.secrets).toEqual([{ name: 's1' }, { name: 's2' }]);
    const mp = await call('PATCH', `${SA}/a`, { secrets: [{ name: 's3' }] }, 'application/merge-patch+json');
    expect(mp.json.secrets).toEqual([{ name: 's3' }]);
  });

  it('a merge patch carrying a stale resourceVersion is a 409; server-side apply is a 415', async () => {
    const seeded = emu.seedServiceAccount({ namespace: 'default', name: 'a' });
    await call('PATCH', `${SA}/a`, { metadata: { labels: { v: '1' } } }, 'application/merge-patch+json');
    const stale = await call('PATCH', `${SA}/a`, { metadata: { resourceVersion: seeded.metadata.resourceVersion, labels: { v: '2' } } }, 'application/merge-patch+json');
    expect(stale.json).toMatchObject({ code: 409, reason: 'Conflict' });
    const apply = await call('PATCH', `${SA}/a?fieldManager=wid`, 'metadata: {}', 'application/apply-patch+yaml');
    expect(apply.json).toMatchObject({ code: 415, reason: 'UnsupportedMediaType' });
  });

  it('delete preconditions; wrong verbs are 405; unknown non-API paths are a plain 404', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'a' });
    const pre = await call('DELETE', `${SA}/a`, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: '1' } });
    expect(pre.json).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(pre.json.message).toMatch(/^Operation cannot be fulfilled on serviceaccounts "a": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in meta: \d+$/);
    expect((await call('GET', `${SA}/a/token`)).json).toMatchObject({ code: 405, reason: 'MethodNotAllowed' });
    expect(await call('GET', '/nope')).toEqual({ status: 404, json: '404 page not found\n' });
  });
});

describe('Pods', () => {
  it('seedPod stores a realistic running pod; list by serviceAccountName, by label, across namespaces', async () => {
    const seeded = emu.seedPod({ namespace: 'default', name: 'web', serviceAccountName: 'wid-sa', labels: { app: 'web' }, createdAt: '2026-01-02T03:04:05Z' });
    emu.seedPod({ namespace: 'default', name: 'other', labels: { app: 'other' } });
    emu.seedPod({ namespace: 'team-a', name: 'job', serviceAccountName: 'wid-sa', phase: 'Succeeded' });
    expect(seeded.metadata).toMatchObject({ name: 'web', namespace: 'default', creationTimestamp: '2026-01-02T03:04:05Z' });
    expect(seeded.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);

    const bySa = await core.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.serviceAccountName=wid-sa' });
    expect(bySa.kind).toBe('PodList');
    expect(bySa.items.map((p) => p.metadata?.name)).toEqual(['web']);
    const web = bySa.items[0]!;
    expect(web.kind).toBeUndefined(); // list items carry no kind/apiVersion
    expect(web.metadata?.creationTimestamp).toEqual(new Date('2026-01-02T03:04:05Z'));
    expect(web.status?.startTime).toEqual(new Date('2026-01-02T03:04:05Z'));
    expect(web.status?.phase).toBe('Running');
    expect(web.status?.containerStatuses?.[0]).toMatchObject({ name: 'app', ready: true, restartCount: 0 });
    expect(web.spec?.containers.map((c) => [c.name, c.image])).toEqual([['app', 'busybox']]);
    expect(web.spec?.serviceAccountName).toBe('wid-sa');
    expect(web.spec?.serviceAccount).toBe('wid-sa'); // the deprecated twin, as the API server sends it
    expect(web.spec?.volumes).toBeUndefined(); // exactly what was seeded: no kube-api-access volume

    const defaultSa = await core.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.serviceAccountName=default' });
    expect(defaultSa.items.map((p) => p.metadata?.name)).toEqual(['other']);
    const byLabel = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app in (web,nope)' });
    expect(byLabel.items.map((p) => p.metadata?.name)).toEqual(['web']);
    const all = await core.listPodForAllNamespaces();
    expect(all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toEqual(['default/other', 'default/web', 'team-a/job']);
    const allBySa = await core.listPodForAllNamespaces({ fieldSelector: 'spec.serviceAccountName=wid-sa,status.phase!=Succeeded' });
    expect(allBySa.items.map((p) => p.metadata?.name)).toEqual(['web']);
    expect(emu.log.map((r) => `${r.method} ${r.path}`).at(-1)).toBe('GET /api/v1/pods');
  });

  it('seedPod stores containers, initContainers, volumes and hostNetwork as given', async () => {
    const volumes = [{ name: 'aws-iam-token', projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] } }];
    const containers = [{ name: 'main', image: 'example.com/app:1', env: [{ name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::111122223333:role/r' }] }];
    emu.seedPod({ namespace: 'default', name: 'hn', hostNetwork: true, containers, volumes, initContainers: [{ name: 'init', image: 'busybox' }] });
    const pod = await core.readNamespacedPod({ name: 'hn', namespace: 'default' });
    expect(pod.kind).toBe('Pod');
    expect(pod.spec?.hostNetwork).toBe(true);
    expect(pod.status?.podIP).toBe(pod.status?.hostIP); // host-network pods share the node's IP
    expect(pod.spec?.volumes?.[0]?.projected?.sources?.[0]?.serviceAccountToken?.audience).toBe('sts.amazonaws.com');
    expect(pod.spec?.containers[0]?.env).toEqual([{ name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::111122223333:role/r' }]);
    expect(pod.spec?.initContainers?.map((c) => c.name)).toEqual(['init']);
    const hostNet = await core.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.hostNetwork=true' });
    expect(hostNet.items).toHaveLength(1);
  });

  it('a missing pod is 404; an unsupported field label is 400', async () => {
    const e = await apiError(core.readNamespacedPod({ name: 'ghost', namespace: 'default' }));
    expect(e.code).toBe(404);
    expect(statusOf(e)).toMatchObject({ message: 'pods "ghost" not found', reason: 'NotFound', details: { name: 'ghost', kind: 'pods' } });
    const bad = await apiError(core.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.foo=bar' }));
    expect(bad.code).toBe(400);
    expect(statusOf(bad)).toMatchObject({ reason: 'BadRequest', message: 'field label not supported: spec.foo' });
  });

  it('create stores the pod as given (no admission, no defaulting): status Pending, server metadata only', async () => {
    const body = { metadata: { name: 'probe', labels: { run: 'probe' } }, spec: { serviceAccountName: 'wid-sa', containers: [{ name: 'c', image: 'busybox', command: ['sleep', '1'] }] } };
    const created = await core.createNamespacedPod({ namespace: 'default', body });
    expect(created.metadata).toMatchObject({ name: 'probe', namespace: 'default', labels: { run: 'probe' } });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.status).toEqual({ phase: 'Pending', qosClass: 'BestEffort' });
    const stored = emu.getPod('default', 'probe');
    expect(stored.spec).toEqual({ containers: [{ name: 'c', image: 'busybox', command: ['sleep', '1'] }], serviceAccountName: 'wid-sa', serviceAccount: 'wid-sa' });
    expect(emu.writes().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /api/v1/namespaces/default/pods 201']);

    const noContainers = await apiError(core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'empty' }, spec: { containers: [] } } }));
    expect(noContainers.code).toBe(422);
    expect(statusOf(noContainers)).toMatchObject({
      reason: 'Invalid',
      message: 'Pod "empty" is invalid: spec.containers: Required value',
      details: { name: 'empty', kind: 'Pod', causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.containers' }] },
    });
    const noNs = await apiError(core.createNamespacedPod({ namespace: 'nope', body }));
    expect(statusOf(noNs)).toMatchObject({ code: 404, message: 'namespaces "nope" not found' });
    const dup = await apiError(core.createNamespacedPod({ namespace: 'default', body }));
    expect(statusOf(dup)).toMatchObject({ code: 409, reason: 'AlreadyExists', message: 'pods "probe" already exists' });
  });

  it('delete: a scheduled pod answers with deletionTimestamp and grace; an unscheduled one goes at once; then 404', async () => {
    emu.seedPod({ namespace: 'default', name: 'running' });
    const before = Date.now();
    const deleted = await core.deleteNamespacedPod({ name: 'running', namespace: 'default' });
    expect(deleted.metadata?.deletionGracePeriodSeconds).toBe(30);
    expect(deleted.metadata?.deletionTimestamp?.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 30_000);
    expect(emu.getPod('default', 'running')).toBeUndefined();
    expect((await apiError(core.deleteNamespacedPod({ name: 'running', namespace: 'default' }))).code).toBe(404);

    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'pending' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } });
    const gone = await core.deleteNamespacedPod({ name: 'pending', namespace: 'default' });
    expect(gone.metadata?.deletionTimestamp).toBeUndefined();
    expect(emu.listPods()).toEqual([]);
    // Deleting a namespace takes its pods and secrets with it.
    emu.seedPod({ namespace: 'tmp', name: 'p' });
    emu.seedSecret({ namespace: 'tmp', name: 's' });
    await core.deleteNamespace({ name: 'tmp' });
    expect(emu.listPods('tmp')).toEqual([]);
    expect((await core.listSecretForAllNamespaces()).items).toEqual([]);
  });

  it('PUT on a pod is not emulated: 405', async () => {
    emu.seedPod({ namespace: 'default', name: 'p' });
    const res = await fetch(`${emu.url}/api/v1/namespaces/default/pods/p`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(405);
  });
});

describe('Secrets', () => {
  it('seedSecret; list by type, across namespaces; read; writes are 405', async () => {
    const sa = emu.seedServiceAccount({ namespace: 'default', name: 'legacy' });
    emu.seedSecret({ namespace: 'default', name: 'legacy-token', type: 'kubernetes.io/service-account-token', annotations: { 'kubernetes.io/service-account.name': 'legacy' } });
    emu.seedSecret({ namespace: 'default', name: 'config', data: { key: Buffer.from('value').toString('base64') } });
    emu.seedSecret({ namespace: 'other', name: 'other-token', type: 'kubernetes.io/service-account-token', annotations: { 'kubernetes.io/service-account.name': 'x' } });

    const tokens = await core.listNamespacedSecret({ namespace: 'default', fieldSelector: 'type=kubernetes.io/service-account-token' });
    expect(tokens.kind).toBe('SecretList');
    expect(tokens.items.map((s) => s.metadata?.name)).toEqual(['legacy-token']);
    const t = tokens.items[0]!;
    expect(t.type).toBe('kubernetes.io/service-account-token');
    expect(t.metadata?.annotations).toEqual({ 'kubernetes.io/service-account.name': 'legacy', 'kubernetes.io/service-account.uid': sa.metadata.uid });
    expect(Object.keys(t.data ?? {})).toEqual(['ca.crt', 'namespace', 'token']);
    expect(Buffer.from(t.data?.token ?? '', 'base64').toString()).toBe('placeholder');
    expect(Buffer.from(t.data?.namespace ?? '', 'base64').toString()).toBe('default');

    const all = await core.listSecretForAllNamespaces({ fieldSelector: 'type=kubernetes.io/service-account-token' });
    expect(all.items.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).toEqual(['default/legacy-token', 'other/other-token']);
    const opaque = await core.readNamespacedSecret({ name: 'config', namespace: 'default' });
    expect(opaque).toMatchObject({ kind: 'Secret', type: 'Opaque', data: { key: Buffer.from('value').toString('base64') } });
    const missing = await apiError(core.readNamespacedSecret({ name: 'nope', namespace: 'default' }));
    expect(statusOf(missing)).toMatchObject({ code: 404, message: 'secrets "nope" not found' });
    const post = await apiError(core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'x' } } }));
    expect(statusOf(post)).toMatchObject({ code: 405, reason: 'MethodNotAllowed' });
  });
});

describe('MutatingWebhookConfigurations', () => {
  it('seedMutatingWebhook stores a v1 configuration with defaults; list and read through client-node', async () => {
    emu.seedMutatingWebhook({
      name: 'pod-identity-webhook',
      webhooks: [{ name: 'iam-for-pods.amazonaws.com', failurePolicy: 'Ignore', objectSelector: { matchExpressions: [{ key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' }] } }],
    });
    emu.seedMutatingWebhook({
      name: 'azure-wi-webhook-mutating-webhook-configuration',
      webhooks: [
        {
          name: 'mutation.azure-workload-identity.io',
          objectSelector: { matchLabels: { 'azure.workload.identity/use': 'true' } },
          clientConfig: { service: { namespace: 'azure-workload-identity-system', name: 'azure-wi-webhook-webhook-service', path: '/mutate-v1-pod' } },
        },
      ],
    });
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const list = await admission.listMutatingWebhookConfiguration();
    expect(list.kind).toBe('MutatingWebhookConfigurationList');
    expect(list.apiVersion).toBe('admissionregistration.k8s.io/v1');
    expect(list.items.map((c) => c.metadata?.name)).toEqual(['azure-wi-webhook-mutating-webhook-configuration', 'pod-identity-webhook']);
    const eks = list.items[1]!;
    expect(eks.metadata?.generation).toBe(1);
    expect(eks.webhooks?.[0]).toMatchObject({
      name: 'iam-for-pods.amazonaws.com',
      failurePolicy: 'Ignore',
      matchPolicy: 'Equivalent',
      namespaceSelector: {},
      objectSelector: { matchExpressions: [{ key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' }] },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: '*' }],
      sideEffects: 'None',
      timeoutSeconds: 10,
      admissionReviewVersions: ['v1'],
      reinvocationPolicy: 'Never',
      clientConfig: { service: { namespace: 'default', name: 'pod-identity-webhook', path: '/mutate', port: 443 } },
    });
    const azure = await admission.readMutatingWebhookConfiguration({ name: 'azure-wi-webhook-mutating-webhook-configuration' });
    expect(azure.kind).toBe('MutatingWebhookConfiguration');
    expect(azure.webhooks?.[0]?.clientConfig.service).toEqual({ namespace: 'azure-workload-identity-system', name: 'azure-wi-webhook-webhook-service', path: '/mutate-v1-pod', port: 443 });
    expect(azure.webhooks?.[0]?.failurePolicy).toBe('Fail');
    const missing = await apiError(admission.readMutatingWebhookConfiguration({ name: 'nope' }));
    expect(statusOf(missing)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'mutatingwebhookconfigurations.admissionregistration.k8s.io "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', group: 'admissionregistration.k8s.io', kind: 'mutatingwebhookconfigurations' },
      code: 404,
    });
  });

  it('refuses webhook names a cluster would refuse; serves /apis discovery', async () => {
    expect(() => emu.seedMutatingWebhook({ name: 'x', webhooks: [{ name: 'two.parts' }] })).toThrow(/at least three segments/);
    const apis = (await (await fetch(`${emu.url}/apis`)).json()) as any;
    expect(apis.groups.map((g: any) => g.name)).toEqual(['admissionregistration.k8s.io']);
    const group = (await (await fetch(`${emu.url}/apis/admissionregistration.k8s.io`)).json()) as any;
    expect(group).toMatchObject({ kind: 'APIGroup', preferredVersion: { groupVersion: 'admissionregistration.k8s.io/v1' } });
    const v1 = (await (await fetch(`${emu.url}/apis/admissionregistration.k8s.io/v1`)).json()) as any;
    expect(v1.resources.map((r: any) => r.name)).toEqual(['mutatingwebhookconfigurations']);
    expect((await fetch(`${emu.url}/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations`)).status).toBe(404);
  });
});

describe('issuer discovery and token signatures', () => {
  async function issue(audiences = ['sts.amazonaws.com']): Promise<string> {
    const tr = await core.createNamespacedServiceAccountToken({ name: 'wid-sa', namespace: 'default', body: { spec: { audiences, expirationSeconds: 3600 } } });
    return tr.status?.token ?? '';
  }
  async function keyset(): Promise<JSONWebKeySet> {
    // client-node types the answer as string, but it is the parsed object (application/jwk-set+json is JSON-like to it).
    return (await kc.makeApiClient(OpenidApi).getServiceAccountIssuerOpenIDKeyset()) as unknown as JSONWebKeySet;
  }
  /** jose's error code for the verification, or 'ok'. */
  async function verifyCode(token: string): Promise<string> {
    try {
      await jwtVerify(token, createLocalJWKSet(await keyset()), { issuer: 'https://oidc.example.test/cluster-1', audience: 'sts.amazonaws.com' });
      return 'ok';
    } catch (e) {
      return String((e as { code?: unknown }).code);
    }
  }

  it('WellKnownApi and OpenidApi return parsed objects (typed string); a token verifies with jose', async () => {
    const config: unknown = await kc.makeApiClient(WellKnownApi).getServiceAccountIssuerOpenIDConfiguration();
    expect(typeof config).toBe('object');
    expect(config).toEqual({
      issuer: 'https://oidc.example.test/cluster-1',
      jwks_uri: `${emu.url}/openid/v1/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
    const jwks = await keyset();
    expect(typeof jwks).toBe('object');
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ use: 'sig', kty: 'RSA', alg: 'RS256', e: 'AQAB' });
    expect(emu.log.find((r) => r.path === '/openid/v1/jwks')?.status).toBe(200);

    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const token = await issue();
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: 'https://oidc.example.test/cluster-1', audience: 'sts.amazonaws.com' });
    expect(protectedHeader).toEqual({ alg: 'RS256', kid: jwks.keys[0]?.kid });
    expect(payload.sub).toBe('system:serviceaccount:default:wid-sa');
    expect(emu.tokens[0]).toMatchObject({ kid: jwks.keys[0]?.kid, signedWithUnknownKey: false });
  });

  it('signWithUnknownKey: another kid (no matching key), or the same kid (bad signature); then back to normal', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const published = (await keyset()).keys[0]?.kid;
    emu.faults.signWithUnknownKey();
    const rogue = await issue();
    expect(jwtPart(rogue, 0).kid).not.toBe(published);
    expect(await verifyCode(rogue)).toBe('ERR_JWKS_NO_MATCHING_KEY');
    expect(emu.tokens.at(-1)).toMatchObject({ signedWithUnknownKey: true });
    expect(await verifyCode(await issue())).toBe('ok'); // one-shot by default

    emu.faults.signWithUnknownKey(2, { sameKid: true });
    const sameKid = await issue();
    expect(jwtPart(sameKid, 0).kid).toBe(published);
    expect(await verifyCode(sameKid)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    emu.faults.clear();
    expect(await verifyCode(await issue())).toBe('ok');
  });

  it('expireTokens and tokenClockOffsetSeconds give tokens from the past', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    emu.faults.expireTokens(120);
    const tr = await core.createNamespacedServiceAccountToken({ name: 'wid-sa', namespace: 'default', body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 3600 } } });
    const claims = jwtPart(tr.status?.token ?? '', 1);
    const now = Math.floor(Date.now() / 1000);
    expect(claims.exp).toBeGreaterThanOrEqual(now - 121);
    expect(claims.exp).toBeLessThanOrEqual(now - 119);
    expect(claims.exp - claims.iat).toBe(3600);
    expect(tr.status?.expirationTimestamp.getTime()).toBe(claims.exp * 1000);
    expect(await verifyCode(tr.status?.token ?? '')).toBe('ERR_JWT_EXPIRED');
    expect(await verifyCode(await issue())).toBe('ok');

    emu.tokenClockOffsetSeconds = -7200;
    try {
      expect(await verifyCode(await issue())).toBe('ERR_JWT_EXPIRED');
      emu.tokenClockOffsetSeconds = 600; // a clock ahead: nbf in the future
      expect(await verifyCode(await issue())).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
    } finally {
      emu.tokenClockOffsetSeconds = 0;
    }
  });

  it('boundObjectRef to a pod adds the pod claim; wrong SA is 400, wrong uid is 409, missing pod 404', async () => {
    emu.seedServiceAccount({ namespace: 'default', name: 'wid-sa' });
    const pod = emu.seedPod({ namespace: 'default', name: 'web', serviceAccountName: 'wid-sa' });
    emu.seedPod({ namespace: 'default', name: 'other', serviceAccountName: 'default' });
    const bound = (name: string, uid?: string) =>
      core.createNamespacedServiceAccountToken({
        name: 'wid-sa',
        namespace: 'default',
        body: { spec: { audiences: ['x'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name, ...(uid ? { uid } : {}) } } },
      });
    const tr = await bound('web');
    expect(tr.spec.boundObjectRef).toEqual({ kind: 'Pod', apiVersion: 'v1', name: 'web', uid: pod.metadata.uid });
    expect(jwtPart(tr.status?.token ?? '', 1)['kubernetes.io']).toEqual({
      namespace: 'default',
      pod: { name: 'web', uid: pod.metadata.uid },
      serviceaccount: { name: 'wid-sa', uid: emu.getServiceAccount('default', 'wid-sa').metadata.uid },
    });
    expect(statusOf(await apiError(bound('other')))).toMatchObject({
      code: 400,
      message: 'cannot bind token for serviceaccount "wid-sa" to pod running with different serviceaccount name.',
    });
    expect(statusOf(await apiError(bound('web', 'not-the-uid')))).toMatchObject({ code: 409, reason: 'Conflict' });
    expect(statusOf(await apiError(bound('ghost')))).toMatchObject({ code: 404, message: 'pods "ghost" not found' });
  });
});
