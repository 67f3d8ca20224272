/**
 * Self-tests of the Google Cloud emulator, driven through the real clients wid uses: google-auth-library
 * 10.5.0 (Application Default Credentials of type external_account → IdentityPoolClient → the
 * emulator's STS), @googleapis/container 26 (v1), @googleapis/cloudresourcemanager 7 (v3) and
 * @googleapis/iam 38 (v1), each given the emulator's root URL as `rootUrl`. If they parse every answer
 * here, wid's calls will parse too; the construction below is the reference (SPEC.md "Calling it").
 *
 * A guard on net.Socket#connect fails any connection to a host other than the loopback, so these tests
 * also prove that nothing (a metadata-server probe, a real Google endpoint) leaves the machine.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GoogleAuth, IdentityPoolClient, OAuth2Client, gaxios } from 'google-auth-library';
import { cloudresourcemanager, type cloudresourcemanager_v3 } from '@googleapis/cloudresourcemanager';
import { container, type container_v1 } from '@googleapis/container';
import { iam, type iam_v1 } from '@googleapis/iam';
import { startGcpEmulator, type GcpEmulator, type GcpPolicy } from './server.js';

const P = 'wid-proj';
const NUM = '123456789012';
const POOL = `${P}.svc.id.goog`;
const LOC = 'us-central1';
const KSA_MEMBER = `serviceAccount:${POOL}[apps/web]`;
const DIRECT_MEMBER = `principal://iam.googleapis.com/projects/${NUM}/locations/global/workloadIdentityPools/${POOL}/subject/ns/apps/sa/web`;
const WI_USER = 'roles/iam.workloadIdentityUser';
const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];

// ---------------------------------------------------------------------------------------------
// Network guard: only loopback connections are allowed
// ---------------------------------------------------------------------------------------------

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;
const outside: string[] = [];
type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
const originalConnect = net.Socket.prototype.connect as unknown as Connect;

/**
 * The host a Socket#connect call targets, or undefined for an IPC socket. net.connect() and the http
 * agents call it with an already-normalised `[options, callback]` array; direct callers pass (options),
 * (port, host) or (path). The agents' options also carry the request's `path`, so a path only means
 * IPC when there is no port or host.
 */
function targetHost(args: unknown[]): string | undefined {
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) return typeof args[1] === 'string' ? args[1] : 'localhost';
  if (typeof first === 'string') return undefined;
  if (typeof first === 'object' && first !== null) {
    const o = first as { host?: unknown; port?: unknown; path?: unknown };
    if (typeof o.path === 'string' && o.port === undefined && o.host === undefined) return undefined;
    return typeof o.host === 'string' ? o.host : 'localhost';
  }
  return undefined;
}

function installGuard(): void {
  (net.Socket.prototype as unknown as { connect: Connect }).connect = function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
    const host = targetHost(args);
    if (host !== undefined && !LOOPBACK.test(host)) {
      outside.push(host);
      process.nextTick(() => this.destroy(Object.assign(new Error(`test guard: connection to ${host} refused (tests stay on 127.0.0.1)`), { code: 'ECONNREFUSED' })));
      return this;
    }
    return originalConnect.apply(this, args);
  };
}

function removeGuard(): void {
  (net.Socket.prototype as unknown as { connect: Connect }).connect = originalConnect;
}

// ---------------------------------------------------------------------------------------------
// Clients and helpers
// ---------------------------------------------------------------------------------------------

let emu: GcpEmulator;
let dir: string;
let credFile: string;
let auth: GoogleAuth;
let gIam: iam_v1.Iam;
let gke: container_v1.Container;
let crm: cloudresourcemanager_v3.Cloudresourcemanager;

/** How the clients surface an API error: gaxios's GaxiosError, the Google error body in `cause` and `response.data.error`. */
interface GoogleApiError {
  code: number;
  message: string;
  status: string;
  errors?: { message: string; domain: string; reason: string }[];
  details?: Record<string, unknown>[];
}

async function failure(p: Promise<unknown>): Promise<gaxios.GaxiosError & { cause: GoogleApiError }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof gaxios.GaxiosError) return e as gaxios.GaxiosError & { cause: GoogleApiError };
    throw e;
  }
  throw new Error('expected the call to fail');
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

