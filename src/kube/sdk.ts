/**
 * KubeApi over @kubernetes/client-node 1.x (2.x needs Node 22). The cluster comes from the kubeconfig:
 * --kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context picks a context.
 */
import { AdmissionregistrationV1Api, ApiException, CoreV1Api, KubeConfig, OpenidApi, PatchStrategy, setHeaderOptions, WellKnownApi } from '@kubernetes/client-node';
import { CloudError, RuntimeError, UsageError } from '../core/errors.js';
import type { KubeObject } from '../core/phase.js';
import type { KubeApi } from './client.js';

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
  /** Per-request time limit (ms); a hanging API server ends in a clear error. */
  timeoutMs?: number;
}

/** The API server's Status body, when there is one. */
function status(e: ApiException<unknown>): { reason?: string; message?: string } {
  const body = e.body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as { reason?: string; message?: string };
    } catch {
      return { message: body };
    }
  }
  return (body ?? {}) as { reason?: string; message?: string };
}

/** A dropped connection, 429 or a server error: worth another try. A timeout is not (it already waited). */
function transientKube(e: unknown): boolean {
  if (e instanceof ApiException) return e.code === 429 || e.code === 500 || e.code === 502 || e.code === 503 || e.code === 504;
  const err = e as NodeJS.ErrnoException;
  return err?.code === 'ECONNRESET' || err?.code === 'EPIPE' || /socket hang up/i.test(String(err?.message));
}

function toCloudError(operation: string, e: unknown, context: string): never {
  if (e instanceof ApiException) {
    const s = status(e);
    const reason = s.reason ?? `HTTP${e.code}`;
    let hint: string | undefined;
    if (e.code === 401) hint = `the credentials of kube context ${context} were refused; refresh them (for EKS: aws eks update-kubeconfig; AKS: az aks get-credentials; GKE: gcloud container clusters get-credentials)`;
    if (e.code === 403) hint = `the identity of kube context ${context} may not ${operation}; check with: kubectl auth can-i --list`;
    throw new CloudError('kubernetes', operation, reason, s.message ?? e.message, { status: e.code, ...(hint === undefined ? {} : { hint }), cause: e });
  }
  const err = e as NodeJS.ErrnoException;
  if (err && (err.name === 'AbortError' || err.name === 'TimeoutError' || /aborted|timeout/i.test(String(err.message)))) {
    throw new RuntimeError('WID_E_KUBE_TIMEOUT', `the Kubernetes API of kube context ${context} did not answer ${operation} in time`, {
      hint: 'check that the cluster is reachable (kubectl get --raw /version); WID_TIMEOUT_MS raises the limit',
      cause: e,
    });
  }
  if (err && (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'ETIMEDOUT' || err.code === 'ECONNRESET' || /fetch failed|connect/i.test(String(err.message)))) {
    throw new RuntimeError('WID_E_KUBE_UNREACHABLE', `cannot reach the Kubernetes API of kube context ${context}: ${err.message}`, {
      hint: 'check the context (kubectl config current-context) and that the cluster is reachable (kubectl get --raw /version)',
      cause: e,
    });
  }
  throw e;
}

/**
 * client-node makes a new http(s).Agent for every request, so no connection is reused and each
 * request pays a TCP connect and TLS handshake. One keep-alive agent per cluster instead (clusters
 * behind a proxy keep the library's own agents). Idle sockets do not hold the process open.
 */
function reuseConnections(kc: KubeConfig): void {
  type CreateAgent = (cluster: { server?: string; proxyUrl?: string } | null, options: Record<string, unknown>) => unknown;
  const target = kc as unknown as { createAgent: CreateAgent };
  const original = target.createAgent.bind(kc);
  const agents = new Map<string, unknown>();
  target.createAgent = (cluster, options) => {
    if (!cluster || cluster.proxyUrl) return original(cluster, options);
    const key = cluster.server ?? '';
    let agent = agents.get(key);
    if (agent === undefined) agents.set(key, (agent = original(cluster, { ...options, keepAlive: true })));
    return agent;
  };
}

