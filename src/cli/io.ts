/**
 * The process boundary: streams, TTY facts, environment and prompts. Commands get an IO and never
 * touch `process` themselves, so tests run them in-process with string buffers.
 */
export interface PromptSpec {
  message: string;
  /** Returns an error message for a bad answer, or undefined when it is valid. */
  validate(answer: string): string | undefined;
}

export interface IO {
  out(text: string): void;
  err(text: string): void;
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  env: Record<string, string | undefined>;
  /** Asks for a value on the terminal (stderr, so stdout stays clean for results). */
  prompt(spec: PromptSpec): Promise<string>;
  /** Asks a yes/no question on the terminal; the default answer is no. */
  confirm(message: string): Promise<boolean>;
  /** Reads stdin to its end; absent where there is no stdin to read. */
  readStdin?(): Promise<string>;
}

export function processIO(): IO {
  // A reader that closes early (`wid … | head`) is not an error: stop quietly, as other CLIs do.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    stdinIsTTY: process.stdin.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
    prompt: async (spec) => {
      // Loaded only when a prompt is needed: it is the slowest of the CLI's own imports.
      const { input } = await import('@inquirer/prompts');
      return input(
        { message: spec.message, validate: (a: string) => spec.validate(a) ?? true },
        { input: process.stdin, output: process.stderr },
      );
    },
    confirm: async (message) => {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: false }, { input: process.stdin, output: process.stderr });
    },
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** Prompts only when a person is at a terminal on both ends. */
export function isInteractive(io: IO): boolean {
  return io.stdinIsTTY && io.stderrIsTTY;
}
