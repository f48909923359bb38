// Row counts and checksums of a database (a restored scratch copy), read in one snapshot.
import type { DriverContext, RowCountOptions, TableCounts } from '../../src/plugin-api.js';
import { recordedScheme, schemeFor } from './checksum.js';
import { withClient, PINNED_SETTINGS } from './connect.js';
import { countTables } from './counts.js';
import { pgOptions } from './options.js';
import { tablesInScope } from './scope.js';
import { connectionAt } from './url.js';

/**
 * Counts every table in scope of the database at `url` the way the snapshot did, with `db`'s options:
 * with the `checksum` scheme (an older backup's), else the one a snapshot on this server uses.
 */
export async function rowCountsAt(ctx: DriverContext, { url, db, checksum }: RowCountOptions): Promise<TableCounts> {
  const conn = connectionAt(url, db);
  const options = pgOptions(db);
  return withClient(conn, `database "${conn.database}"`, async (c) => {
    for (const s of PINNED_SETTINGS) await c.query(s);
    const version = Number((await c.query<{ n: string }>(`SELECT current_setting('server_version_num') AS n`)).rows[0]!.n);
    const scheme = !options.checksums
      ? undefined
      : checksum !== undefined
        ? recordedScheme(checksum, version, db.name)
        : schemeFor(version);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await countTables([c], await tablesInScope(c, options), scheme, ctx.signal);
    } finally {
      await c.query('COMMIT').catch(() => undefined);
    }
  });
}
