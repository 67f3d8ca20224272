/**
 * `wid setup <eks|aks|gke>`: flags → request → plan → output, and with --cluster, apply. Thin: the
 * work is in src/core, src/providers and src/kube.
 */
import { Command } from 'commander';
import { buildOfflinePlan } from '../../core/engine.js';
import { UsageError } from '../../core/errors.js';
import type { KubeObject, LivePhase, ProviderModule } from '../../core/phase.js';
import type { Plan, Provider } from '../../core/plan.js';
import type { SetupRequest } from '../../core/request.js';
import { loadTemplates, renderManifests, TEMPLATE_FILES, type Templates } from '../../kube/manifests.js';
import { checkOutDir, writeFilesAtomically } from '../../output/files.js';
import { manifestsYaml, planJson, planText, planYaml, toYaml } from '../../output/render.js';
import { aks } from '../../providers/aks/phases.js';
import { ksaPrincipal } from '../../providers/gke/build.js';
import { eks } from '../../providers/eks/phases.js';
import { gke } from '../../providers/gke/phases.js';
import type { Factory } from '../factory.js';
import { awsOptions, collect, examples, kubeOptions, runFlags, serviceAccountOptions } from '../flags.js';
import type { IO } from '../io.js';
import { runLive } from '../live.js';
import { buildRequest, runOptions, type RawOptions, type RunOptions } from '../request.js';
import { styleFor } from '../style.js';
import { aksLive } from './aks-live.js';
import { eksLive } from './eks-live.js';
import { gkeLive } from './gke-live.js';

const EXAMPLES: Record<Provider, string[]> = {
  eks: [
    'wid setup eks --cluster prod --region us-west-2 --sa s3-access-sa --attach-policy-arn arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess',
    'wid setup eks --cluster prod --region us-west-2 --sa s3-access-sa -n apps --dry-run -o json',
    'wid setup eks --sa s3-access-sa --issuer https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE --account-id 111122223333 --dry-run',
    'wid setup eks --sa app --issuer https://oidc.example.com --account-id 111122223333 --inject --region us-west-2 --dry-run --out manifests/',
  ],
  aks: [
    'wid setup aks --cluster prod -g my-rg --sa my-sa --identity my-id --role "Storage Blob Data Reader" --scope /subscriptions/SUB/resourceGroups/my-rg',
    'wid setup aks --sa my-sa --issuer https://westeurope.oic.prod-aks.azure.com/TENANT/ISSUER/ --subscription SUB -g my-rg --identity my-id \\\n      --client-id CLIENT --tenant-id TENANT --role "Storage Blob Data Reader" --scope /subscriptions/SUB/resourceGroups/my-rg --dry-run',
  ],
  gke: [
    'wid setup gke --cluster prod --location europe-west1 --project my-project --sa my-ksa --role roles/storage.objectViewer',
    'wid setup gke --cluster prod --location europe-west1 --project my-project --sa my-ksa --gsa my-gsa --role roles/storage.objectViewer --dry-run',
    'wid setup gke --sa my-ksa --project my-project --project-number 123456789012 --role roles/storage.objectViewer --dry-run',
    'wid setup gke --sa my-ksa --project my-project --gsa my-gsa --role roles/storage.objectViewer --dry-run -o json',
  ],
};

/** Offline and manifest flags every provider shares. */
function manifestOptions(cmd: Command): Command {
  return cmd
    .option('--templates <dir>', 'template overrides, file by file: DIR/<provider>/pod.yaml or DIR/pod.yaml')
    .option('--inject', 'render the Pod with what the webhook would inject, for clusters without it');
}

