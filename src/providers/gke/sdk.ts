/**
 * GcpApi over the Google REST clients (@googleapis/iam, /container, /cloudresourcemanager) signed in
 * with Application Default Credentials. Endpoints: gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_* root
 * URLs, passed in by the caller.
 */
import { cloudresourcemanager_v3 } from '@googleapis/cloudresourcemanager';
import { container_v1 } from '@googleapis/container';
import { iam_v1 } from '@googleapis/iam';
import { GoogleAuth } from 'google-auth-library';
import { CloudError } from '../../core/errors.js';
import type { GcpApi, GoogleServiceAccount, IamPolicy } from './client.js';

export interface GcpOptions {
  /**
   * The project wid works in. Given to GoogleAuth so it never searches for one: that search runs
   * gcloud and probes the metadata server (169.254.169.254) even with METADATA_SERVER_DETECTION=none.
   */
  project?: string;
  /** Root URLs (scheme://host:port/) per API, for other endpoints; default Google's. */
  endpoints?: { iam?: string; container?: string; cloudresourcemanager?: string };
  /** Per-request time limit (ms). */
  timeoutMs?: number;
  /** Base pause (ms) between retries of transient failures. */
  retryDelayMs?: number;
}

const PERMISSION: Record<string, string> = {
  'clusters.get': 'container.clusters.get (roles/container.clusterViewer)',
  'projects.get': 'resourcemanager.projects.get',
  'projects.getIamPolicy': 'resourcemanager.projects.getIamPolicy',
  'projects.setIamPolicy': 'resourcemanager.projects.setIamPolicy (roles/resourcemanager.projectIamAdmin)',
  'serviceAccounts.get': 'iam.serviceAccounts.get',
  'serviceAccounts.create': 'iam.serviceAccounts.create (roles/iam.serviceAccountCreator)',
  'serviceAccounts.delete': 'iam.serviceAccounts.delete',
  'serviceAccounts.getIamPolicy': 'iam.serviceAccounts.getIamPolicy',
  'serviceAccounts.setIamPolicy': 'iam.serviceAccounts.setIamPolicy (roles/iam.serviceAccountAdmin)',
};

interface GaxiosLike {
  message: string;
  status?: number;
  code?: number | string;
  response?: { status?: number; data?: { error?: { code?: number; message?: string; status?: string } } };
}

function httpStatus(e: unknown): number | undefined {
  const g = e as GaxiosLike;
  const s = g?.response?.status ?? g?.status ?? (typeof g?.code === 'number' ? g.code : undefined);
  return typeof s === 'number' ? s : undefined;
}

function toCloudError(operation: string, e: unknown): never {
  if (e instanceof CloudError) throw e;
  const g = e as GaxiosLike;
  const status = httpStatus(e);
  if (e instanceof Error && status !== undefined) {
    const body = g.response?.data?.error;
    const code = body?.status ?? `HTTP${status}`;
    const message = body?.message ?? e.message;
    let hint: string | undefined;
    if (status === 403) hint = `the identity running wid needs ${PERMISSION[operation] ?? operation}; check who that is with: gcloud auth list`;
    else if (status === 401) hint = 'the Google sign-in was refused; refresh Application Default Credentials: gcloud auth application-default login';
    else if (status === 429) hint = 'Google throttled the request; wait a minute and run the same command again';
    throw new CloudError('gcp', operation, code, message, { status, ...(hint === undefined ? {} : { hint }), cause: e });
  }
  if (e instanceof Error && transient(e)) {
    throw new CloudError('gcp', operation, 'Unavailable', e.message, { hint: 'Google did not answer (after retries); check the network or endpoint, or raise WID_TIMEOUT_MS' });
  }
  if (e instanceof Error && /Could not load the default credentials|Unable to detect a Project Id/i.test(e.message)) {
    throw new CloudError('gcp', operation, 'CredentialsMissing', e.message.split('\n')[0] ?? e.message, {
      hint: 'sign in: gcloud auth application-default login (or set GOOGLE_APPLICATION_CREDENTIALS)',
      cause: e,
    });
  }
  throw e;
}

/** 429, 5xx, a dropped connection or a timeout: worth another try. */
function transient(e: unknown): boolean {
  const status = httpStatus(e);
  if (status !== undefined) return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
  const code = String((e as { code?: unknown })?.code ?? '');
  return ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED'].includes(code) || /socket hang up|timeout|aborted/i.test(String((e as Error)?.message));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * gaxios retries only idempotent GETs, so wid retries the rest itself: bounded (4 attempts),
 * exponential, with jitter. A retried write is safe: service-account creation answers 409
 * ALREADY_EXISTS if the first attempt went through, and a setIamPolicy replay fails on its stale etag.
 */
async function withRetry<T>(base: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!transient(e) || attempt >= 4) throw e;
      await sleep(base * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
  }
}

