// Every error class and code of dbflow, in one place.

/** Where in a pipeline file something was written (1-based line and column). */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

/** One problem found in a pipeline, with the place it points at. */
export interface SpecProblem {
  pos: SourcePos;
  message: string;
}

/** Exit codes of the CLI. */
export const ExitCode = { ok: 0, stepFailed: 1, usage: 2, interrupted: 130, internal: 70, locked: 75, unchecked: 3 } as const;

/** The exit code of a run that ended with `status`. */
export function runExitCode(status: 'success' | 'failed' | 'cancelled'): number {
  return status === 'success' ? ExitCode.ok : status === 'cancelled' ? ExitCode.interrupted : ExitCode.stepFailed;
}

/**
 * What the CLI prints for a user error: a pipeline's rendered problems (file:line:col, the line, a caret) above
 * the message, which is prefixed `dbflow: ` here, where it is printed, and nowhere else.
 */
export function userErrorText(err: DbflowError): string {
  const line = errorLine(err);
  return 'rendered' in err && typeof err.rendered === 'string' ? `${err.rendered}\n\n${line}` : line;
}

/** `dbflow: <message>`: an error's message as the CLI prints it (a plugin's older dbflow copy may have prefixed it already). */
export function errorLine(err: { message: string }): string {
  return `dbflow: ${err.message.replace(PREFIX, '')}`;
}

const PREFIX = /^dbflow: /;

// The brand every DbflowError carries: its class and the classes above it, by name. A plugin that bundles
// or installs its own copy of dbflow throws errors of other classes; the brand says what they are.
const KINDS = Symbol.for('dbflow.error');

/** Base of every error that a user can act on: it is printed without a stack. */
export class DbflowError extends Error {
  readonly exitCode: number = ExitCode.stepFailed;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.replace(PREFIX, ''), options);
    this.name = new.target.name;
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c))
      kinds.push((c as { name: string }).name);
    Object.defineProperty(this, KINDS, { value: Object.freeze(kinds) });
  }
}

/**
 * True when `err` is a dbflow error of `kind` (or a subclass of it): an instance, or an error branded so
 * by another copy of dbflow (a plugin's bundled or installed one), recognised by the brand, not instanceof.
 */
export function isErrorKind<T extends DbflowError>(err: unknown, kind: abstract new (...args: never[]) => T): err is T {
  if (err instanceof kind) return true;
  const kinds = (err as { [KINDS]?: unknown } | null | undefined)?.[KINDS];
  return Array.isArray(kinds) && kinds.includes(kind.name);
}

/** A pipeline that cannot run: every problem found in one pass, each with its file:line:col. */
export class SpecError extends DbflowError {
  override readonly exitCode = ExitCode.usage;
  constructor(
    readonly problems: SpecProblem[],
    readonly rendered: string,
  ) {
    super(`${problems.length} ${problems.length === 1 ? 'problem' : 'problems'} in the pipeline; nothing was run.`);
  }
}

/** A wrong command line: unknown option, missing file, bad value. */
export class UsageError extends DbflowError {
  override readonly exitCode = ExitCode.usage;
}

/** A plugin that does not keep the plugin contract (no schema, duplicate name, bad module). */
export class PluginError extends DbflowError {
  override readonly exitCode = ExitCode.usage;
}

/** A run that was interrupted by SIGINT/SIGTERM or cancelled through its signal. */
export class CancelledError extends DbflowError {
  override readonly exitCode = ExitCode.interrupted;
  constructor(message = 'run interrupted') {
    super(message);
  }
}

/** A step that ran past its timeout. */
export class TimeoutError extends DbflowError {
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${formatMs(ms)}`);
  }
}

/** Data that does not match what was recorded: a checksum, a size, a row count. */
export class IntegrityError extends DbflowError {}

/** Another run of the same pipeline and repository holds the lock (exit code 75, EX_TEMPFAIL: try again later). */
export class LockedError extends DbflowError {
  override readonly exitCode = ExitCode.locked;
}

/** A run whose fleet lease was taken over (it stopped renewing it): it must not publish. */
export class FencedError extends DbflowError {}

/** A stored backup that cannot be found or read. */
export class RepositoryError extends DbflowError {}

/** A decryption key that is missing or does not fit: the data could not be checked, which says nothing about it. */
export class KeyError extends DbflowError {
  constructor(
    message: string,
    /** Which key: the passphrase, or a recipient's private key. */
    readonly key: 'passphrase' | 'private_key',
    readonly problem: 'missing' | 'wrong',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The KeyError behind `err` (itself or a cause), recognised by name across module copies. */
export function keyErrorIn(err: unknown): KeyError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) if (e.name === 'KeyError') return e as KeyError;
  return undefined;
}

/** A check that could not run (no key, a wrong key, a missing program): exit code 3, distinct from 1 (damaged). */
export class UncheckedError extends DbflowError {
  override readonly exitCode = ExitCode.unchecked;
}

/** Internal: a fleet job delivered again whose run already happened; `result` is what that run recorded. */
export class AlreadyRanError extends Error {
  constructor(readonly result: { run_id: string; worker: string }) {
    super(`already ran as run ${result.run_id} on worker ${result.worker}`);
  }
}

/** Internal: the first failure of a unit (a task or a stream chain), with the member where it started. */
export class ChainFailure extends Error {
  constructor(
    readonly at: string,
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

/** A run that failed: carries the failed steps; exit code 1. */
export class RunFailedError extends DbflowError {
  constructor(readonly failed: string[]) {
    super(`run failed: ${failed.map((s) => `"${s}"`).join(', ')} failed`);
  }
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** True when the error is one a user can act on (printed without a stack), whichever copy of dbflow made it. */
export function isUserError(err: unknown): err is DbflowError {
  return isErrorKind(err, DbflowError) && typeof err.exitCode === 'number';
}
