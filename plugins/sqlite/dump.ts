// The dump of a snapshot: the bytes of its staged database file.
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { DbflowError, type DatabaseConfig, type DriverSnapshot, type DumpStream } from '../../src/plugin-api.js';
import { isSqliteSnapshot } from './snapshot.js';

/** The format name of a dump: a plain SQLite 3 database file. */
export const SQLITE_FORMAT = 'sqlite3';

/** Streams the staged copy of a snapshot as a `sqlite3` database file. */
export async function dumpSnapshot(db: DatabaseConfig, snapshot: DriverSnapshot): Promise<DumpStream> {
  if (!isSqliteSnapshot(snapshot)) {
    throw new DbflowError(
      `database "${db.name}" uses the sqlite driver, but its snapshot was taken by the "${snapshot.info.driver}" driver; snapshot it with driver: sqlite.`,
    );
  }
  try {
    await access(snapshot.file);
  } catch {
    throw new DbflowError(
      `the snapshot of database "${db.name}" was already released; dump it in a step that depends on the snapshot step.`,
    );
  }
  const stream = createReadStream(snapshot.file, { highWaterMark: 1 << 20 });
  return { stream, format: SQLITE_FORMAT, extension: '.sqlite3' };
}