function toGsa(sa: iam_v1.Schema$ServiceAccount): GoogleServiceAccount {
  return {
    email: sa.email ?? '',
    name: sa.name ?? '',
    ...(sa.displayName ? { displayName: sa.displayName } : {}),
    ...(sa.description ? { description: sa.description } : {}),
  };
}

/** `projects/-/…` would answer 403 for a missing account; the owning project answers 404. */
const saName = (email: string): string => `projects/${email.slice(email.indexOf('@') + 1).replace(/\.iam\.gserviceaccount\.com$/, '')}/serviceAccounts/${email}`;

export function createGcpApi(opts: GcpOptions = {}): GcpApi {
  const base = opts.retryDelayMs ?? 500;
  const call = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await withRetry(base, fn);
    } catch (e) {
      return toCloudError(operation, e);
    }
  };
  const orAbsent = async <T>(operation: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withRetry(base, fn);
    } catch (e) {
      if (httpStatus(e) === 404) return undefined;
      return toCloudError(operation, e);
    }
  };
  const timeout = opts.timeoutMs ?? 30_000;
  // The sign-in's token requests get the same time limit as the API calls.
  const auth = new GoogleAuth({
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    ...(opts.project === undefined ? {} : { projectId: opts.project }),
    clientOptions: { transporterOptions: { timeout } },
  });
  const root = (url: string | undefined): { rootUrl?: string; timeout: number } => ({ timeout, ...(url === undefined ? {} : { rootUrl: url.endsWith('/') ? url : `${url}/` }) });
  let iamC: iam_v1.Iam | undefined;
  let containerC: container_v1.Container | undefined;
  let crmC: cloudresourcemanager_v3.Cloudresourcemanager | undefined;
  const iam = (): iam_v1.Iam => (iamC ??= new iam_v1.Iam({ auth, ...root(opts.endpoints?.iam) }));
  const container = (): container_v1.Container => (containerC ??= new container_v1.Container({ auth, ...root(opts.endpoints?.container) }));
  const crm = (): cloudresourcemanager_v3.Cloudresourcemanager => (crmC ??= new cloudresourcemanager_v3.Cloudresourcemanager({ auth, ...root(opts.endpoints?.cloudresourcemanager) }));

  return {
    getCluster: (project, location, name) =>
      call('clusters.get', async () => {
        const { data: c } = await container().projects.locations.clusters.get({ name: `projects/${project}/locations/${location}/clusters/${name}` });
        return {
          name: c.name ?? name,
          location: c.location ?? location,
          ...(c.workloadIdentityConfig?.workloadPool ? { workloadPool: c.workloadIdentityConfig.workloadPool } : {}),
          autopilot: c.autopilot?.enabled === true,
          nodePools: (c.nodePools ?? []).map((p) => ({ name: p.name ?? '', ...(p.config?.workloadMetadataConfig?.mode ? { mode: p.config.workloadMetadataConfig.mode } : {}) })),
        };
      }),
    getProjectNumber: (project) =>
      call('projects.get', async () => {
        const { data } = await crm().projects.get({ name: `projects/${project}` });
        return (data.name ?? '').replace(/^projects\//, '');
      }),
    getServiceAccount: async (email) => {
      const sa = await orAbsent('serviceAccounts.get', async () => (await iam().projects.serviceAccounts.get({ name: saName(email) })).data);
      return sa === undefined ? undefined : toGsa(sa);
    },
    createServiceAccount: (project, accountId, body) =>
      call('serviceAccounts.create', async () => toGsa((await iam().projects.serviceAccounts.create({ name: `projects/${project}`, requestBody: { accountId, serviceAccount: body } })).data)),
    deleteServiceAccount: (email) =>
      call('serviceAccounts.delete', async () => {
        await orAbsent('serviceAccounts.delete', () => iam().projects.serviceAccounts.delete({ name: saName(email) }));
      }),
    getServiceAccountPolicy: (email) =>
      call('serviceAccounts.getIamPolicy', async () => (await iam().projects.serviceAccounts.getIamPolicy({ resource: saName(email), 'options.requestedPolicyVersion': 3 })).data as IamPolicy),
    setServiceAccountPolicy: (email, policy) =>
      call('serviceAccounts.setIamPolicy', async () => (await iam().projects.serviceAccounts.setIamPolicy({ resource: saName(email), requestBody: { policy } })).data as IamPolicy),
    getProjectPolicy: (project) =>
      call('projects.getIamPolicy', async () => (await crm().projects.getIamPolicy({ resource: `projects/${project}`, requestBody: { options: { requestedPolicyVersion: 3 } } })).data as IamPolicy),
    setProjectPolicy: (project, policy) =>
      call('projects.setIamPolicy', async () => (await crm().projects.setIamPolicy({ resource: `projects/${project}`, requestBody: { policy } })).data as IamPolicy),
  };
}
