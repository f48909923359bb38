// Opening database files with clear errors for a missing file or one that is not a database.
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DbflowError, IntegrityError } from '../../src/plugin-api.js';
import type { SqliteLocation } from './url.js';

/** How long a connection waits for a lock held by another writer, unless the database's options say. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** What opening a database needs. */
export interface OpenOptions {
  /** Refuse writes through this connection. */
  readonly?: boolean;
  busyTimeoutMs?: number;
}

/** Open an existing database file; never creates one. */
export function openExisting(loc: SqliteLocation, options: OpenOptions = {}): Database.Database {
  let isFile: boolean;
  try {
    isFile = statSync(loc.file).isFile();
  } catch {
    throw new DbflowError(
      `database file "${loc.written}" does not exist (${loc.url}); check the database's url, or create it first (e.g. with the sqlite-seed step).`,
    );
  }
  if (!isFile) throw new DbflowError(`"${loc.written}" (${loc.url}) is not a file; point the sqlite URL at a database file.`);
  try {
    // Not SQLite's read-only mode: that connection could not remove the -wal and -shm files it
    // leaves behind; query_only refuses writes all the same.
    const db = new Database(loc.file, { fileMustExist: true, timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
    if (options.readonly) db.pragma('query_only = ON');
    // Opening is lazy: reading the schema is what finds a file that is not a database.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  } catch (err) {
    throw asDatabaseError(err, loc);
  }
}

/** SQLite result codes that mean the bytes are not a healthy database. */
export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(CORRUPT|NOTADB)/.test(code);
}

/** Turn an SQLite error about a file into one that names the file and suggests a fix. */
export function asDatabaseError(err: unknown, loc: SqliteLocation, action = 'open'): Error {
  if (err instanceof DbflowError) return err;
  const reason = (err as Error).message;
  if (isCorruption(err)) {
    return new IntegrityError(`"${loc.written}" (${loc.url}) is not a healthy SQLite database: ${reason}.`, { cause: err });
  }
  return new DbflowError(`cannot ${action} SQLite database "${loc.written}" (${loc.url}): ${reason}.`, { cause: err });
}
