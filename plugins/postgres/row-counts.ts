// Row counts and checksums of a database (a restored scratch copy), read in one snapshot.
import type { DatabaseConfig, DriverContext, TableCounts } from '../../src/index.js';
import { withClient, PINNED_SETTINGS } from './connect.js';
import { countTables } from './counts.js';
import { pgOptions } from './options.js';
import { tablesInScope } from './scope.js';
import { parsePgUrl } from './url.js';

/** Counts every table in scope of the database at `url` the way the snapshot did, with `db`'s options. */
export async function rowCountsAt(ctx: DriverContext, url: string, db: DatabaseConfig): Promise<TableCounts> {
  const conn = parsePgUrl(url, db.password);
  const o = pgOptions(db);
  return withClient(conn, `database "${conn.database}"`, async (c) => {
    for (const s of PINNED_SETTINGS) await c.query(s);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await countTables([c], await tablesInScope(c, o), o.checksums, ctx.signal);
    } finally {
      await c.query('COMMIT').catch(() => undefined);
    }
  });
}
