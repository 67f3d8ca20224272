/**
 * `wid audit`: finds the legacy, long-lived ServiceAccount token Secrets (type
 * kubernetes.io/service-account-token) and the pods that use them. Such a token never expires and
 * works until its Secret is deleted; a projected token (what workload identity uses) lasts an hour
 * and is bound to its pod.
 *
 * Secrets are listed through the API, so their data comes back too: only names, annotations, labels
 * and timestamps are read from them, and nothing of `data` reaches any output.
 */
import { Command, Option } from 'commander';
import { ChecksFailed, UsageError } from '../../core/errors.js';
import type { KubeObject } from '../../core/phase.js';
import * as v from '../../core/validate.js';
import { table } from '../../output/table.js';
import type { Factory } from '../factory.js';
import { examples, kubeOptions } from '../flags.js';
import type { IO } from '../io.js';
import { timeout } from '../request.js';

export const LEGACY_TOKEN_TYPE = 'kubernetes.io/service-account-token';
const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
/** Set by kube-apiserver 1.29+ (LegacyServiceAccountTokenTracking): the day the token was last used. */
const LAST_USED_LABEL = 'kubernetes.io/legacy-token-last-used';
/** Set by the legacy token cleaner (1.29+) when it has invalidated an unused token. */
const INVALID_SINCE_LABEL = 'kubernetes.io/legacy-token-invalid-since';

const FORMATS = ['text', 'json'] as const;

interface RawAuditOptions {
  namespace?: string;
  allNamespaces?: boolean;
  kubeconfig?: string;
  context?: string;
  output: string;
}

export interface AuditSecret {
  namespace: string;
  name: string;
  /** From the `kubernetes.io/service-account.name` annotation; null when it is missing. */
  serviceAccount: string | null;
  createdAt: string | null;
  /** The `kubernetes.io/legacy-token-last-used` label (a date), when the API server tracks it. */
  lastUsed: string | null;
  /** The `kubernetes.io/legacy-token-invalid-since` label (a date), once the cleaner invalidated it. */
  invalidSince: string | null;
  /** Names of the pods in the same namespace that use it. */
  pods: string[];
}

export interface AuditUse {
  secret: string;
  via: 'volume' | 'env' | 'envFrom';
  /** The pod volume, for `volume`. */
  volume?: string;
  /** The container, for `env` and `envFrom`. */
  container?: string;
  /** The environment variable, for `env`. */
  env?: string;
}

export interface AuditPod {
  namespace: string;
  name: string;
  serviceAccount: string | null;
  uses: AuditUse[];
}

/** The JSON shape of `-o json`; fields are only ever added. */
export interface AuditReport {
  apiVersion: 'wid/v1';
  kind: 'Audit';
  context: string;
  /** The namespace audited, or null with --all-namespaces. */
  namespace: string | null;
  secrets: AuditSecret[];
  pods: AuditPod[];
}

export function auditCommand(io: IO, factory: Factory): Command {
  const cmd = new Command('audit')
    .description('find legacy long-lived ServiceAccount token Secrets and the pods that use them')
    .option('-n, --namespace <namespace>', 'namespace to audit (default: default)')
    .option('-A, --all-namespaces', 'audit every namespace');
  kubeOptions(cmd)
    .addOption(new Option('-o, --output <format>', 'what stdout carries: text (tables) or json').default('text'))
    .addHelpText('after', examples(['wid audit -n apps', 'wid audit --all-namespaces -o json | jq -r \'.secrets[] | "\\(.namespace)/\\(.name)"\'']))
    .action(async (raw: RawAuditOptions) => runAudit(raw, io, factory));
  return cmd;
}

