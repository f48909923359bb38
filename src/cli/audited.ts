// Every run, restore, verify and prune leaves one line in the audit trail, however it ends.
import path from 'node:path';
import { ExitCode, isUserError } from '../errors.js';
import { appendAudit, type AuditCommand, type AuditEntry } from '../ops/audit.js';
import type { AuditNote, Io } from './commands.js';

/** The state folder: --state-dir, else $DBFLOW_STATE_DIR, else `.dbflow` in the working directory. */
export const defaultStateDir = (): string => process.env.DBFLOW_STATE_DIR || '.dbflow';

function outcomeOf(code: number): AuditEntry['outcome'] {
  if (code === ExitCode.ok) return 'success';
  if (code === ExitCode.interrupted) return 'cancelled';
  if (code === ExitCode.usage || code === ExitCode.locked) return 'refused';
  return 'failed';
}

/** Runs a command's body and appends its audit line (a failure to append is a warning, never the command's failure). */
export async function audited(
  io: Io,
  what: { command: AuditCommand; target: string; stateDir: string | undefined; dryRun?: boolean },
  body: (note: AuditNote) => Promise<number>,
): Promise<number> {
  const started = Date.now();
  const noted: { run_id?: string; pipeline?: string } = {};
  const write = (code: number, error?: string): void => {
    try {
      appendAudit(path.resolve(what.stateDir ?? defaultStateDir()), {
        command: what.command,
        target: what.target,
        outcome: outcomeOf(code),
        exit_code: code,
        duration_ms: Date.now() - started,
        ...noted,
        ...(error !== undefined && { error }),
        ...(what.dryRun && { dry_run: true }),
      });
    } catch (err) {
      io.err(`dbflow: warning: the audit trail could not be written: ${(err as Error).message}`);
    }
  };
  try {
    const code = await body((fields) => Object.assign(noted, fields));
    write(code);
    return code;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]!.replace(/^dbflow: /, '') : String(err);
    write(isUserError(err) ? err.exitCode : ExitCode.internal, message);
    throw err;
  }
}
