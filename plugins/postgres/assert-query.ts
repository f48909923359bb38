// Data assertions: a read-only query's rows as the server's text, inside a snapshot or on a restored copy.
import type { Client } from 'pg';
import { assertionError, type DatabaseConfig, type DriverContext } from '../../src/plugin-api.js';
import { PINNED_SETTINGS, withClient } from './connect.js';
import { connectionAt } from './url.js';

/** Runs `sql` on `c` (in a read-only transaction it opened) for at most `timeoutMs`; the rows as JSON of text values. */
export async function assertionRows(c: Client, sql: string, timeoutMs: number, database: string): Promise<string> {
  try {
    await c.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
    // Every value as the server writes it: the same text from the source and from the restored copy.
    const r = await c.query<unknown[]>({ text: sql, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
    return JSON.stringify(r.rows);
  } catch (err) {
    throw assertionError(database, sql, err, (err as { code?: string }).code === '57014', timeoutMs);
  }
}

/** `DatabaseDriver.query`: the assertion on the database at `url` (a restored copy), in a read-only snapshot. */
export async function queryAt(
  _ctx: DriverContext,
  { url, db, sql, timeoutMs }: { url: string; db: DatabaseConfig; sql: string; timeoutMs: number },
): Promise<string> {
  const conn = connectionAt(url, db);
  return withClient(conn, `database "${conn.database}"`, async (c) => {
    for (const s of PINNED_SETTINGS) await c.query(s);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await assertionRows(c, sql, timeoutMs, db.name);
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
    }
  });
}
