// A consistent copy of a live database through SQLite's online backup API, and its row counts.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DbflowError, type DriverContext, type DriverSnapshot, type SnapshotOptions } from '../../src/plugin-api.js';
import { countTables } from './counts.js';
import { asDatabaseError, openExisting } from './open.js';
import { sqliteOptions } from './options.js';
import { companionFiles, parseSqliteUrl, safeFileName } from './url.js';

/** A snapshot of the sqlite driver: a staged copy of the database that dumps stream. */
export interface SqliteSnapshot extends DriverSnapshot {
  /** The staged database file. */
  readonly file: string;
}

/** True for a snapshot this driver took. */
export function isSqliteSnapshot(s: DriverSnapshot): s is SqliteSnapshot {
  return s.info.driver === 'sqlite' && typeof (s as Partial<SqliteSnapshot>).file === 'string';
}

/**
 * Copies the live database into the step's tmpdir with the online backup API (WAL contents
 * included), holding one read transaction on the source so every page comes from one state,
 * then counts rows inside the copy.
 */
export async function takeSnapshot(ctx: DriverContext, { db }: SnapshotOptions): Promise<SqliteSnapshot> {
  const loc = parseSqliteUrl(db.url);
  const { busyTimeoutMs, backupStepPages } = sqliteOptions(db);
  const file = path.join(ctx.tmpdir, `${safeFileName(db.name)}-${randomBytes(4).toString('hex')}.snapshot.sqlite3`);
  const removeStaged = (): void => companionFiles(file).forEach((f) => rmSync(f, { force: true }));
  const source = openExisting(loc, { readonly: true, busyTimeoutMs });
  let takenAt: string;
  let journalMode: unknown;
  try {
    source.exec('BEGIN');
    // The first read pins the state the whole backup copies; writers go on meanwhile.
    source.prepare('SELECT count(*) FROM sqlite_master').get();
    takenAt = new Date().toISOString();
    journalMode = source.pragma('journal_mode', { simple: true });
    await source.backup(file, {
      progress: () => {
        ctx.signal.throwIfAborted();
        return backupStepPages;
      },
    });
    source.exec('COMMIT');
  } catch (err) {
    removeStaged();
    throw ctx.signal.aborted ? err : asDatabaseError(err, loc, 'snapshot');
  } finally {
    source.close();
  }
  try {
    // A self-contained file: a restore must not need a -wal next to it.
    const staged = new Database(file, { fileMustExist: true });
    try {
      staged.pragma('journal_mode = DELETE');
    } finally {
      staged.close();
    }
    const copy = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const position = {
        page_count: copy.pragma('page_count', { simple: true }),
        page_size: copy.pragma('page_size', { simple: true }),
        freelist_count: copy.pragma('freelist_count', { simple: true }),
        schema_version: copy.pragma('schema_version', { simple: true }),
        user_version: copy.pragma('user_version', { simple: true }),
        source_journal_mode: journalMode,
      };
      const serverVersion = String(copy.prepare('SELECT sqlite_version()').pluck().get());
      const tables = await countTables(copy, sqliteOptions(db).checksums, ctx.signal);
      let released = false;
      return {
        file,
        info: { driver: 'sqlite', serverVersion, position, tables, takenAt },
        release: () => {
          if (!released) removeStaged();
          released = true;
          return Promise.resolve();
        },
      };
    } finally {
      copy.close();
    }
  } catch (err) {
    removeStaged();
    if (err instanceof DbflowError || ctx.signal.aborted) throw err;
    throw new DbflowError(`the staged copy of database "${db.name}" (${db.url}) cannot be read: ${(err as Error).message}.`, {
      cause: err,
    });
  }
}
