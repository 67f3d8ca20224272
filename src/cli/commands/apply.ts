/**
 * `wid apply -f FILE`: set up many bindings at once (and `wid teardown -f FILE`, which shares the
 * flags and the runner). The runner loads only when one runs.
 */
import { Command, Option } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { Provider } from '../../core/plan.js';
import type { Factory } from '../factory.js';
import { examples } from '../flags.js';
import type { IO } from '../io.js';
import type { RawOptions } from '../request.js';

const DEFAULT_CONCURRENCY = 10;
const MAX_CONCURRENCY = 100;

/** The fleet flags: the file, the bound on concurrent bindings, and the run flags setup has. */
export function fleetOptions(cmd: Command, required: boolean): Command {
  const file = new Option('-f, --file <file>', 'YAML file of bindings: `bindings:` entries with `provider` and setup\'s flags as fields');
  if (required) file.makeOptionMandatory();
  return cmd.addOption(file).option('--concurrency <n>', `bindings worked on at once, 1-${MAX_CONCURRENCY}`, String(DEFAULT_CONCURRENCY));
}

function concurrency(raw: { concurrency?: string }): number {
  const v = raw.concurrency ?? String(DEFAULT_CONCURRENCY);
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_CONCURRENCY) {
    throw new UsageError('WID_E_INPUT_INVALID', `--concurrency ${JSON.stringify(v)} is invalid: expected a whole number from 1 to ${MAX_CONCURRENCY}`, { flag: '--concurrency' });
  }
  return Number(v);
}

export async function runFleetCommand(mode: 'setup' | 'teardown', raw: RawOptions & { file?: string; concurrency?: string }, io: IO, factory: Factory): Promise<void> {
  // Loaded on use, like setup's and teardown's runs: `wid --help` and the other commands do not pay for them.
  const [{ runOptions }, { setupCommand }, { teardownCommand }, { runFleet }] = await Promise.all([import('../request.js'), import('./setup.js'), import('./teardown.js'), import('../fleet.js')]);
  const run = runOptions(raw);
  const n = concurrency(raw);
  const parents = [setupCommand(io, factory), teardownCommand(io, factory)];
  const commands = (p: Provider): Command[] => parents.map((parent) => parent.commands.find((c) => c.name() === p)!);
  await runFleet({ mode, file: raw.file!, concurrency: n, run, commands }, io, factory);
}

export function applyCommand(io: IO, factory: Factory): Command {
  const cmd = fleetOptions(new Command('apply').description('set up many ServiceAccount bindings from a file: one plan, confirmed once, applied concurrently'), true)
    .option('--dry-run', 'show the combined plan from real reads; change nothing')
    .option('--yes', 'apply without asking (required off a terminal)')
    .addOption(new Option('-o, --output <format>', 'what stdout carries: text (nothing), json or yaml (the FleetPlan)').default('text'))
    .option('--no-color', 'no colour in messages')
    .addHelpText(
      'after',
      `\nThe file:\n  defaults:              # optional, merged into every binding\n    namespace: apps\n  bindings:\n    - provider: eks\n      cluster: prod\n      sa: s3-reader\n      attach-policy-arn: [arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess]\n    - provider: gke\n      cluster: prod\n      location: europe-west1\n      project: my-project\n      sa: reporter\n      gsa: reporter\n      role: [roles/bigquery.dataViewer]\n${examples(['wid apply -f bindings.yaml --dry-run', 'wid apply -f bindings.yaml --yes -o json', 'wid teardown -f bindings.yaml --yes'])}`,
    )
    .action((raw: RawOptions & { file?: string; concurrency?: string }) => runFleetCommand('setup', raw, io, factory));
  return cmd;
}
