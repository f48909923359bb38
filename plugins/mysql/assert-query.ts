// Data assertions: a read-only query's rows as the server's text, inside a snapshot or on a restored copy.
import type { Connection } from 'mysql2/promise';
import { assertionError, type DatabaseConfig, type DriverContext } from '../../src/plugin-api.js';
import type { ServerKind } from './barrier.js';
import { serverKind } from './barrier.js';
import { PINNED_SETTINGS, withConnection } from './connect.js';
import { connectionAt } from './url.js';

/** Runs `sql` on `c` (in a read-only transaction) for at most `timeoutMs`; the rows as JSON of text values. */
export async function assertionRows(c: Connection, kind: ServerKind, sql: string, timeoutMs: number, database: string): Promise<string> {
  // MariaDB bounds any statement; MySQL only a SELECT, with its optimizer hint.
  const bounded =
    kind.flavor === 'mariadb'
      ? `SET STATEMENT max_statement_time = ${(Math.max(1, timeoutMs) / 1000).toFixed(3)} FOR ${sql}`
      : sql.replace(/^\s*select\b/i, `SELECT /*+ MAX_EXECUTION_TIME(${Math.max(1, Math.round(timeoutMs))}) */`);
  try {
    // Every value as the server writes it: the same text from the source and from the restored copy.
    const [rows] = await c.query({ sql: bounded, rowsAsArray: true, typeCast: (field) => field.string() });
    return JSON.stringify(rows);
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    throw assertionError(database, sql, err, errno === 1969 || errno === 3024, timeoutMs);
  }
}

/** `DatabaseDriver.query`: the assertion on the database at `url` (a restored copy), in a read-only snapshot. */
export async function queryAt(
  _ctx: DriverContext,
  { url, db, sql, timeoutMs }: { url: string; db: DatabaseConfig; sql: string; timeoutMs: number },
): Promise<string> {
  const conn = connectionAt(url, db);
  return withConnection(conn, `database "${conn.database}"`, async (c) => {
    const kind = await serverKind(c);
    for (const s of PINNED_SETTINGS) await c.query(s);
    await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      return await assertionRows(c, kind, sql, timeoutMs, db.name);
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
    }
  });
}
