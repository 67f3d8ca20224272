/**
 * `wid setup <eks|aks|gke>`: the command and its flags. The run itself is in setup-run.ts, loaded on
 * use, so `wid --help` does not pay for it.
 */
import { Command } from 'commander';
import type { Provider } from '../../core/plan.js';
import type { Factory } from '../factory.js';
import { awsOptions, collect, examples, kubeOptions, runFlags, serviceAccountOptions } from '../flags.js';
import type { IO } from '../io.js';
import type { RawOptions } from '../request.js';

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
    // The work (and the modules it needs: YAML, templates, providers) loads only when a setup runs.
    cmd.action(async (raw: RawOptions) => (await import('./setup-run.js')).runSetup(provider, raw, io, factory));
    setup.addCommand(cmd);
  }
  return setup;
}

