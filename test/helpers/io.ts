import type { IO, PromptSpec } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

export interface TestIO extends IO {
  stdout: string;
  stderr: string;
  prompts: PromptSpec[];
}

/** String-buffer IO. `answers` feed prompts in order; tty marks all three streams as terminals; `stdin` is what readStdin returns. */
export function testIO(opts: { tty?: boolean; answers?: string[]; confirms?: boolean[]; env?: Record<string, string>; stdin?: string } = {}): TestIO {
  const answers = [...(opts.answers ?? [])];
  const confirms = [...(opts.confirms ?? [])];
  const io: TestIO = {
    stdout: '',
    stderr: '',
    prompts: [],
    out: (t) => void (io.stdout += t),
    err: (t) => void (io.stderr += t),
    stdinIsTTY: opts.tty === true,
    stdoutIsTTY: opts.tty === true,
    stderrIsTTY: opts.tty === true,
    env: opts.env ?? {},
    prompt: async (spec) => {
      io.prompts.push(spec);
      const a = answers.shift();
      if (a === undefined) throw new Error(`unexpected prompt: ${spec.message}`);
      const problem = spec.validate(a);
      if (problem !== undefined) throw new Error(`prompt answer ${a} rejected: ${problem}`);
      return a;
    },
    confirm: async (message) => {
      io.prompts.push({ message, validate: () => undefined });
      const c = confirms.shift();
      if (c === undefined) throw new Error(`unexpected confirmation: ${message}`);
      return c;
    },
    ...(opts.stdin === undefined ? {} : { readStdin: async () => opts.stdin as string }),
  };
  return io;
}

/** Runs wid in-process. */
export async function run(args: string[], opts: Parameters<typeof testIO>[0] = {}): Promise<{ code: number; stdout: string; stderr: string; io: TestIO }> {
  const io = testIO(opts);
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr, io };
}

export const EKS_ISSUER = 'https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE';
export const AKS_ISSUER = 'https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/3a5f4c8e-1b2d-4e6f-9a8b-7c6d5e4f3a2b/';
export const SUB = '22222222-2222-2222-2222-222222222222';
export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const CLIENT = '33333333-3333-3333-3333-333333333333';
export const EKS_BASE = ['setup', 'eks', '--sa', 's3-access-sa', '--issuer', EKS_ISSUER, '--account-id', '111122223333', '--dry-run'];
export const AKS_BASE = ['setup', 'aks', '--sa', 'my-sa', '--issuer', AKS_ISSUER, '--subscription', SUB, '-g', 'my-rg', '--identity', 'my-id', '--client-id', CLIENT, '--dry-run'];
export const GKE_BASE = ['setup', 'gke', '--sa', 'my-ksa', '--project', 'my-project', '--dry-run'];
