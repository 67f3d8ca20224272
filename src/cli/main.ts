/**
 * Entry point: builds the program, runs it, and maps every error to an exit code. This is the one
 * place that decides exit codes: 0 done, 1 failed at run time, 2 bad input or usage, 3 a check failed.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ChecksFailed, WidError, type ExitCode } from '../core/errors.js';
import { doctorCommand } from './commands/doctor.js';
import { applyCommand } from './commands/apply.js';
import { auditCommand } from './commands/audit.js';
import { setupCommand } from './commands/setup.js';
import { teardownCommand } from './commands/teardown.js';
import { tokenCommand } from './commands/token.js';
import { defaultFactory, type Factory } from './factory.js';
import { processIO, type IO } from './io.js';
import { styleFor } from './style.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function createProgram(io: IO, factory: Factory = defaultFactory): Command {
  const program = new Command('wid')
    .description('Set up Kubernetes workload identity end to end on EKS, AKS and GKE')
    .version(version(), '-V, --version')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => {} })
    .exitOverride()
    .showSuggestionAfterError(true)
    // A command's own flags count only before its subcommand (`wid teardown -f F` vs `wid teardown eks --yes`).
    .enablePositionalOptions()
    .addHelpText(
      'after',
      `\nExamples:\n  $ wid setup eks --sa s3-access-sa --issuer https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE --account-id 111122223333 --dry-run\n  $ wid setup --help\n`,
    );
  program.addCommand(setupCommand(io, factory));
  program.addCommand(applyCommand(io, factory));
  program.addCommand(teardownCommand(io, factory));
  program.addCommand(tokenCommand(io, factory));
  program.addCommand(auditCommand(io, factory));
  program.addCommand(doctorCommand(io, factory));
  // Commander copies these settings only to subcommands made with .command(); set them everywhere.
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: () => {} }).showSuggestionAfterError(true);
    cmd.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

export async function main(argv: string[], io: IO = processIO(), factory: Factory = defaultFactory): Promise<ExitCode> {
  const program = createProgram(io, factory);
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return 2;
    }
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    return report(e, io);
  }
}

function report(e: unknown, io: IO): ExitCode {
  const style = styleFor(io, true);
  if (e instanceof CommanderError) {
    // Help and version end with exit code 0; every other Commander error is a usage error.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    // A command that needs a subcommand was given none: Commander has printed its help to stderr.
    if (e.code === 'commander.help') return 2;
    io.err(`${style.error('error:')} ${e.message.replace(/^error: /, '')}\n`);
    io.err('hint: run the command with --help for its flags and examples\n');
    return 2;
  }
  if (e instanceof ChecksFailed) return e.exitCode;
  if (e instanceof WidError) {
    io.err(`${style.error('error:')} ${e.message}\n`);
    if (e.hint) io.err(`hint: ${e.hint}\n`);
    return e.exitCode;
  }
  // A prompt closed with Ctrl-C: nothing was changed.
  if (e instanceof Error && e.name === 'ExitPromptError') {
    io.err('cancelled\n');
    return 2;
  }
  io.err(`${style.error('internal error:')} ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  io.err('hint: this is a bug in wid; please report it with the command you ran\n');
  return 1;
}
