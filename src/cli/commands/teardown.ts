/**
 * `wid teardown <eks>`: undoes a setup for one ServiceAccount, leaving everything that is not wid's
 * (other trust statements, other annotations, roles and providers others use) as it is.
 */
import { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { Factory } from '../factory.js';
import { fleetOptions, runFleetCommand } from './apply.js';
import { awsOptions, collect, examples, kubeOptions, runFlags, serviceAccountOptions } from '../flags.js';
import type { IO } from '../io.js';
import type { RawOptions } from '../request.js';

/** The run loads only when a teardown runs (so `wid --help` does not pay for it). */
const runTeardown = async (provider: 'eks' | 'aks' | 'gke', raw: RawOptions, io: IO, factory: Factory): Promise<void> =>
  (await import('./teardown-run.js')).runTeardown(provider, raw, io, factory);

export function teardownCommand(io: IO, factory: Factory): Command {
  // With -f FILE (and no provider), every binding of an `wid apply -f` file.
  const teardown = runFlags(fleetOptions(new Command('teardown').description('undo a setup for one Kubernetes ServiceAccount, or (-f) for every binding of a file'), false), { out: false })
    // Its own flags count only before a provider: `wid teardown eks --dry-run` is the eks command's flag.
    .enablePositionalOptions()
    // A word that is not a provider lands here: say so, as Commander does for unknown commands.
    .usage('<eks|aks|gke> [options]  |  wid teardown -f FILE [options]')
    .argument('[rest...]')
    .allowUnknownOption()
    .action((rest: string[], raw: RawOptions & { file?: string; concurrency?: string }) => {
      const word = rest.find((a) => !a.startsWith('-'));
      if (word !== undefined) throw new UsageError('WID_E_INPUT_INVALID', `unknown command '${word}' for wid teardown (expected eks, aks or gke)`, { hint: 'run wid teardown --help' });
      const flag = rest.find((a) => a.startsWith('-'));
      if (flag !== undefined) throw new UsageError('WID_E_INPUT_INVALID', `unknown option '${flag}'`, { hint: 'run wid teardown --help' });
      if (raw.file === undefined) {
        throw new UsageError('WID_E_INPUT_MISSING', 'teardown needs a provider (wid teardown eks|aks|gke …) or a bindings file (wid teardown -f FILE)', { hint: 'run wid teardown --help' });
      }
      return runFleetCommand('teardown', raw, io, factory);
    });
  const eksCmd = serviceAccountOptions(new Command('eks').description('remove the IRSA trust, the role wid created, and wid\'s ServiceAccount annotations'))
    .requiredOption('--cluster <name>', 'EKS cluster the setup was made for')
    .option('--role-name <name>', 'IAM role name (default: wid-<namespace>-<sa>)')
    .option('--audience <aud>', 'token audience used at setup', 'sts.amazonaws.com')
    .option('--delete-oidc-provider', 'also delete the IAM OIDC provider when wid created it and no role trusts it');
  runFlags(kubeOptions(awsOptions(eksCmd)), { out: false })
    .addHelpText(
      'after',
      examples([
        'wid teardown eks --cluster prod --region us-west-2 --sa s3-access-sa --dry-run',
        'wid teardown eks --cluster prod --region us-west-2 --sa s3-access-sa -n apps --delete-oidc-provider --yes',
      ]),
    )
    .action((raw: RawOptions) => runTeardown('eks', raw, io, factory));
  teardown.addCommand(eksCmd);

  const aksCmd = serviceAccountOptions(new Command('aks').description('remove the federated credential, wid\'s role assignments and ServiceAccount annotations'))
    .requiredOption('--cluster <name>', 'AKS cluster the setup was made for')
    .option('-g, --resource-group <name>', 'resource group of the cluster')
    .option('--subscription <id>', 'subscription id (default: $AZURE_SUBSCRIPTION_ID)')
    .option('--identity <name>', 'user-assigned managed identity name')
    .option('--identity-resource-group <name>', 'resource group of the managed identity (default: the cluster\'s)')
    .option('--role <role>', 'only remove wid\'s assignment of this role (repeatable, pairs with --scope; default: every assignment wid made)', collect)
    .option('--scope <scope>', 'the scope of the --role at the same position (repeatable)', collect)
    .option('--delete-identity', 'also delete the managed identity when wid created it and it holds no other credential');
  runFlags(kubeOptions(aksCmd), { out: false })
    .addHelpText('after', examples(['wid teardown aks --cluster prod -g my-rg --sa my-sa --identity my-id --dry-run', 'wid teardown aks --cluster prod -g my-rg --sa my-sa --identity my-id --delete-identity --yes']))
    .action((raw: RawOptions) => runTeardown('aks', raw, io, factory));
  teardown.addCommand(aksCmd);

  const gkeCmd = serviceAccountOptions(new Command('gke').description('remove the members wid granted, its ServiceAccount annotation, and (optionally) the Google service account'))
    .requiredOption('--cluster <name>', 'GKE cluster the setup was made for')
    .option('--location <location>', 'the cluster\'s region or zone')
    .option('--project <id>', 'Google Cloud project id (default: $CLOUDSDK_CORE_PROJECT, else $GOOGLE_CLOUD_PROJECT)')
    .option('--mode <mode>', 'gsa | direct, as at setup (default: gsa when --gsa is given, else direct)')
    .option('--gsa <email>', 'the Google service account of a gsa-mode setup')
    .option('--role <role>', 'only remove these project roles (repeatable; default: every role the member holds when it is wid\'s alone)', collect)
    .option('--delete-gsa', 'also delete the Google service account when wid created it and nothing else is bound to it');
  runFlags(kubeOptions(gkeCmd), { out: false })
    .addHelpText(
      'after',
      examples([
        'wid teardown gke --cluster prod --location europe-west1 --project my-project --sa my-ksa --dry-run',
        'wid teardown gke --cluster prod --location europe-west1 --project my-project --sa my-ksa --gsa my-gsa --delete-gsa --yes',
      ]),
    )
    .action((raw: RawOptions) => runTeardown('gke', raw, io, factory));
  teardown.addCommand(gkeCmd);
  return teardown;
}
