/**
 * Flags → a validated SetupRequest. Every value is checked here, before anything is read or written;
 * a missing required value is asked for on a terminal and is a usage error anywhere else.
 */
import { UsageError } from '../core/errors.js';
import { defaultRoleName } from '../core/naming.js';
import type { AksRequest, EksRequest, GkeRequest, SetupRequest } from '../core/request.js';
import * as v from '../core/validate.js';
import { DEFAULT_AUDIENCE } from '../providers/eks/build.js';
import { defaultWorkloadPool } from '../providers/gke/build.js';
import { isInteractive, type IO } from './io.js';

/** Options as Commander hands them over (camelCased flag names). */
export interface RawOptions {
  sa?: string;
  namespace: string;
  issuer?: string;
  dryRun?: boolean;
  yes?: boolean;
  output: string;
  out?: string;
  templates?: string;
  inject?: boolean;
  color: boolean;
  // eks
  accountId?: string;
  partition?: string;
  roleName?: string;
  attachPolicyArn?: string[];
  audience?: string;
  tokenExpiration?: string;
  stsRegionalEndpoints?: string | boolean;
  region?: string;
  // aks
  clientId?: string;
  tenantId?: string;
  principalId?: string;
  subscription?: string;
  resourceGroup?: string;
  identity?: string;
  location?: string;
  scope?: string[];
  // aks + gke
  role?: string[];
  // gke
  project?: string;
  mode?: string;
  gsa?: string;
  projectNumber?: string;
  workloadPool?: string;
  // live
  cluster?: string;
  profile?: string;
  context?: string;
  kubeconfig?: string;
  createNamespace?: boolean;
  override?: boolean;
  deleteOidcProvider?: boolean;
  identityResourceGroup?: string;
  deleteIdentity?: boolean;
  deleteGsa?: boolean;
}

/**
 * WID_RETRY_DELAY_MS: the base pause of wid's own retries (409 conflicts, IAM read-modify-write
 * races, a new Google service account not yet visible); doubled on each attempt. Default 1-2 s.
 */
export function retryDelay(io: IO): { retryDelayMs?: number } {
  const raw = io.env.WID_RETRY_DELAY_MS;
  if (raw === undefined || raw === '') return {};
  if (!/^\d+$/.test(raw)) throw new UsageError('WID_E_INPUT_INVALID', `WID_RETRY_DELAY_MS ${JSON.stringify(raw)} is invalid: expected a whole number of milliseconds`, { flag: 'WID_RETRY_DELAY_MS' });
  return { retryDelayMs: Number(raw) };
}

/** WID_TIMEOUT_MS: the time limit of each cloud and cluster request (default 30 s). */
export function timeout(io: IO): { timeoutMs?: number } {
  const raw = io.env.WID_TIMEOUT_MS;
  if (raw === undefined || raw === '') return {};
  if (!/^\d+$/.test(raw) || Number(raw) === 0) throw new UsageError('WID_E_INPUT_INVALID', `WID_TIMEOUT_MS ${JSON.stringify(raw)} is invalid: expected a positive whole number of milliseconds`, { flag: 'WID_TIMEOUT_MS' });
  return { timeoutMs: Number(raw) };
}

/** Where the cluster is (--kubeconfig, --context) and the request time limit, for factory.kube(). */
export function kubeTarget(raw: { kubeconfig?: string; context?: string }, io: IO): { kubeconfig?: string; context?: string; timeoutMs?: number } {
  return { ...timeout(io), ...(raw.kubeconfig === undefined ? {} : { kubeconfig: raw.kubeconfig }), ...(raw.context === undefined ? {} : { context: raw.context }) };
}

