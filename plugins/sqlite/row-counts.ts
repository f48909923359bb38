// Row counts of a database by URL: the same counting as inside a snapshot.
import type { DriverContext, RowCountOptions, TableCounts } from '../../src/plugin-api.js';
import { sqliteOptions } from './options.js';
import { countTables } from './counts.js';
import { openExisting } from './open.js';
import { parseSqliteUrl } from './url.js';

/** Counts rows and checksums of every table of the database at `url`, in one read transaction. */
export async function rowCountsAt(ctx: DriverContext, { url, db: source }: RowCountOptions): Promise<TableCounts> {
  const db = openExisting(parseSqliteUrl(url), { readonly: true });
  try {
    return await countTables(db, sqliteOptions(source).checksums, ctx.signal);
  } finally {
    db.close();
  }
}
