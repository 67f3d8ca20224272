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
import { ApiException, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startKubeEmulator, type KubeEmulator } from './server.js';

let emu: KubeEmulator;
let dir: string;
let core: CoreV1Api;

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
    expect(v1.resources.map((r: any) => r.name)).toEqual(['namespaces', 'serviceaccounts', 'serviceaccounts/token']);
    const version = (await (await fetch(`${emu.url}/version`)).json()) as any;
    expect(version).toMatchObject({ major: '1', gitVersion: expect.stringMatching(/^v1\.\d+\.\d+$/) });
    const unknown = await fetch(`${emu.url}/api/v1/namespaces/default/pods`);
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