export function createKubeApi(opts: KubeOptions): KubeApi {
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfig !== undefined) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    throw new UsageError('WID_E_INPUT_INVALID', `cannot read the kubeconfig${opts.kubeconfig === undefined ? '' : ` ${JSON.stringify(opts.kubeconfig)}`}: ${(e as Error).message}`, {
      flag: '--kubeconfig',
    });
  }
  if (opts.context !== undefined) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UsageError('WID_E_INPUT_INVALID', `--context ${JSON.stringify(opts.context)} is invalid: the kubeconfig has no such context${known.length > 0 ? ` (it has: ${known.join(', ')})` : ''}`, {
        flag: '--context',
      });
    }
    kc.setCurrentContext(opts.context);
  }
  const context = kc.getCurrentContext();
  if (!context || !kc.getCurrentCluster()) {
    throw new UsageError('WID_E_INPUT_MISSING', 'no Kubernetes cluster is configured: the kubeconfig has no current context', {
      flag: '--context',
      hint: 'pass --kubeconfig and --context, or --out DIR to write the manifests instead of applying them',
    });
  }
  reuseConnections(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const wellKnown = kc.makeApiClient(WellKnownApi);
  const openid = kc.makeApiClient(OpenidApi);
  const parse = (text: unknown): Record<string, unknown> => (typeof text === 'string' ? (JSON.parse(text) as Record<string, unknown>) : ((text ?? {}) as Record<string, unknown>));
  // Every request carries an abort signal with the time limit (client-node hands it to fetch). The
  // object-parameter API runs middleware as client-node's own Observable stub, which callers resolve
  // with toPromise(); `resolved` is that shape.
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const resolved = <T>(value: T): { toPromise(): Promise<T>; pipe<U>(f: (v: T) => U): unknown } => ({
    toPromise: () => Promise.resolve(value),
    pipe: (f) => resolved(f(value)),
  });
  const limit = {
    middleware: [
      {
        pre: (ctx: { setSignal(signal: AbortSignal): void }) => {
          ctx.setSignal(AbortSignal.timeout(timeoutMs));
          return resolved(ctx);
        },
        post: <T>(response: T) => resolved(response),
      },
    ],
    middlewareMergeStrategy: 'append' as const,
  } as never;
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch, limit);

  /**
   * Runs a request, retrying a dropped connection, 429 or 5xx (3 attempts, backoff with jitter). A
   * create whose first attempt may have gone through answers 409 AlreadyExists on the retry: that is
   * the object we asked for.
   */
  async function retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt > 1 && e instanceof ApiException && e.code === 409 && (fn as { creates?: boolean }).creates) return undefined as T;
        if (!transientKube(e) || attempt >= 3) throw e;
        await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1) * (0.5 + Math.random())));
      }
    }
  }
  async function call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await retrying(fn);
    } catch (e) {
      return toCloudError(operation, e, context);
    }
  }
  async function orAbsent<T>(operation: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await retrying(fn);
    } catch (e) {
      if (e instanceof ApiException && e.code === 404) return undefined;
      return toCloudError(operation, e, context);
    }
  }
  const creating = <T>(fn: () => Promise<T>): (() => Promise<T>) => Object.assign(fn, { creates: true });

  return {
    context,
    namespaceExists: async (name) => (await orAbsent('get namespaces', () => core.readNamespace({ name }, limit))) !== undefined,
    createNamespace: (name) =>
      call('create namespaces', async () => {
        try {
          await core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } }, limit);
        } catch (e) {
          // Created meanwhile by someone else: what we wanted.
          if (!(e instanceof ApiException && e.code === 409)) throw e;
        }
      }),
    getServiceAccount: async (namespace, name) =>
      (await orAbsent('get serviceaccounts', () => core.readNamespacedServiceAccount({ namespace, name }, limit))) as KubeObject | undefined,
    createServiceAccount: (namespace, body) =>
      call(
        'create serviceaccounts',
        creating(async () => {
          await core.createNamespacedServiceAccount({ namespace, body: body as never }, limit);
        }),
      ),
    patchServiceAccount: (namespace, name, patch) =>
      call('patch serviceaccounts', async () => {
        await core.patchNamespacedServiceAccount({ namespace, name, body: patch }, mergePatch);
      }),
    deleteServiceAccount: (namespace, name) =>
      call('delete serviceaccounts', async () => {
        await orAbsent('delete serviceaccounts', () => core.deleteNamespacedServiceAccount({ namespace, name }, limit));
      }),
    listPods: (namespace) =>
      call('list pods', async () => ((namespace === undefined ? await core.listPodForAllNamespaces(undefined, limit) : await core.listNamespacedPod({ namespace }, limit)).items ?? []) as unknown as KubeObject[]),
    listSecrets: (namespace) =>
      call('list secrets', async () => ((namespace === undefined ? await core.listSecretForAllNamespaces(undefined, limit) : await core.listNamespacedSecret({ namespace }, limit)).items ?? []) as unknown as KubeObject[]),
    listMutatingWebhooks: () => call('list mutatingwebhookconfigurations', async () => ((await admission.listMutatingWebhookConfiguration(undefined, limit)).items ?? []) as unknown as KubeObject[]),
    createToken: (namespace, name, audiences, expirationSeconds) =>
      call('create serviceaccounts/token', async () => {
        const tr = await core.createNamespacedServiceAccountToken({
          namespace,
          name,
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences, expirationSeconds } },
        }, limit);
        const exp = tr.status?.expirationTimestamp as unknown;
        return { token: tr.status?.token ?? '', ...(exp === undefined ? {} : { expiresAt: exp instanceof Date ? exp.toISOString() : String(exp) }) };
      }),
    openidConfiguration: () => call('get /.well-known/openid-configuration', async () => parse(await wellKnown.getServiceAccountIssuerOpenIDConfiguration(undefined, limit))),
    jwks: () => call('get /openid/v1/jwks', async () => parse(await openid.getServiceAccountIssuerOpenIDKeyset(undefined, limit)) as { keys: Record<string, unknown>[] }),
  };
}
