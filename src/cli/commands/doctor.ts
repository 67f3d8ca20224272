/**
 * `wid doctor [eks|aks|gke] --sa NAME`: checks the whole chain, from the ServiceAccount through a real
 * token to what the cloud trusts, and names the broken link and its fix. Exit 3 when a check fails.
 */
import { Command } from 'commander';
import { ChecksFailed, UsageError } from '../../core/errors.js';
import type { Provider } from '../../core/plan.js';
import * as v from '../../core/validate.js';
import { checkServiceAccount, metaOf } from '../../doctor/kube.js';
import { Checks, reportText, type DoctorReport } from '../../doctor/report.js';
import { CLIENT_ID_ANNOTATION } from '../../providers/aks/build.js';
import { ROLE_ARN_ANNOTATION } from '../../providers/eks/build.js';
import { GSA_ANNOTATION } from '../../providers/gke/build.js';
import { azureEndpoints, gcpEndpoints, type Factory } from '../factory.js';
import { awsOptions, examples, kubeOptions, serviceAccountOptions } from '../flags.js';
import type { IO } from '../io.js';
import { timeout, retryDelay, type RawOptions, kubeTarget } from '../request.js';
import { styleFor } from '../style.js';

interface DoctorOptions extends RawOptions {
  output: string;
}

export function doctorCommand(io: IO, factory: Factory): Command {
  const cmd = serviceAccountOptions(
    new Command('doctor').description('check that workload identity works for a ServiceAccount, and name the broken link').argument('[provider]', 'eks | aks | gke (default: from the ServiceAccount\'s annotations)'),
  )
    .option('-g, --resource-group <name>', 'aks: resource group of the managed identity (with --identity)')
    .option('--subscription <id>', 'aks: subscription to look for the identity in (default: $AZURE_SUBSCRIPTION_ID)')
    .option('--identity <name>', 'aks: the managed identity (default: the one whose client id the ServiceAccount names)')
    .option('--cluster <name>', 'gke: the cluster')
    .option('--location <location>', 'gke: the cluster\'s region or zone')
    .option('--project <id>', 'gke: the project (default: $CLOUDSDK_CORE_PROJECT, else $GOOGLE_CLOUD_PROJECT)')
    .option('-o, --output <format>', 'text or json', 'text')
    .option('--no-color', 'no colour');
  return kubeOptions(awsOptions(cmd))
    .addHelpText(
      'after',
      examples([
        'wid doctor --sa s3-access-sa -n apps',
        'wid doctor aks --sa my-sa -n apps --subscription SUB',
        'wid doctor gke --sa my-ksa -n apps --cluster prod --location europe-west1 --project my-project',
        'wid doctor --sa my-sa -o json | jq \'.checks[] | select(.status != "pass")\'',
      ]),
    )
    .action(async (provider: string | undefined, raw: DoctorOptions) => runDoctor(provider, raw, io, factory));
}

/** Which cloud the ServiceAccount is bound to, from its annotations. */
function detect(annotations: Record<string, string>): Provider | undefined {
  if (annotations[ROLE_ARN_ANNOTATION] !== undefined) return 'eks';
  if (annotations[CLIENT_ID_ANNOTATION] !== undefined) return 'aks';
  if (annotations[GSA_ANNOTATION] !== undefined) return 'gke';
  return undefined;
}

