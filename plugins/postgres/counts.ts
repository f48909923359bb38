// Row counts and order-independent content checksums, read inside a snapshot.
import type { Client } from 'pg';
import type { TableCounts } from '../../src/index.js';
import type { PgTable } from './scope.js';

/** The checksum: the sum, as a numeric, of a 64-bit hash of each row's text (order-independent, duplicates counted). */
const ROW_HASH = 'hashtextextended(ROW(dbflow_row.*)::text, 0)';

/** Name of the checksum scheme, recorded with the snapshot's position. */
export const CHECKSUM_SCHEME = `sum(${ROW_HASH.replace('ROW(dbflow_row.*)', 'row')})`;

/**
 * Counts every table (and checksums it) on `clients`, whose transactions hold the same snapshot
 * and the pinned session settings; the clients share the tables between them.
 */
export async function countTables(
  clients: readonly Client[],
  tables: readonly PgTable[],
  checksums: boolean,
  signal: AbortSignal,
): Promise<TableCounts> {
  const out: TableCounts = {};
  // Biggest first would balance better; the catalog's order is stable and good enough for a few workers.
  let next = 0;
  const worker = async (client: Client): Promise<void> => {
    while (next < tables.length) {
      signal.throwIfAborted();
      const t = tables[next++]!;
      out[t.key] = await countTable(client, t, checksums);
    }
  };
  await Promise.all(clients.map(worker));
  return Object.fromEntries(tables.map((t) => [t.key, out[t.key]!]));
}

async function countTable(client: Client, t: PgTable, checksums: boolean): Promise<TableCounts[string]> {
  const sum = checksums ? `, coalesce(sum(${ROW_HASH}::numeric), 0)::text AS sum` : '';
  const r = await client.query<{ rows: string; sum?: string }>(`SELECT count(*)::text AS rows${sum} FROM ONLY ${t.sql} AS dbflow_row`);
  const row = r.rows[0]!;
  return { rows: Number(row.rows), ...(checksums && { checksum: `${row.sum}` }) };
}
