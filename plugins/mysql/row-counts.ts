// Row counts and checksums of a database (a restored scratch copy), read in one consistent snapshot.
import type { DriverContext, RowCountOptions, TableCounts } from '../../src/plugin-api.js';
import { serverKind } from './barrier.js';
import { recordedScheme, schemeFor } from './checksum.js';
import { PINNED_SETTINGS, withConnection } from './connect.js';
import { countTables, tablesInScope } from './counts.js';
import { myOptions } from './options.js';
import { connectionAt } from './url.js';

/**
 * Counts every table of the database at `url` the way the snapshot did, with `db`'s options: with
 * the `checksum` scheme (an older backup's), else the one a snapshot on this server uses.
 */
export async function rowCountsAt(ctx: DriverContext, { url, db, checksum }: RowCountOptions): Promise<TableCounts> {
  const conn = connectionAt(url, db);
  const options = myOptions(db);
  return withConnection(conn, `database "${conn.database}"`, async (c) => {
    const kind = await serverKind(c);
    const scheme = !options.checksums ? undefined : checksum !== undefined ? recordedScheme(checksum, kind, db.name) : schemeFor(kind);
    for (const s of PINNED_SETTINGS) await c.query(s);
    await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      return await countTables(c, conn.database, await tablesInScope(c, conn.database, options.excludeTables), scheme, ctx.signal);
    } finally {
      await c.query('COMMIT').catch(() => undefined);
    }
  });
}
