/**
 * `wid teardown <eks>`: undoes a setup for one ServiceAccount, leaving everything that is not wid's
 * (other trust statements, other annotations, roles and providers others use) as it is.
 */
import { Command } from 'commander';
import type { Factory } from '../factory.js';
import { awsOptions, collect, examples, kubeOptions, runFlags, serviceAccountOptions } from '../flags.js';
import type { IO } from '../io.js';
import type { RawOptions } from '../request.js';

/** What a teardown runs with, loaded only when one runs (so `wid --help` does not pay for it). */
async function load() {
  const [request, live, naming, aksP, eksP, gkeP, aksL, eksL, gkeL] = await Promise.all([
    import('../request.js'),
    import('../live.js'),
    import('../../core/naming.js'),
    import('../../providers/aks/phases.js'),
    import('../../providers/eks/phases.js'),
    import('../../providers/gke/phases.js'),
    import('./aks-live.js'),
    import('./eks-live.js'),
    import('./gke-live.js'),
  ]);
  return {
    runOptions: request.runOptions,
    runLive: live.runLive,
    subject: naming.subject,
    aks: aksP.aks,
    aksTeardownPhases: aksP.aksTeardownPhases,
    eksTeardownPhases: eksP.eksTeardownPhases,
    observeRole: eksP.observeRole,
    gke: gkeP.gke,
    gkeTeardownPhases: gkeP.gkeTeardownPhases,
    aksLive: aksL.aksLive,
    eksLive: eksL.eksLive,
    gkeLive: gkeL.gkeLive,
  };
}

export function teardownCommand(io: IO, factory: Factory): Command {
  const teardown = new Command('teardown').description('undo a setup for one Kubernetes ServiceAccount');
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
    .action(async (raw: RawOptions) => {
      const { runOptions, runLive, subject, eksLive, eksTeardownPhases, observeRole } = await load();
      const run = runOptions(raw);
      const { req, ctx } = await eksLive(raw, io, factory, { kube: true });
      ctx.deleteOidcProvider = raw.deleteOidcProvider === true;
      const existing = await observeRole(req, ctx);
      if (existing) req.existingRoleArn = existing.arn;
      await runLive(
        {
          mode: 'teardown',
          provider: 'eks',
          binding: { issuer: req.issuer, namespace: req.namespace, serviceAccount: req.serviceAccount, subject: subject(req.namespace, req.serviceAccount), audience: req.audience },
          phases: eksTeardownPhases,
          req,
          ctx,
          manifests: () => [],
          afterApply: [`Pods already running as ${req.namespace}/${req.serviceAccount} keep their credentials until restarted.`],
        },
        run,
        io,
      );
    });
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
    .action(async (raw: RawOptions) => {
      const { runOptions, runLive, aks, aksLive, aksTeardownPhases } = await load();
      const run = runOptions(raw);
      const { req, ctx } = await aksLive(raw, io, factory, { kube: true });
      ctx.deleteIdentity = raw.deleteIdentity === true;
      await runLive(
        {
          mode: 'teardown',
          provider: 'aks',
          binding: aks.binding(req),
          phases: aksTeardownPhases,
          req,
          ctx,
          manifests: () => [],
          afterApply: [`Pods already running as ${req.namespace}/${req.serviceAccount} keep their tokens until they expire or the pods restart.`],
        },
        run,
        io,
      );
    });
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
    .action(async (raw: RawOptions) => {
      const { runOptions, runLive, gke, gkeLive, gkeTeardownPhases } = await load();
      const run = runOptions(raw);
      const { req, ctx } = await gkeLive(raw, io, factory, { kube: true });
      ctx.deleteGsa = raw.deleteGsa === true;
      await runLive(
        {
          mode: 'teardown',
          provider: 'gke',
          binding: gke.binding(req),
          phases: gkeTeardownPhases,
          req,
          ctx,
          manifests: () => [],
          afterApply: ['IAM changes typically take about two minutes to take effect.'],
        },
        run,
        io,
      );
    });
  teardown.addCommand(gkeCmd);
  return teardown;
}