export async function runAudit(raw: RawAuditOptions, io: IO, factory: Factory): Promise<void> {
  // Flags first: bad input stops before the kube client is even built.
  const output = v.oneOf('--output', raw.output, FORMATS);
  if (raw.namespace !== undefined && raw.allNamespaces === true) {
    throw new UsageError('WID_E_INPUT_CONFLICT', '--namespace and --all-namespaces contradict each other', {
      flag: '--all-namespaces',
      hint: 'pass -n NAMESPACE for one namespace, or --all-namespaces for every one',
    });
  }
  const namespace = raw.allNamespaces === true ? undefined : v.namespace('--namespace', raw.namespace ?? 'default');
  if (raw.kubeconfig !== undefined && raw.kubeconfig.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--kubeconfig "" is invalid: expected a file', { flag: '--kubeconfig' });
  if (raw.context !== undefined && raw.context.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--context "" is invalid: expected a kube context name', { flag: '--context' });

  const kube = await factory.kube({
    ...timeout(io),
    ...(raw.kubeconfig === undefined ? {} : { kubeconfig: raw.kubeconfig }),
    ...(raw.context === undefined ? {} : { context: raw.context }),
  });
  const secrets = await kube.listSecrets(namespace);
  const pods = await kube.listPods(namespace);
  const report: AuditReport = { apiVersion: 'wid/v1', kind: 'Audit', context: kube.context, namespace: namespace ?? null, ...findLegacyTokens(secrets, pods) };

  const where = namespace === undefined ? 'in any namespace' : `in namespace ${namespace}`;
  if (output === 'json') io.out(`${JSON.stringify(report, null, 2)}\n`);
  else io.out(auditText(report));
  if (report.secrets.length === 0) {
    io.err(`No legacy ServiceAccount token Secrets ${where} (kube context ${kube.context}).\n`);
    return;
  }
  const n = report.secrets.length;
  const p = report.pods.length;
  const summary = `Found ${n} legacy ServiceAccount token Secret${n === 1 ? '' : 's'} ${where}${p === 0 ? ', used by no pod' : `, used by ${p} pod${p === 1 ? '' : 's'}`} (kube context ${kube.context}).`;
  io.err(`${summary}\n${advice(report)}`);
  throw new ChecksFailed(summary);
}

type Obj = Record<string, unknown>;
const obj = (x: unknown): Obj => (typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Obj) : {});
const arr = (x: unknown): Obj[] => (Array.isArray(x) ? x.map(obj) : []);
const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

/** client-node hands back timestamps as Date; the wire form is RFC 3339 to the second. */
function timestamp(x: unknown): string | null {
  if (x instanceof Date) return Number.isNaN(x.getTime()) ? null : x.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return typeof x === 'string' ? x : null;
}

/** Every way a pod can reach a Secret's data: volumes (plain and projected), env and envFrom. */
function secretUses(pod: KubeObject): AuditUse[] {
  const spec = obj(pod.spec);
  const uses: AuditUse[] = [];
  for (const vol of arr(spec.volumes)) {
    const volume = str(vol.name) ?? '';
    const plain = str(obj(vol.secret).secretName);
    if (plain !== undefined) uses.push({ secret: plain, via: 'volume', volume });
    for (const source of arr(obj(vol.projected).sources)) {
      const name = str(obj(source.secret).name);
      if (name !== undefined) uses.push({ secret: name, via: 'volume', volume });
    }
  }
  for (const c of [...arr(spec.initContainers), ...arr(spec.containers), ...arr(spec.ephemeralContainers)]) {
    const container = str(c.name) ?? '';
    for (const e of arr(c.env)) {
      const name = str(obj(obj(e.valueFrom).secretKeyRef).name);
      if (name !== undefined) uses.push({ secret: name, via: 'env', container, env: str(e.name) ?? '' });
    }
    for (const e of arr(c.envFrom)) {
      const name = str(obj(e.secretRef).name);
      if (name !== undefined) uses.push({ secret: name, via: 'envFrom', container });
    }
  }
  return uses;
}

const byNamespaceName = <T extends { namespace: string; name: string }>(a: T, b: T): number =>
  a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1;

/** Pure: the legacy token Secrets among `secrets`, and the pods (same namespace) that use them. */
export function findLegacyTokens(secrets: KubeObject[], pods: KubeObject[]): { secrets: AuditSecret[]; pods: AuditPod[] } {
  const found = new Map<string, AuditSecret>();
  for (const s of secrets) {
    if (s.type !== LEGACY_TOKEN_TYPE) continue;
    const meta = obj(s.metadata);
    const annotations = obj(meta.annotations);
    const labels = obj(meta.labels);
    const entry: AuditSecret = {
      namespace: str(meta.namespace) ?? '',
      name: str(meta.name) ?? '',
      serviceAccount: str(annotations[SA_NAME_ANNOTATION]) ?? null,
      createdAt: timestamp(meta.creationTimestamp),
      lastUsed: str(labels[LAST_USED_LABEL]) ?? null,
      invalidSince: str(labels[INVALID_SINCE_LABEL]) ?? null,
      pods: [],
    };
    found.set(`${entry.namespace}/${entry.name}`, entry);
  }
  const users: AuditPod[] = [];
  for (const p of pods) {
    const meta = obj(p.metadata);
    const namespace = str(meta.namespace) ?? '';
    const name = str(meta.name) ?? '';
    const uses = secretUses(p).filter((u) => found.has(`${namespace}/${u.secret}`));
    if (uses.length === 0) continue;
    users.push({ namespace, name, serviceAccount: str(obj(p.spec).serviceAccountName) ?? null, uses });
    for (const secret of new Set(uses.map((u) => u.secret))) found.get(`${namespace}/${secret}`)?.pods.push(name);
  }
  for (const s of found.values()) s.pods.sort();
  return { secrets: [...found.values()].sort(byNamespaceName), pods: users.sort(byNamespaceName) };
}

function describeUse(u: AuditUse): string {
  if (u.via === 'volume') return `volume ${u.volume}`;
  if (u.via === 'env') return `env ${u.env} in container ${u.container}`;
  return `envFrom in container ${u.container}`;
}

export function auditText(r: AuditReport): string {
  if (r.secrets.length === 0) return '';
  const parts = [
    table(
      ['NAMESPACE', 'SECRET', 'SERVICEACCOUNT', 'CREATED', 'LAST USED', 'PODS'],
      r.secrets.map((s) => [s.namespace, s.name, s.serviceAccount ?? '<none>', s.createdAt ?? '<unknown>', s.invalidSince ? `invalid since ${s.invalidSince}` : s.lastUsed ?? '<not tracked>', String(s.pods.length)]),
    ),
  ];
  if (r.pods.length > 0) {
    const rows = r.pods.flatMap((p) => p.uses.map((u) => [p.namespace, p.name, p.serviceAccount ?? '<none>', u.secret, describeUse(u)]));
    parts.push(table(['NAMESPACE', 'POD', 'SERVICEACCOUNT', 'SECRET', 'VIA'], rows));
  }
  return parts.join('\n');
}

/** What to do next, Secret by Secret: the safe order is users first, then the Secret. */
function advice(r: AuditReport): string {
  const out = [
    'These tokens never expire: each stays valid until its Secret is deleted. Projected ServiceAccount tokens (mounted',
    'by default since Kubernetes 1.22, and what workload identity uses) are short-lived and bound to their pod.',
  ];
  const unused = r.secrets.filter((s) => s.pods.length === 0);
  const used = r.secrets.filter((s) => s.pods.length > 0);
  if (used.length > 0) {
    out.push('Move these pods to projected tokens first (drop the Secret volume or env; read the token the kubelet mounts at');
    out.push('/var/run/secrets/kubernetes.io/serviceaccount/token), then delete the Secret:');
    for (const s of used) out.push(`  ${s.namespace}/${s.name}: used by ${s.pods.join(', ')}; afterwards: kubectl delete secret ${s.name} -n ${s.namespace}`);
  }
  if (unused.length > 0) {
    out.push('Used by no pod; check LAST USED for users outside the cluster (such as CI), then delete:');
    for (const s of unused) out.push(`  kubectl delete secret ${s.name} -n ${s.namespace}`);
  }
  const sa = r.secrets.find((s) => s.serviceAccount !== null);
  out.push(`Where something outside a pod needs a token, issue a short-lived one instead: kubectl create token ${sa?.serviceAccount ?? 'SERVICEACCOUNT'} -n ${sa?.namespace ?? 'NAMESPACE'} --duration 1h`);
  return `${out.join('\n')}\n`;
}