export async function runDoctor(providerArg: string | undefined, raw: DoctorOptions, io: IO, factory: Factory): Promise<void> {
  const output = v.oneOf('--output', raw.output, ['text', 'json'] as const);
  const given = providerArg === undefined ? undefined : v.oneOf('provider', providerArg, ['eks', 'aks', 'gke'] as const);
  const namespace = v.namespace('--namespace', raw.namespace);
  if (raw.sa === undefined) throw new UsageError('WID_E_INPUT_MISSING', 'missing required flag --sa (the ServiceAccount to check)', { flag: '--sa' });
  const name = v.serviceAccountName('--sa', raw.sa);
  if (raw.subscription !== undefined) v.guid('--subscription', raw.subscription);
  if (raw.identity !== undefined) v.identityName('--identity', raw.identity);
  if (raw.resourceGroup !== undefined) v.resourceGroup('--resource-group', raw.resourceGroup);
  if (raw.project !== undefined) v.gcpProjectId('--project', raw.project);
  if (raw.location !== undefined) v.gcpLocation('--location', raw.location);
  if (raw.region !== undefined) v.awsRegion('--region', raw.region);

  const kube = await factory.kube(kubeTarget(raw, io));
  const checks = new Checks();
  const sa = await checkServiceAccount(kube, namespace, name, checks);
  let provider: Provider | undefined = given;
  if (sa) {
    const detected = detect(metaOf(sa).annotations ?? {});
    provider ??= detected;
    if (!provider) {
      checks.fail('annotation', 'the ServiceAccount carries no workload identity annotation (eks.amazonaws.com/role-arn, azure.workload.identity/client-id, iam.gke.io/gcp-service-account)', {
        fix: `for GKE direct mode name the provider: wid doctor gke --sa ${name} -n ${namespace} --cluster CLUSTER --location LOCATION; otherwise run wid setup`,
      });
    }
  }
  if (sa && provider) {
    const env = io.env;
    switch (provider) {
      case 'eks': {
        const { doctorEks } = await import('../../providers/eks/doctor.js');
        const aws = await factory.aws({ ...timeout(io), ...(raw.region === undefined ? {} : { region: raw.region }), ...(raw.profile === undefined ? {} : { profile: raw.profile }) });
        await doctorEks(kube, aws, namespace, name, sa, checks);
        break;
      }
      case 'aks': {
        const { doctorAks } = await import('../../providers/aks/doctor.js');
        const subscription = raw.subscription ?? env.AZURE_SUBSCRIPTION_ID;
        if (subscription === undefined) throw new UsageError('WID_E_INPUT_MISSING', 'missing required flag --subscription (where the managed identity is), or set AZURE_SUBSCRIPTION_ID', { flag: '--subscription' });
        v.guid('--subscription', subscription);
        const azure = await factory.azure({
          ...timeout(io),
          subscription,
          ...azureEndpoints(env),
        });
        await doctorAks(kube, azure, namespace, name, sa, checks, { ...(raw.identity === undefined ? {} : { identity: raw.identity }), ...(raw.resourceGroup === undefined ? {} : { resourceGroup: raw.resourceGroup }) });
        break;
      }
      case 'gke': {
        const { doctorGke } = await import('../../providers/gke/doctor.js');
        const project = raw.project ?? env.CLOUDSDK_CORE_PROJECT ?? env.GOOGLE_CLOUD_PROJECT;
        for (const [flag, value] of [['--project', project], ['--cluster', raw.cluster], ['--location', raw.location]] as const) {
          if (value === undefined) throw new UsageError('WID_E_INPUT_MISSING', `missing required flag ${flag}: doctor gke reads the cluster's workload pool`, { flag });
        }
        const gcp = await factory.gcp({
          ...timeout(io),
          ...retryDelay(io),
          project: project!,
          endpoints: gcpEndpoints(env),
        });
        await doctorGke(kube, gcp, namespace, name, sa, checks, { project: project!, cluster: raw.cluster!, location: raw.location! });
        break;
      }
    }
  }
  const report: DoctorReport = { apiVersion: 'wid/v1', kind: 'Doctor', provider: provider ?? null, namespace, serviceAccount: name, ok: !checks.failed, checks: checks.list };
  if (output === 'json') io.out(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const style = styleFor(io, raw.color);
    io.out(reportText(report, (status, s) => (status === 'pass' ? style.action('create', s) : status === 'fail' ? style.error(s) : style.warn(s))));
  }
  if (checks.failed) throw new ChecksFailed(`${checks.list.filter((c) => c.status === 'fail').length} checks failed`);
}
