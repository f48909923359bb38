// The audit trail: one JSON line per run, restore, verify and prune in <state dir>/audit.jsonl — who, where, when, what, how it ended.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withoutCredentials } from '../engine/url-credentials.js';
import { dbflowVersion } from '../engine/versions.js';
import { DbflowError } from '../errors.js';
import { AUDIT_FOLDER } from '../repo/repository.js';

export { withoutCredentials };

export type AuditCommand = 'run' | 'restore' | 'verify' | 'prune';

/** What a command learns as it works that its audit line should carry. */
export type AuditNote = (fields: Partial<Pick<AuditEntry, 'run_id' | 'pipeline' | 'repository'>>) => void;

/** What one command did; who, where and when are added by appendAudit. */
export interface AuditEntry {
  command: AuditCommand;
  /** The pipeline file, backup URL or repository URL the command worked on (credentials stripped). */
  target: string;
  outcome: 'success' | 'failed' | 'cancelled' | 'refused';
  exit_code: number;
  duration_ms: number;
  run_id?: string;
  pipeline?: string;
  error?: string;
  dry_run?: boolean;
  /** The repository the command worked on (a run: where its uploads go). */
  repository?: string;
}

/** One line of audit.jsonl: the entry with who, where and when. */
export interface AuditRecord extends AuditEntry {
  time: string;
  user: string;
  uid: number;
  host: string;
  pid: number;
  dbflow: string;
}

/** The audit trail's file name in the state folder. */
export const AUDIT_FILE = 'audit.jsonl';

/** Append one line to <stateDir>/audit.jsonl (created 0600) and return it; throws a DbflowError when it cannot be written. */
export function appendAudit(stateDir: string, entry: AuditEntry): AuditRecord {
  const clean = Object.fromEntries(
    Object.entries(entry).map(([k, v]) => [k, typeof v === 'string' ? withoutCredentials(v) : v]),
  ) as unknown as AuditEntry;
  const record: AuditRecord = {
    time: new Date().toISOString(),
    ...currentUser(),
    host: os.hostname(),
    pid: process.pid,
    dbflow: dbflowVersion(),
    ...clean,
  };
  const file = path.join(stateDir, AUDIT_FILE);
  try {
    mkdirSync(stateDir, { recursive: true });
    // One write of one whole line to a file opened for appending: lines of concurrent commands never interleave.
    appendFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  } catch (err) {
    throw new DbflowError(`cannot write the audit trail "${file}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, {
      cause: err,
    });
  }
  return record;
}

/** Where an audit record goes in a repository: one object per command, since object stores cannot append. */
export function auditObjectUrl(repository: string, r: AuditRecord): string {
  const stamp = r.time.replace(/[-:]/g, '').replace('.', '');
  const host = r.host.replace(/[^A-Za-z0-9.-]/g, '_');
  return `${repository.replace(/\/+$/, '')}/${AUDIT_FOLDER}/${stamp}-${r.command}-${host}-${r.pid}.json`;
}

/** Every record of <stateDir>/audit.jsonl, oldest first; a line that is not JSON is skipped. */
export function readAudit(stateDir: string): AuditRecord[] {
  const file = path.join(stateDir, AUDIT_FILE);
  if (!existsSync(file)) return [];
  const out: AuditRecord[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as AuditRecord);
    } catch {
      // a line cut short (disk full, a crash): skip it, keep the rest
    }
  }
  return out;
}

/** Who this process runs as: the OS user name, or the uid alone when it has no passwd entry. */
export function currentUser(): { user: string; uid: number } {
  const uid = process.getuid?.() ?? -1;
  try {
    const info = os.userInfo();
    return { user: info.username, uid: info.uid };
  } catch {
    return { user: String(uid), uid }; // no passwd entry (a container's arbitrary uid)
  }
}
