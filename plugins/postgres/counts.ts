// Row counts and order-independent content checksums, read inside a snapshot.
import type { Client } from 'pg';
import type { TableCounts } from '../../src/index.js';
import type { PgTable } from './scope.js';

/** Name of the checksum scheme, recorded with every checksum. */
export const CHECKSUM_SCHEME = 'sum64(md5(row::text))';

/**
 * Counts every table (and sums the first 64 bits of md5 of each row's text, as a numeric:
 * order-independent, duplicates counted) on `client`, whose transaction holds the snapshot.
 * `clients` beyond the first share the work; each must hold the same snapshot.
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
  const sum = checksums
    ? `, coalesce(sum(('x' || substr(md5(ROW(dbflow_row.*)::text), 1, 16))::bit(64)::bigint::numeric), 0)::text AS sum`
    : '';
  const r = await client.query<{ rows: string; sum?: string }>(`SELECT count(*)::text AS rows${sum} FROM ONLY ${t.sql} AS dbflow_row`);
  const row = r.rows[0]!;
  return { rows: Number(row.rows), ...(checksums && { checksum: `${row.sum}` }) };
}