export const OUTPUT_FORMATS = ['text', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** How the request is carried out and shown, apart from what it sets up. */
export interface RunOptions {
  dryRun: boolean;
  yes: boolean;
  output: OutputFormat;
  out?: string;
  templates?: string;
  color: boolean;
}

/**
 * A required value: the flag's value if given, else a prompt on a terminal, else a usage error that
 * names the flag. `check` validates (and may convert); it throws UsageError on a bad value.
 */
async function need<T>(io: IO, flag: string, what: string, given: string | undefined, check: (value: string) => T): Promise<T> {
  if (given !== undefined) return check(given);
  if (!isInteractive(io)) {
    throw new UsageError('WID_E_INPUT_MISSING', `missing required flag ${flag} (${what})`, { flag, hint: `pass ${flag} <value>` });
  }
  const answer = await io.prompt({
    message: `${what} (${flag})`,
    validate: (a) => {
      try {
        check(a.trim());
        return undefined;
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    },
  });
  return check(answer.trim());
}

function optional<T>(given: string | undefined, check: (value: string) => T): T | undefined {
  return given === undefined ? undefined : check(given);
}

function dedupe(values: string[]): string[] {
  return [...new Set(values)];
}

/** The run options, checked before the request so that a bad --output fails without any prompt. */
export function runOptions(o: RawOptions): RunOptions {
  if (o.out !== undefined && o.out.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--out "" is invalid: expected a directory', { flag: '--out' });
  if (o.templates !== undefined && o.templates.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--templates "" is invalid: expected a directory', { flag: '--templates' });
  return {
    dryRun: o.dryRun === true,
    yes: o.yes === true,
    output: v.oneOf('--output', o.output, OUTPUT_FORMATS),
    ...(o.out === undefined ? {} : { out: o.out }),
    ...(o.templates === undefined ? {} : { templates: o.templates }),
    color: o.color,
  };
}

async function common(io: IO, o: RawOptions): Promise<{ namespace: string; serviceAccount: string; inject: boolean }> {
  const namespace = v.namespace('--namespace', o.namespace);
  const serviceAccount = await need(io, '--sa', 'Kubernetes ServiceAccount name', o.sa, (x) => v.serviceAccountName('--sa', x));
  return { namespace, serviceAccount, inject: o.inject === true };
}

/** What a live run reads from the EKS cluster instead of taking flags. */
export interface EksClusterFacts {
  issuer: string;
  accountId: string;
  partition: v.AwsPartition;
}

/**
 * The flags a live EKS run rejects outright, checked before any client is built: --cluster supplies
 * the issuer, account and partition, so giving them too is a contradiction.
 */
export function checkEksClusterFlags(o: RawOptions): string | undefined {
  const cluster = o.cluster;
  if (cluster !== undefined) {
    if (cluster.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--cluster "" is invalid: expected an EKS cluster name', { flag: '--cluster' });
    for (const [flag, value] of [['--issuer', o.issuer], ['--account-id', o.accountId], ['--partition', o.partition]] as const) {
      if (value !== undefined) {
        throw new UsageError('WID_E_INPUT_CONFLICT', `${flag} cannot be used with --cluster: the cluster supplies it`, { flag, hint: `drop ${flag}, or drop --cluster to plan offline` });
      }
    }
  }
  return cluster;
}

/** The EKS flags that need no prompt and no cloud read, validated (run again by eksRequest; pure). */
export function eksFlags(o: RawOptions) {
  const cluster = checkEksClusterFlags(o);
  const offlinePartition = v.awsPartition('--partition', o.partition ?? 'aws');
  v.namespace('--namespace', o.namespace);
  if (o.sa !== undefined) v.serviceAccountName('--sa', o.sa);
  const sts = o.stsRegionalEndpoints;
  return {
    cluster,
    offlinePartition,
    roleName: optional(o.roleName, (x) => v.iamRoleName('--role-name', x)),
    policyArns: dedupe((o.attachPolicyArn ?? []).map((x) => v.iamPolicyArn('--attach-policy-arn', x, cluster === undefined ? offlinePartition : undefined))),
    audience: v.audience('--audience', o.audience ?? DEFAULT_AUDIENCE),
    tokenExpiration: optional(o.tokenExpiration, (x) => v.tokenExpiration('--token-expiration', x)),
    stsRegionalEndpoints: typeof sts === 'boolean' || sts === undefined ? sts : v.boolean('--sts-regional-endpoints', sts),
    region: optional(o.region, (x) => v.awsRegion('--region', x)),
  };
}

/** EKS: offline from --issuer, --account-id and --partition; live (--cluster) from the cluster. */
export async function eksRequest(io: IO, o: RawOptions, lookup?: (cluster: string) => Promise<EksClusterFacts>): Promise<EksRequest> {
  // Flags first: a bad one fails before any prompt or cloud read.
  const { cluster, offlinePartition, roleName, policyArns: policyArnsGiven, audience, tokenExpiration, stsRegionalEndpoints, region } = eksFlags(o);
  const c = await common(io, o);
  let facts: EksClusterFacts;
  if (cluster !== undefined) {
    if (!lookup) throw new Error('eksRequest: --cluster needs a lookup');
    facts = await lookup(cluster);
    for (const arn of policyArnsGiven) v.iamPolicyArn('--attach-policy-arn', arn, facts.partition);
  } else {
    const issuer = await need(io, '--issuer', 'the cluster\'s OIDC issuer URL', o.issuer, (x) => v.issuer('--issuer', x));
    const accountId = await need(io, '--account-id', 'the 12-digit AWS account id that owns the role', o.accountId, (x) => v.awsAccountId('--account-id', x));
    facts = { issuer, accountId, partition: offlinePartition };
  }
  return {
    provider: 'eks',
    ...c,
    ...(cluster === undefined ? {} : { cluster }),
    ...facts,
    roleName: roleName ?? defaultRoleName(c.namespace, c.serviceAccount),
    policyArns: policyArnsGiven,
    audience,
    ...(tokenExpiration === undefined ? {} : { tokenExpiration }),
    ...(stsRegionalEndpoints === undefined ? {} : { stsRegionalEndpoints }),
    ...(region === undefined ? {} : { region }),
  };
}

/** What a live AKS run reads from the cluster instead of taking flags. */
export interface AksClusterFacts {
  issuer: string;
  location: string;
}

/** The AKS flags that need no prompt and no cloud read, validated (run again by aksRequest; pure). */
export function aksFlags(o: RawOptions) {
  const cluster = o.cluster;
  if (cluster !== undefined) {
    if (cluster.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--cluster "" is invalid: expected an AKS cluster name', { flag: '--cluster' });
    for (const [flag, value, why] of [
      ['--issuer', o.issuer, 'the cluster supplies it'],
      ['--client-id', o.clientId, 'the managed identity supplies it'],
      ['--tenant-id', o.tenantId, 'the managed identity supplies it'],
      ['--principal-id', o.principalId, 'the managed identity supplies it'],
    ] as const) {
      if (value !== undefined) throw new UsageError('WID_E_INPUT_CONFLICT', `${flag} cannot be used with --cluster: ${why}`, { flag, hint: `drop ${flag}, or drop --cluster to plan offline` });
    }
  } else if (o.identityResourceGroup !== undefined) {
    throw new UsageError('WID_E_INPUT_CONFLICT', '--identity-resource-group needs --cluster (offline, -g is the identity\'s resource group)', { flag: '--identity-resource-group' });
  }
  v.namespace('--namespace', o.namespace);
  if (o.sa !== undefined) v.serviceAccountName('--sa', o.sa);
  const roles = (o.role ?? []).map((x) => v.azureRole('--role', x));
  const scopes = (o.scope ?? []).map((x) => v.azureScope('--scope', x));
  if (roles.length !== scopes.length) {
    const [flag, other] = roles.length > scopes.length ? ['--role', '--scope'] : ['--scope', '--role'];
    throw new UsageError('WID_E_INPUT_CONFLICT', `${flag} given ${Math.max(roles.length, scopes.length)} times but ${other} ${Math.min(roles.length, scopes.length)} times: each --role needs a --scope, in pairs`, {
      flag,
      hint: 'wid setup aks ... --role "Storage Blob Data Reader" --scope /subscriptions/SUB/resourceGroups/RG',
    });
  }
  const tenantId = optional(o.tenantId, (x) => v.guid('--tenant-id', x));
  if (cluster === undefined && o.inject === true && tenantId === undefined) {
    throw new UsageError('WID_E_INPUT_MISSING', '--inject needs --tenant-id: the injected AZURE_TENANT_ID comes from it', { flag: '--tenant-id' });
  }
  const seen = new Set<string>();
  return {
    cluster,
    tenantId,
    principalId: optional(o.principalId, (x) => v.guid('--principal-id', x)),
    clientId: optional(o.clientId, (x) => v.guid('--client-id', x)),
    location: optional(o.location, (x) => v.azureLocation('--location', x)),
    identityResourceGroup: optional(o.identityResourceGroup, (x) => v.resourceGroup('--identity-resource-group', x)),
    subscription: optional(o.subscription, (x) => v.guid('--subscription', x)),
    resourceGroup: optional(o.resourceGroup, (x) => v.resourceGroup('--resource-group', x)),
    identity: optional(o.identity, (x) => v.identityName('--identity', x)),
    roleAssignments: roles
      .map((role, i) => ({ role, scope: scopes[i]! }))
      .filter((p) => {
        const key = `${p.role}|${p.scope.toLowerCase()}`;
        return seen.has(key) ? false : (seen.add(key), true);
      }),
  };
}

/**
 * AKS: offline, everything from flags; live (--cluster), the issuer and default location from the
 * cluster and the identity's ids from the identity.
 */
export async function aksRequest(io: IO, o: RawOptions, lookup?: (subscription: string, resourceGroup: string, cluster: string) => Promise<AksClusterFacts>): Promise<AksRequest> {
  const f = aksFlags(o);
  const c = await common(io, o);
  const subscriptionGiven = o.subscription ?? io.env.AZURE_SUBSCRIPTION_ID;
  if (f.cluster !== undefined) {
    const subscription = await need(io, '--subscription', 'the subscription id of the cluster and identity', subscriptionGiven, (x) => v.guid('--subscription', x));
    const clusterGroup = await need(io, '--resource-group', 'the resource group of the cluster', o.resourceGroup, (x) => v.resourceGroup('--resource-group', x));
    const identity = await need(io, '--identity', 'the managed identity name', o.identity, (x) => v.identityName('--identity', x));
    if (!lookup) throw new Error('aksRequest: --cluster needs a lookup');
    const facts = await lookup(subscription, clusterGroup, f.cluster);
    return {
      provider: 'aks',
      ...c,
      cluster: f.cluster,
      clusterResourceGroup: clusterGroup,
      issuer: facts.issuer,
      subscription,
      resourceGroup: f.identityResourceGroup ?? clusterGroup,
      identity,
      location: f.location ?? facts.location,
      roleAssignments: f.roleAssignments,
    };
  }
  const issuer = await need(io, '--issuer', 'the cluster\'s OIDC issuer URL (ends in "/" on AKS)', o.issuer, (x) => v.issuer('--issuer', x));
  const subscription = await need(io, '--subscription', 'the subscription id of the managed identity', subscriptionGiven, (x) => v.guid('--subscription', x));
  const resourceGroup = await need(io, '--resource-group', 'the resource group of the managed identity', o.resourceGroup, (x) => v.resourceGroup('--resource-group', x));
  const identity = await need(io, '--identity', 'the managed identity name', o.identity, (x) => v.identityName('--identity', x));
  const clientId = await need(io, '--client-id', 'the managed identity\'s client id', o.clientId, (x) => v.guid('--client-id', x));
  return {
    provider: 'aks',
    ...c,
    issuer,
    clientId,
    ...(f.tenantId === undefined ? {} : { tenantId: f.tenantId }),
    ...(f.principalId === undefined ? {} : { principalId: f.principalId }),
    subscription,
    resourceGroup,
    identity,
    ...(f.location === undefined ? {} : { location: f.location }),
    roleAssignments: f.roleAssignments,
  };
}

/** What a live GKE run reads instead of taking flags. */
export interface GkeClusterFacts {
  workloadPool: string;
  /** Direct mode only. */
  projectNumber?: string;
}

/** The GKE flags that need no prompt and no cloud read, validated (run again by gkeRequest; pure). */
export function gkeFlags(o: RawOptions) {
  if (o.inject === true) {
    throw new UsageError('WID_E_INPUT_CONFLICT', '--inject does not apply to gke: GKE hands out tokens from its metadata server, so there is no projected token to inject', { flag: '--inject' });
  }
  const mode = o.mode === undefined ? (o.gsa !== undefined ? 'gsa' : 'direct') : v.oneOf('--mode', o.mode, ['gsa', 'direct'] as const);
  if (mode === 'direct' && o.gsa !== undefined) {
    throw new UsageError('WID_E_INPUT_CONFLICT', '--gsa cannot be used with --mode direct: direct mode grants roles to the Kubernetes ServiceAccount itself', { flag: '--gsa', hint: 'drop --gsa, or use --mode gsa' });
  }
  const cluster = o.cluster;
  if (cluster !== undefined) {
    if (cluster.trim() === '') throw new UsageError('WID_E_INPUT_INVALID', '--cluster "" is invalid: expected a GKE cluster name', { flag: '--cluster' });
    for (const [flag, value, why] of [
      ['--workload-pool', o.workloadPool, 'the cluster supplies it'],
      ['--issuer', o.issuer, 'the cluster supplies it'],
      ['--project-number', o.projectNumber, 'the project supplies it'],
    ] as const) {
      if (value !== undefined) throw new UsageError('WID_E_INPUT_CONFLICT', `${flag} cannot be used with --cluster: ${why}`, { flag, hint: `drop ${flag}, or drop --cluster to plan offline` });
    }
  } else if (o.location !== undefined) {
    throw new UsageError('WID_E_INPUT_CONFLICT', '--location needs --cluster: it is the cluster\'s location', { flag: '--location' });
  }
  v.namespace('--namespace', o.namespace);
  if (o.sa !== undefined) v.serviceAccountName('--sa', o.sa);
  // Checked now for its form; a short name is completed with the project later.
  if (o.gsa !== undefined) v.gsa('--gsa', o.gsa, o.project ?? 'placeholder-project');
  return {
    mode,
    cluster,
    location: optional(o.location, (x) => v.gcpLocation('--location', x)),
    issuer: optional(o.issuer, (x) => v.issuer('--issuer', x)),
    roles: dedupe((o.role ?? []).map((x) => v.gcpRole('--role', x))),
    projectNumber: optional(o.projectNumber, (x) => v.gcpProjectNumber('--project-number', x)),
    project: optional(o.project, (x) => v.gcpProjectId('--project', x)),
    workloadPool: optional(o.workloadPool, (x) => v.workloadPool('--workload-pool', x)),
  };
}

/**
 * GKE: offline, everything from flags; live (--cluster), the pool from the cluster and (direct mode)
 * the project number from Resource Manager. The project: --project, else gcloud's
 * CLOUDSDK_CORE_PROJECT, else GOOGLE_CLOUD_PROJECT.
 */
export async function gkeRequest(io: IO, o: RawOptions, lookup?: (project: string, location: string, cluster: string, mode: 'gsa' | 'direct') => Promise<GkeClusterFacts>): Promise<GkeRequest> {
  const f = gkeFlags(o);
  const c = await common(io, o);
  const projectGiven = o.project ?? io.env.CLOUDSDK_CORE_PROJECT ?? io.env.GOOGLE_CLOUD_PROJECT;
  const project = await need(io, '--project', 'the Google Cloud project id', projectGiven, (x) => v.gcpProjectId('--project', x));
  const gsa = f.mode === 'gsa' ? await need(io, '--gsa', 'the Google service account (email or short name)', o.gsa, (x) => v.gsa('--gsa', x, project)) : undefined;
  if (f.cluster !== undefined) {
    const location = await need(io, '--location', 'the cluster\'s location (region or zone)', o.location, (x) => v.gcpLocation('--location', x));
    if (!lookup) throw new Error('gkeRequest: --cluster needs a lookup');
    const facts = await lookup(project, location, f.cluster, f.mode);
    return {
      provider: 'gke',
      ...c,
      cluster: f.cluster,
      location,
      // GKE's issuer for this cluster (what its tokens carry as iss).
      issuer: `https://container.googleapis.com/v1/projects/${project}/locations/${location}/clusters/${f.cluster}`,
      project,
      mode: f.mode,
      ...(gsa === undefined ? {} : { gsa }),
      ...(facts.projectNumber === undefined ? {} : { projectNumber: facts.projectNumber }),
      workloadPool: facts.workloadPool,
      roles: f.roles,
    };
  }
  const workloadPool = f.workloadPool ?? v.workloadPool('--workload-pool', defaultWorkloadPool(project));
  const base = { provider: 'gke' as const, ...c, ...(f.issuer === undefined ? {} : { issuer: f.issuer }), project, workloadPool, roles: f.roles };
  if (f.mode === 'gsa') return { ...base, mode: 'gsa', gsa: gsa!, ...(f.projectNumber === undefined ? {} : { projectNumber: f.projectNumber }) };
  const number = await need(io, '--project-number', 'the project number (direct mode names the principal by it)', f.projectNumber, (x) => v.gcpProjectNumber('--project-number', x));
  return { ...base, mode: 'direct', projectNumber: number };
}

export function buildRequest(provider: SetupRequest['provider'], io: IO, o: RawOptions): Promise<SetupRequest> {
  switch (provider) {
    case 'eks':
      return eksRequest(io, o);
    case 'aks':
      return aksRequest(io, o);
    case 'gke':
      return gkeRequest(io, o);
  }
}