/** A plain request to the emulator (for what the clients cannot send). */
function raw(method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<Raw> {
  const u = new URL(path, emu.url);
  return new Promise((resolve, reject) => {
    const req = request({ method, hostname: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers: opts.headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const saResource = (email: string) => `projects/${P}/serviceAccounts/${email}`;

async function saPolicy(email: string, version?: number): Promise<any> {
  const res = await gIam.projects.serviceAccounts.getIamPolicy({ resource: saResource(email), ...(version === undefined ? {} : { 'options.requestedPolicyVersion': version }) });
  return res.data;
}

async function setSaPolicy(email: string, policy: object, updateMask?: string): Promise<any> {
  const res = await gIam.projects.serviceAccounts.setIamPolicy({ resource: saResource(email), requestBody: { policy, ...(updateMask ? { updateMask } : {}) } });
  return res.data;
}

/** What wid does: get (v3) → add the member → set with the etag, redoing the whole cycle on 409 ABORTED. */
async function addMember(get: () => Promise<any>, set: (p: any) => Promise<any>, role: string, member: string): Promise<{ attempts: number; policy: any }> {
  for (let attempt = 1; attempt <= 5; attempt++) {
    const policy = await get();
    const bindings: any[] = policy.bindings ?? [];
    const binding = bindings.find((b) => b.role === role && !b.condition);
    if (binding) binding.members = [...binding.members, member];
    else bindings.push({ role, members: [member] });
    try {
      return { attempts: attempt, policy: await set({ ...policy, bindings, version: 3 }) };
    } catch (e) {
      if (e instanceof gaxios.GaxiosError && e.status === 409 && (e.cause as GoogleApiError | undefined)?.status === 'ABORTED') continue;
      throw e;
    }
  }
  throw new Error('gave up after 5 attempts');
}

beforeAll(async () => {
  installGuard();
  emu = await startGcpEmulator();
  dir = mkdtempSync(join(tmpdir(), 'gcp-emu-'));
  credFile = join(dir, 'adc.json');
  // The audience's project number is the seeded project's, so IdentityPoolClient#getProjectId resolves offline.
  emu.writeCredentialsFile(credFile, { projectNumber: NUM });
  auth = new GoogleAuth({ keyFilename: credFile, scopes: SCOPES });
  gIam = iam({ version: 'v1', auth, rootUrl: emu.url });
  gke = container({ version: 'v1', auth, rootUrl: emu.url });
  crm = cloudresourcemanager({ version: 'v3', auth, rootUrl: emu.url });
});

afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
  removeGuard();
});

beforeEach(() => {
  emu.reset();
  emu.seedProject({ projectId: P, projectNumber: NUM });
});

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('credentials and the STS token exchange', () => {
  it('the written file is an external_account config whose token_url is the emulator', () => {
    const cfg = JSON.parse(readFileSync(credFile, 'utf8'));
    expect(cfg).toMatchObject({
      type: 'external_account',
      audience: `//iam.googleapis.com/projects/${NUM}/locations/global/workloadIdentityPools/wid-test-pool/providers/wid-test-provider`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${emu.url}v1/token`,
      credential_source: { file: join(dir, 'adc.subject-token') },
    });
    expect(cfg.service_account_impersonation_url).toBeUndefined();
    expect(readFileSync(cfg.credential_source.file, 'utf8').split('.')).toHaveLength(3);
  });

  it('GoogleAuth exchanges the subject token once and caches the access token', async () => {
    const fresh = new GoogleAuth({ keyFilename: credFile, scopes: SCOPES });
    const client = await fresh.getClient();
    expect(client).toBeInstanceOf(IdentityPoolClient);
    const token = await fresh.getAccessToken();
    expect(token).toMatch(/^ya29\.d\./);
    expect(await fresh.getAccessToken()).toBe(token);
    const sts = emu.log.filter((r) => r.api === 'sts');
    expect(sts).toHaveLength(1);
    expect(sts[0]).toEqual({
      method: 'POST',
      path: '/v1/token',
      query: {},
      status: 200,
      write: false,
      api: 'sts',
      // Never the subject token.
      body: {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        audience: `//iam.googleapis.com/projects/${NUM}/locations/global/workloadIdentityPools/wid-test-pool/providers/wid-test-provider`,
        scope: 'https://www.googleapis.com/auth/cloud-platform',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      },
    });
    const answer = await raw('POST', '/v1/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        audience: `//iam.googleapis.com/projects/${NUM}/locations/global/workloadIdentityPools/p/providers/x`,
        subject_token: 'a.b.c',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      }).toString(),
    });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.json).sort()).toEqual(['access_token', 'expires_in', 'issued_token_type', 'token_type']);
    expect(answer.json).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3599 });
  });

  it('GOOGLE_APPLICATION_CREDENTIALS works the same way (with a project id known up front), and getProjectId resolves through the emulator (CRM v1)', async () => {
    const saved = { creds: process.env.GOOGLE_APPLICATION_CREDENTIALS, project: process.env.GOOGLE_CLOUD_PROJECT };
    process.env.GOOGLE_APPLICATION_CREDENTIALS = credFile;
    // Found through the environment variable, ADC looks for a project id before it returns the client:
    // env GOOGLE_CLOUD_PROJECT, then `gcloud config config-helper`, then the metadata server (probed even
    // with METADATA_SERVER_DETECTION=none: four attempts, ~4 s, at 169.254.169.254). GOOGLE_CLOUD_PROJECT
    // (or GoogleAuth's `projectId` option) stops the search at the first step.
    delete process.env.GOOGLE_CLOUD_PROJECT;
    try {
      expect(await new GoogleAuth({ scopes: SCOPES, projectId: P }).getClient()).toBeInstanceOf(IdentityPoolClient);
      process.env.GOOGLE_CLOUD_PROJECT = P;
      const client = await new GoogleAuth({ scopes: SCOPES }).getClient();
      expect(client).toBeInstanceOf(IdentityPoolClient);
      // IdentityPoolClient itself asks cloud_resource_manager_url + the audience's project number.
      expect(await (client as IdentityPoolClient).getProjectId()).toBe(P);
      expect(emu.log.map((r) => `${r.method} ${r.path} ${r.status}`)).toContain(`GET /v1/projects/${NUM} 200`);
    } finally {
      for (const [name, value] of [['GOOGLE_APPLICATION_CREDENTIALS', saved.creds], ['GOOGLE_CLOUD_PROJECT', saved.project]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('a bad audience is refused as Google STS refuses it (OAuth error, re-thrown by google-auth-library)', async () => {
    const bad = join(dir, 'bad-audience.json');
    emu.writeCredentialsFile(bad, { audience: 'not-a-pool' });
    const e = (await new GoogleAuth({ keyFilename: bad, scopes: SCOPES }).getAccessToken().catch((x: unknown) => x)) as Error & { status?: number };
    expect(e.message).toBe(
      'Error code invalid_target: The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.',
    );
    expect(e.status).toBe(400);
    // failNext on the token endpoint answers in OAuth's shape, with statusText as the `error` code.
    emu.faults.failNext('POST', /^\/v1\/token$/, 400, 'invalid_grant', 'The subject token has expired.');
    const failed = (await new GoogleAuth({ keyFilename: credFile, scopes: SCOPES }).getAccessToken().catch((x: unknown) => x)) as Error;
    expect(failed.message).toBe('Error code invalid_grant: The subject token has expired.');
  });

  it('every API request needs a bearer token the emulator issued (401 UNAUTHENTICATED)', async () => {
    const missing = await raw('GET', `/v3/projects/${P}`);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="https://accounts.google.com/"');
    expect(missing.json.error).toMatchObject({
      code: 401,
      status: 'UNAUTHENTICATED',
      message:
        'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'CREDENTIALS_MISSING', metadata: { service: 'cloudresourcemanager.googleapis.com', method: 'google.cloud.resourcemanager.v3.Projects.GetProject' } }],
    });
    const forged = await raw('GET', `/v3/projects/${P}`, { headers: { Authorization: 'Bearer ya29.forged' } });
    expect(forged.status).toBe(401);
    expect(forged.json.error.message).toMatch(/^Request had invalid authentication credentials\./);
    expect(forged.json.error.details[0].reason).toBe('ACCESS_TOKEN_TYPE_UNSUPPORTED');
    // A static token from issueToken() works with a plain OAuth2Client (gcp.md §2.4's construction).
    const oauth = new OAuth2Client();
    oauth.setCredentials({ access_token: emu.issueToken(), expiry_date: Date.now() + 3_600_000 });
    const res = await cloudresourcemanager({ version: 'v3', auth: oauth, rootUrl: emu.url }).projects.get({ name: `projects/${P}` });
    expect(res.data.name).toBe(`projects/${NUM}`);
  });
});

describe('Kubernetes Engine clusters', () => {
  it('a cluster with workload identity: pool, node pool modes, nodeConfig of the first pool', async () => {
    emu.seedCluster({
      project: P,
      location: LOC,
      name: 'wi',
      workloadPool: POOL,
      nodePools: [{ name: 'default-pool', mode: 'GKE_METADATA' }, { name: 'legacy', mode: 'GCE_METADATA' }, { name: 'unset' }],
    });
    const { data: c } = await gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/wi` });
    expect(c).toMatchObject({
      name: 'wi',
      location: LOC,
      status: 'RUNNING',
      selfLink: `https://container.googleapis.com/v1/projects/${P}/locations/${LOC}/clusters/wi`,
      workloadIdentityConfig: { workloadPool: POOL },
      autopilot: {},
      nodeConfig: { workloadMetadataConfig: { mode: 'GKE_METADATA' } },
    });
    expect(c.autopilot?.enabled).toBeUndefined();
    expect(c.nodePools?.map((np) => [np.name, np.config?.workloadMetadataConfig?.mode])).toEqual([
      ['default-pool', 'GKE_METADATA'],
      ['legacy', 'GCE_METADATA'],
      ['unset', undefined],
    ]);
    expect(c.nodePools?.[2]?.config).not.toHaveProperty('workloadMetadataConfig');
    const { data: np } = await gke.projects.locations.clusters.nodePools.get({ name: `projects/${P}/locations/${LOC}/clusters/wi/nodePools/legacy` });
    expect(np.config?.workloadMetadataConfig?.mode).toBe('GCE_METADATA');
  });

  it('without workload identity the field is absent; Autopilot always has it; zonal clusters answer the zones/ path too', async () => {
    emu.seedCluster({ project: P, location: LOC, name: 'plain' });
    emu.seedCluster({ project: P, location: LOC, name: 'auto', autopilot: true });
    emu.seedCluster({ project: P, location: 'us-central1-a', name: 'zonal', workloadPool: POOL });
    const { data: plain } = await gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/plain` });
    expect(plain).not.toHaveProperty('workloadIdentityConfig');
    expect(plain.nodePools?.map((np) => np.config?.workloadMetadataConfig)).toEqual([undefined]);
    const { data: auto } = await gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/auto` });
    expect(auto.autopilot).toEqual({ enabled: true });
    expect(auto.workloadIdentityConfig).toEqual({ workloadPool: POOL });
    expect(auto.nodePools?.[0]?.config?.workloadMetadataConfig).toEqual({ mode: 'GKE_METADATA' });
    const { data: zonal } = await gke.projects.zones.clusters.get({ projectId: P, zone: 'us-central1-a', clusterId: 'zonal' });
    expect(zonal.selfLink).toBe(`https://container.googleapis.com/v1/projects/${P}/zones/us-central1-a/clusters/zonal`);
    expect(zonal.locations).toEqual(['us-central1-a']);
  });

  it('a missing cluster is 404 NOT_FOUND with GKE\'s text', async () => {
    const e = await failure(gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/nope` }));
    expect(e.status).toBe(404);
    expect(e.code).toBe(404);
    expect(e.message).toBe(`Not found: projects/${P}/locations/${LOC}/clusters/nope.`);
    expect(e.cause.status).toBe('NOT_FOUND');
    expect(e.cause.errors?.[0]?.reason).toBe('notFound');
    expect((e.response?.data as any).error.status).toBe('NOT_FOUND');
  });
});

describe('Resource Manager projects', () => {
  it('get returns projects/NUMBER, by id or by number; a project you cannot see is 403', async () => {
    const { data } = await crm.projects.get({ name: `projects/${P}` });
    expect(data).toMatchObject({ name: `projects/${NUM}`, projectId: P, state: 'ACTIVE', displayName: P });
    expect((await crm.projects.get({ name: `projects/${NUM}` })).data.projectId).toBe(P);
    const e = await failure(crm.projects.get({ name: 'projects/ghost-proj' }));
    expect(e.status).toBe(403);
    expect(e.cause.status).toBe('PERMISSION_DENIED');
    expect(e.message).toBe("Permission 'resourcemanager.projects.get' denied on resource '//cloudresourcemanager.googleapis.com/projects/ghost-proj' (or it may not exist).");
    expect(e.cause.details?.[0]).toMatchObject({ reason: 'IAM_PERMISSION_DENIED', metadata: { permission: 'resourcemanager.projects.get' } });
  });

  it('project policies: body options, an owner already there, direct-mode principal grants', async () => {
    emu.seedCluster({ project: P, location: LOC, name: 'wi', workloadPool: POOL });
    const { data: p } = await crm.projects.getIamPolicy({ resource: `projects/${P}`, requestBody: { options: { requestedPolicyVersion: 3 } } });
    expect(p).toMatchObject({ version: 1, bindings: [{ role: 'roles/owner', members: ['user:owner@example.com'] }] });
    expect(emu.log.at(-1)?.body).toEqual({ options: { requestedPolicyVersion: 3 } });
    const { data: set } = await crm.projects.setIamPolicy({
      resource: `projects/${P}`,
      requestBody: { policy: { ...p, bindings: [...(p.bindings ?? []), { role: 'roles/storage.objectViewer', members: [DIRECT_MEMBER] }] } },
    });
    expect(set.etag).not.toBe(p.etag);
    expect(set.bindings?.map((b) => b.role)).toEqual(['roles/owner', 'roles/storage.objectViewer']);
    expect(emu.getPolicy(`projects/${P}`).bindings).toContainEqual({ role: 'roles/storage.objectViewer', members: [DIRECT_MEMBER] });
  });
});

describe('IAM service accounts', () => {
  it('create → get; the second create is 409 ALREADY_EXISTS with the ResourceInfo detail; delete', async () => {
    const { data: sa } = await gIam.projects.serviceAccounts.create({
      name: `projects/${P}`,
      requestBody: { accountId: 'app-gsa', serviceAccount: { displayName: 'App', description: 'made by wid' } },
    });
    const email = `app-gsa@${P}.iam.gserviceaccount.com`;
    expect(sa).toMatchObject({ name: `projects/${P}/serviceAccounts/${email}`, projectId: P, email, displayName: 'App', description: 'made by wid' });
    expect(sa.uniqueId).toMatch(/^1\d{20}$/);
    expect(sa.oauth2ClientId).toBe(sa.uniqueId);
    expect((await gIam.projects.serviceAccounts.get({ name: saResource(email) })).data).toEqual(sa);
    // `projects/-` and the unique id name the same account.
    expect((await gIam.projects.serviceAccounts.get({ name: `projects/-/serviceAccounts/${sa.uniqueId}` })).data.email).toBe(email);

    const e = await failure(gIam.projects.serviceAccounts.create({ name: `projects/${P}`, requestBody: { accountId: 'app-gsa' } }));
    expect(e.status).toBe(409);
    expect(e.cause.status).toBe('ALREADY_EXISTS');
    expect(e.message).toBe(`Service account app-gsa already exists within project projects/${P}.`);
    expect(e.cause.details).toEqual([{ '@type': 'type.googleapis.com/google.rpc.ResourceInfo', resourceName: `projects/${P}/serviceAccounts/${email}` }]);

    const bad = await failure(gIam.projects.serviceAccounts.create({ name: `projects/${P}`, requestBody: { accountId: 'Bad_Id' } }));
    expect(bad.status).toBe(400);
    expect(bad.cause.status).toBe('INVALID_ARGUMENT');
    expect(bad.message).toMatch(/^Invalid form of account ID Bad_Id\./);

    expect((await gIam.projects.serviceAccounts.delete({ name: saResource(email) })).data).toEqual({});
    const gone = await failure(gIam.projects.serviceAccounts.get({ name: saResource(email) }));
    expect([gone.status, gone.cause.status, gone.message]).toEqual([404, 'NOT_FOUND', 'Unknown service account']);
    // With `projects/-` a missing account is 403, not 404 (gcp.md §2.7).
    const wildcard = await failure(gIam.projects.serviceAccounts.get({ name: `projects/-/serviceAccounts/${email}` }));
    expect([wildcard.status, wildcard.message]).toEqual([403, "Permission 'iam.serviceAccounts.get' denied on resource (or it may not exist)."]);
  });

  it('newServiceAccountNotFoundFor: a new account answers 404 to its first N get/getIamPolicy/setIamPolicy calls', async () => {
    emu.faults.newServiceAccountNotFoundFor(3);
    const seeded = emu.seedServiceAccount({ project: P, accountId: 'seeded-gsa' });
    const { data: sa } = await gIam.projects.serviceAccounts.create({ name: `projects/${P}`, requestBody: { accountId: 'fresh-gsa' } });
    const email = sa.email ?? '';
    expect((await failure(gIam.projects.serviceAccounts.get({ name: saResource(email) }))).status).toBe(404);
    expect((await failure(saPolicy(email, 3))).status).toBe(404);
    expect((await failure(setSaPolicy(email, { bindings: [] }))).status).toBe(404);
    expect((await gIam.projects.serviceAccounts.get({ name: saResource(email) })).data.email).toBe(email);
    expect((await saPolicy(seeded, 3)).etag).toBe('ACAB');
    expect(emu.getServiceAccount(email)?.email).toBe(email);
  });
});

describe('IAM policies', () => {
  let gsa: string;
  beforeEach(() => {
    emu.seedCluster({ project: P, location: LOC, name: 'wi', workloadPool: POOL });
    gsa = emu.seedServiceAccount({ project: P, accountId: 'app-gsa', displayName: 'App' });
  });

  it('a never-written policy is {etag: "ACAB"}; a set with the current etag gives a new etag; a stale etag is 409 ABORTED', async () => {
    const empty = await saPolicy(gsa, 3);
    expect(empty).toEqual({ etag: 'ACAB' });
    const first = await setSaPolicy(gsa, { ...empty, bindings: [{ role: WI_USER, members: [KSA_MEMBER] }] });
    expect(first).toMatchObject({ version: 1, bindings: [{ role: WI_USER, members: [KSA_MEMBER] }] });
    expect(first.etag).toMatch(/^Bw[A-Za-z0-9+/]{9}=$/);
    // The old etag is stale now.
    const e = await failure(setSaPolicy(gsa, { etag: 'ACAB', bindings: [] }));
    expect(e.status).toBe(409);
    expect(e.code).toBe(409);
    expect(e.cause.status).toBe('ABORTED');
    expect(e.message).toMatch(/^There were concurrent policy changes\. Please retry the whole read-modify-write with exponential backoff\. The request's ETag '\\000 \\001' did not match the current policy's ETag '\\007\\006.*'\.$/);
    expect(e.cause.errors?.[0]?.reason).toBe('aborted');
    expect(emu.getPolicy(saResource(gsa)).bindings).toEqual([{ role: WI_USER, members: [KSA_MEMBER] }]);
    // Without an etag the write is blind and overwrites.
    const blind = await setSaPolicy(gsa, { bindings: [{ role: 'roles/iam.serviceAccountUser', members: [`serviceAccount:${gsa}`] }] });
    expect(blind.bindings).toEqual([{ role: 'roles/iam.serviceAccountUser', members: [`serviceAccount:${gsa}`] }]);
    expect(blind.etag).not.toBe(first.etag);
  });

  it('bindings with the same role and condition are merged, members deduplicated and sorted, empty bindings dropped; updateMask is honoured', async () => {
    const set = await setSaPolicy(gsa, {
      bindings: [
        { role: WI_USER, members: [`serviceAccount:${POOL}[b/b]`] },
        { role: 'roles/viewer', members: [] },
        { role: WI_USER, members: [`serviceAccount:${POOL}[a/a]`, `serviceAccount:${POOL}[b/b]`] },
      ],
    });
    expect(set.bindings).toEqual([{ role: WI_USER, members: [`serviceAccount:${POOL}[a/a]`, `serviceAccount:${POOL}[b/b]`] }]);
    // Only the etag in the mask: bindings stay as stored, and nothing changed, so neither did the etag.
    const masked = await setSaPolicy(gsa, { etag: set.etag, bindings: [] }, 'etag');
    expect(masked.bindings).toEqual(set.bindings);
    expect(masked.etag).toBe(set.etag);
  });

  it('conditions: read below version 3 mangles the role; a version 1 write with the etag over them is 400; a blind version 1 write loses them', async () => {
    const condition = { title: 'apps only', expression: "request.time < timestamp('2030-01-01T00:00:00Z')" };
    emu.setPolicy(saResource(gsa), { bindings: [{ role: WI_USER, members: [KSA_MEMBER] }, { role: 'roles/iam.serviceAccountTokenCreator', members: [KSA_MEMBER], condition }] });
    const v3 = await saPolicy(gsa, 3);
    expect(v3.version).toBe(3);
    expect(v3.bindings).toContainEqual({ role: 'roles/iam.serviceAccountTokenCreator', members: [KSA_MEMBER], condition: { expression: condition.expression, title: condition.title } });
    const v1 = await saPolicy(gsa);
    expect(v1.version).toBe(1);
    expect(v1.etag).toBe(v3.etag);
    const mangled = v1.bindings.find((b: any) => b.role.startsWith('roles/iam.serviceAccountTokenCreator'));
    expect(mangled.role).toMatch(/^roles\/iam\.serviceAccountTokenCreator_withcond_[0-9a-f]{20}$/);
    expect(mangled).not.toHaveProperty('condition');

    const e = await failure(setSaPolicy(gsa, { ...v1, bindings: [...v1.bindings, { role: 'roles/viewer', members: [KSA_MEMBER] }] }));
    expect(e.status).toBe(400);
    expect(e.cause.status).toBe('INVALID_ARGUMENT');
    expect(e.message).toBe('Specified policy version (1) cannot be less than the existing policy version (3). For more information, please refer to https://cloud.google.com/iam/docs/policies#versions.');

    // The right way: version 3 with the etag keeps the condition.
    const kept = (await addMember(() => saPolicy(gsa, 3), (p) => setSaPolicy(gsa, p), WI_USER, `serviceAccount:${POOL}[apps/worker]`)).policy;
    expect(kept.version).toBe(3);
    expect(kept.bindings.filter((b: any) => b.condition)).toHaveLength(1);

    const blind = await setSaPolicy(gsa, { version: 1, bindings: [{ role: WI_USER, members: [KSA_MEMBER] }] });
    expect(blind.version).toBe(1);
    expect(blind.bindings).toEqual([{ role: WI_USER, members: [KSA_MEMBER] }]);
  });

  it('raceNextPolicyWrite: the first write is stale (409 ABORTED), the redone read-modify-write keeps both changes', async () => {
    emu.faults.raceNextPolicyWrite(saResource(gsa), (policy: GcpPolicy) => {
      policy.bindings.push({ role: WI_USER, members: [`serviceAccount:${POOL}[other/intruder]`] });
    });
    const { attempts, policy } = await addMember(() => saPolicy(gsa, 3), (p) => setSaPolicy(gsa, p), WI_USER, KSA_MEMBER);
    expect(attempts).toBe(2);
    expect(policy.bindings).toEqual([{ role: WI_USER, members: [`serviceAccount:${POOL}[apps/web]`, `serviceAccount:${POOL}[other/intruder]`] }]);
    expect(emu.log.filter((r) => r.api === 'iam').map((r) => `${r.path.split(':').pop()} ${r.status}`)).toEqual(['getIamPolicy 200', 'setIamPolicy 409', 'getIamPolicy 200', 'setIamPolicy 200']);

    // The project variant, through Resource Manager.
    emu.faults.raceNextPolicyWrite(`projects/${P}`, (policy) => ({ ...policy, bindings: [...policy.bindings, { role: 'roles/viewer', members: ['user:someone@example.com'] }] }));
    const project = await addMember(
      async () => (await crm.projects.getIamPolicy({ resource: `projects/${P}`, requestBody: { options: { requestedPolicyVersion: 3 } } })).data,
      async (p) => (await crm.projects.setIamPolicy({ resource: `projects/${P}`, requestBody: { policy: p } })).data,
      'roles/container.clusterViewer',
      DIRECT_MEMBER,
    );
    expect(project.attempts).toBe(2);
    expect(project.policy.bindings.map((b: any) => b.role)).toEqual(['roles/container.clusterViewer', 'roles/owner', 'roles/viewer']);
  });

  it('members are validated as IAM validates them', async () => {
    const reject = async (member: string) => {
      const e = await failure(setSaPolicy(gsa, { bindings: [{ role: WI_USER, members: [member] }] }));
      expect([e.status, e.cause.status]).toEqual([400, 'INVALID_ARGUMENT']);
      return e.message;
    };
    expect(await reject('serviceAccount:other-proj.svc.id.goog[apps/web]')).toBe(
      'Identity Pool does not exist (other-proj.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API.',
    );
    expect(await reject(`serviceAccount:ghost-gsa@${P}.iam.gserviceaccount.com`)).toBe(`Service account ghost-gsa@${P}.iam.gserviceaccount.com does not exist.`);
    // The project id where the number belongs.
    expect(await reject(DIRECT_MEMBER.replace(`projects/${NUM}`, `projects/${P}`))).toMatch(/^Invalid principal member: /);
    // A number whose project has no such pool.
    emu.seedProject({ projectId: 'other-proj', projectNumber: '999999999999' });
    expect(await reject(DIRECT_MEMBER.replace(NUM, '999999999999'))).toMatch(/^Identity Pool does not exist \(wid-proj\.svc\.id\.goog\)/);
    expect(await reject('someone@example.com')).toBe('Policy members must be of the form "<type>:<value>".');

    const ok = await setSaPolicy(gsa, { bindings: [{ role: WI_USER, members: [KSA_MEMBER, DIRECT_MEMBER, `serviceAccount:${gsa}`, 'user:dev@example.com'] }] });
    expect(ok.bindings[0].members).toHaveLength(4);
    // A pool seeded for a non-GKE cluster counts too.
    emu.seedWorkloadIdentityPool({ project: 'other-proj', poolId: 'aks-pool' });
    await setSaPolicy(gsa, { bindings: [{ role: WI_USER, members: ['principalSet://iam.googleapis.com/projects/999999999999/locations/global/workloadIdentityPools/aks-pool/attribute.namespace/apps'] }] });
  });

  it('deleting a service account leaves deleted:serviceAccount:EMAIL?uid=ID members behind', async () => {
    const uid = emu.getServiceAccount(gsa)?.uniqueId as string;
    const { data: p } = await crm.projects.getIamPolicy({ resource: `projects/${P}`, requestBody: { options: { requestedPolicyVersion: 3 } } });
    await crm.projects.setIamPolicy({ resource: `projects/${P}`, requestBody: { policy: { ...p, bindings: [...(p.bindings ?? []), { role: 'roles/storage.admin', members: [`serviceAccount:${gsa}`] }] } } });
    await gIam.projects.serviceAccounts.delete({ name: saResource(gsa) });
    expect(emu.getPolicy(`projects/${P}`).bindings).toContainEqual({ role: 'roles/storage.admin', members: [`deleted:serviceAccount:${gsa}?uid=${uid}`] });
  });
});

describe('faults, the log and writes()', () => {
  it('failNext, quotaExceeded (429 RESOURCE_EXHAUSTED; the client retries GETs), deny and latency', async () => {
    emu.seedCluster({ project: P, location: LOC, name: 'wi', workloadPool: POOL });
    const name = `projects/${P}/locations/${LOC}/clusters/wi`;

    emu.faults.failNext('GET', /\/clusters\/wi$/, 400, 'FAILED_PRECONDITION', 'Cluster is being upgraded.');
    const e = await failure(gke.projects.locations.clusters.get({ name }));
    expect([e.status, e.cause.status, e.message]).toEqual([400, 'FAILED_PRECONDITION', 'Cluster is being upgraded.']);
    expect((await gke.projects.locations.clusters.get({ name })).status).toBe(200);

    // gaxios retries GET on 429 (after 100 ms), so one queued quota fault is absorbed.
    emu.faults.quotaExceeded('GET', /\/clusters\/wi$/);
    expect((await gke.projects.locations.clusters.get({ name })).status).toBe(200);
    expect(emu.log.slice(-2).map((r) => r.status)).toEqual([429, 200]);

    // POST is not retried: the error reaches the caller.
    emu.faults.quotaExceeded('POST', /:getIamPolicy$/);
    const q = await failure(crm.projects.getIamPolicy({ resource: `projects/${P}`, requestBody: {} }));
    expect([q.status, q.cause.status]).toEqual([429, 'RESOURCE_EXHAUSTED']);
    expect(q.message).toBe(`Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'cloudresourcemanager.googleapis.com' for consumer 'project_number:${NUM}'.`);
    expect(q.cause.details?.[0]).toMatchObject({ reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com' });

    emu.faults.deny('GET', /\/clusters\//);
    const d = await failure(gke.projects.locations.clusters.get({ name }));
    expect([d.status, d.cause.status, d.message]).toEqual([403, 'PERMISSION_DENIED', `Required "container.clusters.get" permission(s) for "${name}".`]);
    emu.faults.clear();

    emu.faults.latencyMs = 60;
    const started = Date.now();
    await gke.projects.locations.clusters.get({ name });
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });

  it('a status-0 fault drops the connection before the request is handled; dropAnswerNext loses the answer of a handled one', async () => {
    emu.seedCluster({ project: P, location: LOC, name: 'wi', workloadPool: POOL });
    const setProject = /\/projects\/wid-proj:setIamPolicy$/;
    const networkError = async (p: Promise<unknown>): Promise<{ code?: string; status?: number }> => {
      try {
        await p;
      } catch (e) {
        return e as { code?: string; status?: number };
      }
      throw new Error('expected the call to fail');
    };
    const before = (await crm.projects.getIamPolicy({ resource: `projects/${P}`, requestBody: { options: { requestedPolicyVersion: 3 } } })).data;
    const grant = { ...before, bindings: [...(before.bindings ?? []), { role: 'roles/viewer', members: ['user:bob@example.com'] }] };
    const set = () => crm.projects.setIamPolicy({ resource: `projects/${P}`, requestBody: { policy: grant } });

    // The request is lost: a network error (no HTTP status), the policy unchanged, logged with status 0.
    emu.faults.failNext('POST', setProject, 0, '', '');
    const dropped = await networkError(set());
    expect([dropped.code, dropped.status]).toEqual(['ECONNRESET', undefined]);
    expect(emu.getPolicy(`projects/${P}`).etag).toBe(before.etag);
    // The answer is lost: the policy was written, so a replay of the same request (its etag now stale) is ABORTED.
    emu.faults.dropAnswerNext('POST', setProject);
    expect((await networkError(set())).code).toBe('ECONNRESET');
    expect(emu.getPolicy(`projects/${P}`).bindings).toContainEqual({ role: 'roles/viewer', members: ['user:bob@example.com'] });
    const replay = await failure(set());
    expect([replay.status, replay.cause.status]).toEqual([409, 'ABORTED']);
    expect(emu.log.filter((r) => r.path.endsWith(':setIamPolicy')).map((r) => r.status)).toEqual([0, 0, 409]);

    // gaxios resends a GET after a dropped connection; clear() drops pending answer drops.
    emu.faults.failNext('GET', /\/clusters\/wi$/, 0, '', '');
    expect((await gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/wi` })).status).toBe(200);
    expect(emu.log.slice(-2).map((r) => r.status)).toEqual([0, 200]);
    emu.faults.dropAnswerNext('*', /./);
    emu.faults.clear();
    expect((await gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/wi` })).status).toBe(200);
  });

  it('the log records every request; writes() are the creates, deletes and setIamPolicy calls', async () => {
    emu.seedCluster({ project: P, location: LOC, name: 'wi', workloadPool: POOL });
    await gke.projects.locations.clusters.get({ name: `projects/${P}/locations/${LOC}/clusters/wi` });
    await crm.projects.get({ name: `projects/${P}` });
    const { data: sa } = await gIam.projects.serviceAccounts.create({ name: `projects/${P}`, requestBody: { accountId: 'logged-gsa' } });
    const email = sa.email ?? '';
    const pol = await saPolicy(email, 3);
    await failure(setSaPolicy(email, { etag: 'BwAAAAAAAAA=', bindings: [] }));
    await setSaPolicy(email, { ...pol, bindings: [{ role: WI_USER, members: [KSA_MEMBER] }] });
    await gIam.projects.serviceAccounts.delete({ name: saResource(email) });
    const apiLog = emu.log.filter((r) => r.api !== 'sts');
    expect(apiLog.map((r) => `${r.api} ${r.method} ${r.path} ${r.status}`)).toEqual([
      `container GET /v1/projects/${P}/locations/${LOC}/clusters/wi 200`,
      `crm GET /v3/projects/${P} 200`,
      `iam POST /v1/projects/${P}/serviceAccounts 200`,
      `iam POST /v1/projects/${P}/serviceAccounts/${email}:getIamPolicy 200`,
      `iam POST /v1/projects/${P}/serviceAccounts/${email}:setIamPolicy 409`,
      `iam POST /v1/projects/${P}/serviceAccounts/${email}:setIamPolicy 200`,
      `iam DELETE /v1/projects/${P}/serviceAccounts/${email} 200`,
    ]);
    expect(apiLog[3]?.query).toEqual({ 'options.requestedPolicyVersion': '3' });
    expect(emu.writes().map((r) => `${r.method} ${r.path.split(':').pop()} ${r.status}`)).toEqual([
      `POST /v1/projects/${P}/serviceAccounts 200`,
      'POST setIamPolicy 409',
      'POST setIamPolicy 200',
      `DELETE /v1/projects/${P}/serviceAccounts/${email} 200`,
    ]);
    expect(emu.writes()[2]?.body).toMatchObject({ policy: { bindings: [{ role: WI_USER, members: [KSA_MEMBER] }] } });
  });
});

describe('network guard', () => {
  it('blocks a non-loopback connection, and nothing in this file tried one', async () => {
    const before = outside.length;
    const err = await new Promise<Error>((resolve) => net.connect(443, 'example.com').on('error', resolve));
    expect(err.message).toMatch(/test guard/);
    expect(outside.splice(before)).toEqual(['example.com']);
    expect(outside).toEqual([]);
  });
});