function eksCommand(): Command {
  const cmd = serviceAccountOptions(new Command('eks').description('IAM roles for service accounts (IRSA) on EKS, or on any cluster with an OIDC issuer'))
    .option('--cluster <name>', 'EKS cluster to read the issuer, account and partition from, and to apply to')
    .option('--role-name <name>', 'IAM role name (default: wid-<namespace>-<sa>)')
    .option('--attach-policy-arn <arn>', 'managed policy to attach to the role (repeatable)', collect)
    .option('--audience <aud>', 'token audience', 'sts.amazonaws.com')
    .option('--token-expiration <seconds>', 'projected token lifetime, 600-86400 (SA annotation)')
    .option('--sts-regional-endpoints [bool]', 'use regional STS endpoints, true or false (SA annotation)')
    .option('--create-namespace', 'create the namespace when it does not exist')
    .option('--override', 'repoint a ServiceAccount already annotated with another role')
    .option('--issuer <url>', 'offline (no --cluster): the cluster\'s OIDC issuer URL, exactly as the cluster reports it')
    .option('--account-id <id>', 'offline: 12-digit AWS account id that owns the role')
    .option('--partition <partition>', 'offline: aws | aws-cn | aws-us-gov (default: aws)');
  return kubeOptions(awsOptions(cmd));
}

function aksCommand(): Command {
  const cmd = serviceAccountOptions(new Command('aks').description('Azure workload identity: managed identity, federated credential, role assignments'))
    .option('--cluster <name>', 'AKS cluster to read the issuer from, and to apply to')
    .option('-g, --resource-group <name>', 'resource group of the cluster (offline: of the managed identity)')
    .option('--subscription <id>', 'subscription id (default: $AZURE_SUBSCRIPTION_ID)')
    .option('--identity <name>', 'user-assigned managed identity name')
    .option('--identity-resource-group <name>', 'resource group of the managed identity (default: the cluster\'s)')
    .option('--location <location>', 'Azure region for a new managed identity (default: the cluster\'s)')
    .option('--role <role>', 'role name, GUID or definition id to assign (repeatable, pairs with --scope)', collect)
    .option('--scope <scope>', 'resource id the --role at the same position is assigned on (repeatable)', collect)
    .option('--create-namespace', 'create the namespace when it does not exist')
    .option('--override', 'repoint a ServiceAccount already annotated with another client id')
    .option('--issuer <url>', 'offline (no --cluster): the cluster\'s OIDC issuer URL, byte for byte (AKS issuers end in "/")')
    .option('--client-id <guid>', 'offline: the identity\'s client id (SA annotation)')
    .option('--tenant-id <guid>', 'offline: the identity\'s tenant id (SA annotation)')
    .option('--principal-id <guid>', 'offline: the identity\'s principal (object) id, for role assignments');
  return kubeOptions(cmd);
}

function gkeCommand(): Command {
  const cmd = serviceAccountOptions(new Command('gke').description('GKE workload identity: direct principal grants or a Google service account'))
    .option('--cluster <name>', 'GKE cluster to read the workload pool from, and to apply to')
    .option('--location <location>', 'the cluster\'s region or zone')
    .option('--project <id>', 'Google Cloud project id (default: $CLOUDSDK_CORE_PROJECT, else $GOOGLE_CLOUD_PROJECT)')
    .option('--mode <mode>', 'gsa | direct (default: gsa when --gsa is given, else direct)')
    .option('--gsa <email>', 'Google service account to impersonate: email, or a short name in --project')
    .option('--role <role>', 'IAM role granted on the project (repeatable)', collect)
    .option('--create-namespace', 'create the namespace when it does not exist')
    .option('--override', 'repoint a ServiceAccount already annotated with another Google service account')
    .option('--project-number <number>', 'offline (no --cluster): project number (direct mode names the principal by it)')
    .option('--workload-pool <pool>', 'offline: workload identity pool (default: PROJECT.svc.id.goog)')
    .option('--issuer <url>', 'offline: the cluster\'s OIDC issuer URL (optional; shown in the plan)');
  return kubeOptions(cmd);
}

export function setupCommand(io: IO, factory: Factory): Command {
  const setup = new Command('setup').description('set up workload identity for one Kubernetes ServiceAccount').addHelpText('after', examples(Object.values(EXAMPLES).flat()));
  for (const make of [eksCommand, aksCommand, gkeCommand]) {
    const cmd = runFlags(manifestOptions(make()), { out: true });
    const provider = cmd.name() as Provider;
    cmd.addHelpText('after', examples(EXAMPLES[provider]));
    cmd.action(async (raw: RawOptions) => runSetup(provider, raw, io, factory));
    setup.addCommand(cmd);
  }
  return setup;
}

