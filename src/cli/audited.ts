// Every run, restore, verify and prune leaves one line in the audit trail, however it ends.
import path from 'node:path';
import { ExitCode, isUserError } from '../errors.js';
import { Readable } from 'node:stream';
import {
  appendAudit,
  auditObjectUrl,
  withoutCredentials,
  type AuditCommand,
  type AuditEntry,
  type AuditNote,
  type AuditRecord,
} from '../ops/audit.js';
import { defaultStateDir } from '../engine/state-dir.js';
import { MANIFEST_NAME } from '../repo/manifest.js';
import { commandRegistry } from './command-registry.js';
import type { Io } from './io.js';

export { defaultStateDir } from '../engine/state-dir.js';

function outcomeOf(code: number): AuditEntry['outcome'] {
  if (code === ExitCode.ok) return 'success';
  if (code === ExitCode.interrupted) return 'cancelled';
  if (code === ExitCode.usage || code === ExitCode.locked) return 'refused';
  return 'failed';
}

/** What a command is, for its audit line. */
export interface Audited {
  command: AuditCommand;
  target: string;
  stateDir: string | undefined;
  dryRun?: boolean;
  /** The repository the command works on, when known before it runs (a run notes its own). */
  repository?: string;
  /** Also store the record in the repository (`--audit-repository`, or DBFLOW_AUDIT_REPOSITORY=1). */
  toRepository?: boolean;
  /** The command's --plugin values: a plugin's storage may hold the repository. */
  plugins?: string[];
}

/** True when DBFLOW_AUDIT_REPOSITORY asks for audit records in the repository too. */
export const auditRepositoryFromEnv = (): boolean => /^(1|true|yes)$/i.test(process.env.DBFLOW_AUDIT_REPOSITORY ?? '');

/** The repository of a backup folder URL (or of its manifest.json's URL): the folder above it. */
export function repositoryOfBackup(url: string): string {
  const folder = url.replace(new RegExp(`/${MANIFEST_NAME}$`), '').replace(/\/+$/, '');
  return folder.slice(0, folder.lastIndexOf('/'));
}

/**
 * Runs a command's body and appends its audit line, then, when asked, stores the same record in the
 * repository; failing to do either is a warning, never the command's failure.
 */
export async function audited(io: Io, what: Audited, body: (note: AuditNote) => Promise<number>): Promise<number> {
  const started = Date.now();
  const noted: Parameters<AuditNote>[0] = what.repository !== undefined ? { repository: what.repository } : {};
  const write = async (code: number, error?: string): Promise<void> => {
    let record: AuditRecord;
    try {
      record = appendAudit(path.resolve(what.stateDir ?? defaultStateDir()), {
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
      return;
    }
    if (what.toRepository) await storeInRepository(record, io, what.plugins);
  };
  try {
    const code = await body((fields) => Object.assign(noted, fields));
    await write(code);
    return code;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    await write(isUserError(err) ? err.exitCode : ExitCode.internal, message);
    throw err;
  }
}

async function storeInRepository(record: AuditRecord, io: Io, plugins?: string[]): Promise<void> {
  const warn = (why: string): void => io.err(`dbflow: warning: the audit record was not stored in the repository: ${why}`);
  if (!record.repository) return warn('this command names no repository (a pipeline without an upload step).');
  const url = auditObjectUrl(record.repository, record);
  try {
    const registry = await commandRegistry(plugins);
    const storage = registry.storageFor(url);
    await storage.put(url, Readable.from([Buffer.from(`${JSON.stringify(record, null, 2)}\n`)]), {
      signal: AbortSignal.timeout(STORE_TIMEOUT_MS),
    });
  } catch (err) {
    warn(withoutCredentials((err as Error).message));
  }
}

const STORE_TIMEOUT_MS = 60_000;
