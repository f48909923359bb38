// Row counts and checksums of a database (a restored scratch copy), read in one consistent snapshot.
import type { DatabaseConfig, DriverContext, TableCounts } from '../../src/index.js';
import { PINNED_SETTINGS, withConnection } from './connect.js';
import { countTables, tablesInScope } from './counts.js';
import { myOptions } from './options.js';
import { parseMyUrl } from './url.js';

/** Counts every table of the database at `url` the way the snapshot did, with `db`'s options. */
export async function rowCountsAt(ctx: DriverContext, url: string, db: DatabaseConfig): Promise<TableCounts> {
  const conn = parseMyUrl(url, db.password);
  const o = myOptions(db);
  return withConnection(conn, `database "${conn.database}"`, async (c) => {
    for (const s of PINNED_SETTINGS) await c.query(s);
    await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      return await countTables(c, conn.database, await tablesInScope(c, conn.database, o.excludeTables), o.checksums, ctx.signal);
    } finally {
      await c.query('COMMIT').catch(() => undefined);
    }
  });
}
