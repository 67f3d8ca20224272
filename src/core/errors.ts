/**
 * Typed errors. Each carries a stable code, a message naming the input or resource, an optional hint
 * (the next thing to run), and the exit code the CLI maps it to. The core never exits; src/cli/main.ts
 * is the one place that turns these into process exit codes.
 */
export type ExitCode = 0 | 1 | 2 | 3;

export class WidError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, opts: { hint?: string; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** Bad input or usage: exit 2, and nothing has been changed. */
export class UsageError extends WidError {
  /** The flag (e.g. `--account-id`) or file the error is about, when there is one. */
  readonly flag: string | undefined;

  constructor(code: string, message: string, opts: { flag?: string; hint?: string; cause?: unknown } = {}) {
    super(code, message, { ...opts, exitCode: 2 });
    this.flag = opts.flag;
  }
}

/** Something failed at run time (filesystem, cloud, cluster): exit 1. */
export class RuntimeError extends WidError {
  constructor(code: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, message, { ...opts, exitCode: 1 });
  }
}

/**
 * A cloud or cluster API refused or failed a call: exit 1. Keeps the service's own error code and
 * text, and says which call failed so the user can tell which permission or resource is at fault.
 */
export class CloudError extends WidError {
  readonly service: string;
  readonly operation: string;
  readonly cloudCode: string;
  readonly status: number | undefined;

  constructor(
    service: string,
    operation: string,
    cloudCode: string,
    cloudMessage: string,
    opts: { status?: number; hint?: string; message?: string; cause?: unknown } = {},
  ) {
    super(`WID_E_CLOUD_${cloudCode.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`, opts.message ?? `${operation} failed: ${cloudCode}: ${cloudMessage}`, {
      exitCode: 1,
      ...(opts.hint === undefined ? {} : { hint: opts.hint }),
      ...(opts.cause === undefined ? {} : { cause: opts.cause }),
    });
    this.service = service;
    this.operation = operation;
    this.cloudCode = cloudCode;
    this.status = opts.status;
  }
}

/** One or more checks failed (doctor, token inspect, audit): exit 3. The report has already said which. */
export class ChecksFailed extends WidError {
  constructor(message: string) {
    super('WID_E_CHECKS_FAILED', message, { exitCode: 3 });
  }
}
