/**
 * Flag definitions shared by the commands, each defined once.
 */
import { Command, Option } from 'commander';

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The ServiceAccount flags, first in every command's help. */
export function serviceAccountOptions(cmd: Command): Command {
  return cmd.option('--sa <name>', 'Kubernetes ServiceAccount name').option('-n, --namespace <namespace>', 'Kubernetes namespace', 'default');
}

/** Where the cluster is: the kube context. */
export function kubeOptions(cmd: Command): Command {
  return cmd
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kube context (default: the current one)');
}

/** AWS credentials and region, as the aws CLI names them. */
export function awsOptions(cmd: Command): Command {
  return cmd
    .option('--region <region>', 'AWS region of the cluster (default: $AWS_REGION or the profile\'s)')
    .option('--profile <name>', 'AWS profile from ~/.aws/config (default: $AWS_PROFILE)');
}

/** How a run is carried out and shown, last in every command's help. */
export function runFlags(cmd: Command, opts: { out: boolean }): Command {
  cmd
    .option('--dry-run', 'show the plan from real reads; change nothing')
    .option('--yes', 'apply without asking (required off a terminal)')
    .addOption(new Option('-o, --output <format>', 'what stdout carries: text (manifests YAML), json or yaml (the Plan)').default('text'));
  if (opts.out) cmd.option('--out <dir>', 'write serviceaccount.yaml and pod.yaml to DIR instead (the cluster is left alone)');
  return cmd.option('--no-color', 'no colour in messages');
}

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((e) => `  $ ${e}`).join('\n')}\n`;
}