export async function runSetup(provider: Provider, raw: RawOptions, io: IO, factory: Factory): Promise<void> {
  const run = runOptions(raw);
  if (run.out !== undefined) checkOutDir(run.out, Object.values(TEMPLATE_FILES));
  if (provider === 'eks' && raw.cluster !== undefined) return runEksSetup(raw, run, io, factory);
  if (provider === 'aks' && raw.cluster !== undefined) return runAksSetup(raw, run, io, factory);
  if (provider === 'gke' && raw.cluster !== undefined) return runGkeSetup(raw, run, io, factory);
  if (!run.dryRun) {
    throw new UsageError('WID_E_APPLY_UNAVAILABLE', 'applying needs the cluster lookup: pass --cluster NAME to read the cluster and apply; without it wid can only plan (--dry-run)', {
      flag: '--cluster',
      hint: 'add --dry-run to print the plan and manifests without changing anything',
    });
  }
  const req = await buildRequest(provider, io, raw);
  const templates = loadTemplates(provider, run.templates);
  emitOffline(planFor(req, templates, run.dryRun), req, run, io);
}

async function runEksSetup(raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<void> {
  // Templates are read before any cloud call, so a bad one fails first.
  const templates = loadTemplates('eks', run.templates);
  const { req, ctx } = await eksLive(raw, io, factory, { kube: run.out === undefined });
  // The annotation must name the role's real ARN, which includes its path when it has one.
  const existing = await ctx.aws.getRole(req.roleName);
  if (existing) req.existingRoleArn = existing.arn;
  const manifests = renderManifests(eks, req, templates);
  ctx.serviceAccount = () => manifests[0]!;
  ctx.createNamespace = raw.createNamespace === true;
  ctx.override = raw.override === true;
  await runLive(
    {
      mode: 'setup',
      provider: 'eks',
      binding: eks.binding(req),
      phases: eks.phases.map(live),
      req,
      ctx,
      manifests: () => manifests,
      afterApply: [
        ...(run.out === undefined ? [] : [`The cluster was left alone (--out): apply the manifests with kubectl apply -f ${run.out}`]),
        `Pods already running as ${req.namespace}/${req.serviceAccount} keep their old credentials until restarted, e.g. kubectl rollout restart deployment -n ${req.namespace} NAME.`,
        'IAM changes can take a few seconds to reach STS.',
      ],
    },
    run,
    io,
  );
}

async function runAksSetup(raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<void> {
  const templates = loadTemplates('aks', run.templates);
  const { req, ctx } = await aksLive(raw, io, factory, { kube: run.out === undefined });
  // Rendered on demand: a new identity's client id is known only once it has been created.
  const manifests = (): KubeObject[] => renderManifests(aks, req, templates);
  ctx.serviceAccount = () => manifests()[0]!;
  ctx.createNamespace = raw.createNamespace === true;
  ctx.override = raw.override === true;
  await runLive(
    {
      mode: 'setup',
      provider: 'aks',
      binding: aks.binding(req),
      phases: aks.phases.map(live),
      req,
      ctx,
      manifests,
      afterApply: [
        ...(run.out === undefined ? [] : [`The cluster was left alone (--out): apply the manifests with kubectl apply -f ${run.out}`]),
        'A new federated credential can take a minute or two to reach Entra ID (token requests fail with AADSTS70021 until then); role assignments up to ten minutes.',
        `Pods already running as ${req.namespace}/${req.serviceAccount} keep their old identity until restarted, e.g. kubectl rollout restart deployment -n ${req.namespace} NAME; pods need the label azure.workload.identity/use: "true".`,
      ],
    },
    run,
    io,
  );
}

async function runGkeSetup(raw: RawOptions, run: RunOptions, io: IO, factory: Factory): Promise<void> {
  const templates = loadTemplates('gke', run.templates);
  const { req, ctx, warnings } = await gkeLive(raw, io, factory, { kube: run.out === undefined });
  const manifests = renderManifests(gke, req, templates);
  ctx.serviceAccount = () => manifests[0]!;
  ctx.createNamespace = raw.createNamespace === true;
  ctx.override = raw.override === true;
  const notes =
    req.mode === 'direct' && req.projectNumber !== undefined
      ? [`to grant roles on other resources (buckets, secrets), name the principal ${ksaPrincipal({ ...req, projectNumber: req.projectNumber })}`]
      : [];
  await runLive(
    {
      mode: 'setup',
      provider: 'gke',
      binding: gke.binding(req),
      phases: gke.phases.map(live),
      req,
      ctx,
      manifests: () => manifests,
      warnings,
      notes,
      afterApply: [
        ...(run.out === undefined ? [] : [`The cluster was left alone (--out): apply the manifests with kubectl apply -f ${run.out}`]),
        'IAM changes typically take about two minutes to take effect, sometimes seven or more.',
        `Pods already running as ${req.namespace}/${req.serviceAccount} may keep a cached token until restarted.`,
      ],
    },
    run,
    io,
  );
}

/** A phase with its live half; every phase of a provider that supports live runs has one. */
function live<R, C>(phase: { name: string; plan?: LivePhase<R, C>['plan']; apply?: LivePhase<R, C>['apply'] }): LivePhase<R, C> {
  if (!phase.plan || !phase.apply) throw new Error(`phase ${phase.name} has no live implementation`);
  return { name: phase.name, plan: phase.plan, apply: phase.apply };
}

function planFor(req: SetupRequest, templates: Templates, dryRun: boolean): Plan {
  switch (req.provider) {
    case 'eks':
      return offlinePlan(eks, req, templates, dryRun);
    case 'aks':
      return offlinePlan(aks, req, templates, dryRun);
    case 'gke':
      return offlinePlan(gke, req, templates, dryRun);
  }
}

function offlinePlan<R extends SetupRequest, C>(provider: ProviderModule<R, C>, req: R, templates: Templates, dryRun: boolean): Plan {
  return buildOfflinePlan(provider, req, renderManifests(provider, req, templates), dryRun);
}

function emitOffline(plan: Plan, req: SetupRequest, run: RunOptions, io: IO): void {
  const style = styleFor(io, run.color);
  if (run.output === 'text') io.err(planText(plan, style));
  for (const w of warnings(req)) io.err(`${style.warn('warning:')} ${w}\n`);
  if (req.provider === 'gke' && req.mode === 'direct' && req.projectNumber !== undefined) {
    io.err(`note: to grant roles on other resources (buckets, secrets), name the principal ${ksaPrincipal({ ...req, projectNumber: req.projectNumber })}\n`);
  }
  if (run.out !== undefined) {
    const [sa, pod] = plan.manifests;
    const written = writeFilesAtomically(run.out, { [TEMPLATE_FILES.serviceAccount]: toYaml(sa), [TEMPLATE_FILES.pod]: toYaml(pod) });
    io.err(`wrote ${written.join(', ')}\n`);
  }
  if (run.output === 'json') io.out(planJson(plan));
  else if (run.output === 'yaml') io.out(planYaml(plan));
  else if (run.out === undefined) io.out(manifestsYaml(plan.manifests));
  io.err('Dry run: nothing was changed in any cloud or cluster.\n');
}

/** Things that are valid but often wrong; said on stderr, never failing. */
function warnings(req: SetupRequest): string[] {
  const w: string[] = [];
  if (req.provider === 'eks' && req.issuer.endsWith('/')) {
    w.push(`the issuer ${req.issuer} ends in "/"; EKS issuers do not, and IAM only trusts a token whose iss matches exactly`);
  }
  if (req.provider === 'aks' && !req.issuer.endsWith('/') && /\.oic\.prod-aks\.azure\.com\//.test(req.issuer)) {
    w.push(`the issuer ${req.issuer} has no trailing "/"; AKS issuers end in "/", and Entra compares it with the token's iss byte for byte`);
  }
  if ((req.provider === 'gke' && req.roles.length === 0) || (req.provider === 'eks' && req.policyArns.length === 0) || (req.provider === 'aks' && req.roleAssignments.length === 0)) {
    const flag = req.provider === 'eks' ? '--attach-policy-arn' : '--role';
    w.push(`no ${flag} given: the identity is trusted but has no permissions yet`);
  }
  return w;
}
