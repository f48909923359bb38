// Failed programs (run through ctx.exec): what went wrong, and the messages every driver's tools share.
import { CancelledError, DbflowError } from '../errors.js';

/** What a program failed with, read from execa's error. */
export interface ToolFailure {
  /** It could not be started: not found, or not executable. */
  missing: boolean;
  cancelled: boolean;
  signal?: string;
  exitCode?: number;
  stderr: string;
  /** The most telling stderr line (the first that says "error", else the last), without the program's prefix. */
  complaint: string;
}

interface ExecaFailure {
  code?: string;
  exitCode?: number;
  signal?: string;
  stderr?: unknown;
  isCanceled?: boolean;
}

/** Reads execa's error of a failed `tool`. */
export function toolFailure(error: unknown, tool: string): ToolFailure {
  const e = (error ?? {}) as ExecaFailure;
  const stderr = typeof e.stderr === 'string' ? e.stderr : '';
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? '';
  const prefix = new RegExp(`^${tool.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (error: )?`);
  return {
    missing: e.code === 'ENOENT' || e.code === 'EACCES',
    cancelled: e.isCanceled === true,
    ...(e.signal && { signal: e.signal }),
    ...(e.exitCode !== undefined && { exitCode: e.exitCode }),
    stderr,
    complaint: line.replace(prefix, '').replace(/\s+/g, ' ').slice(0, 400),
  };
}

/** How a driver describes where its tool ran. */
export interface ToolSetting {
  /** What to install when the program is missing, e.g. `the PostgreSQL client tools (apt-get install postgresql-client)`. */
  install: string;
  /** `options.bin_dir`, when set. */
  binDir?: string | undefined;
  /** What the tool was doing, e.g. `dumping`. */
  doing: string;
  /** Where, e.g. ` (db:5432, database "app")`; empty for none. */
  server: string;
}

/** The message for what every tool can fail with: missing, cancelled, killed, a non-zero exit. */
export function toolFailureError(error: unknown, tool: string, f: ToolFailure, s: ToolSetting): Error {
  if (f.missing) {
    const place = s.binDir ? `in "${s.binDir}" (options.bin_dir)` : 'on PATH';
    return new DbflowError(`the "${tool}" program was not found ${place}; install ${s.install} or set "options.bin_dir" to their folder.`, {
      cause: error,
    });
  }
  if (f.cancelled) return new CancelledError(`${tool} was stopped because the step was cancelled.`);
  if (f.signal) {
    return new DbflowError(
      `${tool} was killed by ${f.signal} while ${s.doing}${s.server}; the dump is incomplete and nothing was published.`,
      {
        cause: error,
      },
    );
  }
  const how = f.exitCode !== undefined ? `exited with code ${f.exitCode}` : 'failed';
  return new DbflowError(`${tool} ${how} while ${s.doing}${s.server}${f.complaint ? `: ${f.complaint}` : ''}.`, { cause: error });
}
