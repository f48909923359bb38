// Row counts and order-independent content checksums, read inside a snapshot.
import type { Client } from 'pg';
import type { TableCounts } from '../../src/plugin-api.js';
import { rowHashes, type PgChecksumScheme } from './checksum.js';
import type { PgTable } from './scope.js';

/**
 * Counts every table (and, with a checksum `scheme`, checksums it) on `clients`, whose transactions
 * hold the same snapshot and the pinned session settings; the clients share the tables between them.
 */
export async function countTables(
  clients: readonly Client[],
  tables: readonly PgTable[],
  scheme: PgChecksumScheme | undefined,
  signal: AbortSignal,
): Promise<TableCounts> {
  const hashes = scheme && tables.length ? await rowHashes(clients[0]!, tables, scheme) : new Map<string, string>();
  const out: TableCounts = {};
  // Biggest first would balance better; the catalog's order is stable and good enough for a few workers.
  let next = 0;
  const worker = async (client: Client): Promise<void> => {
    while (next < tables.length) {
      signal.throwIfAborted();
      const t = tables[next++]!;
      out[t.key] = await countTable(client, t, scheme && hashes.get(t.key));
    }
  };
  await Promise.all(clients.map(worker));
  return Object.fromEntries(tables.map((t) => [t.key, out[t.key]!]));
}

// sum(int8) adds in 128 bits and gives the same numeric as adding each hash as a numeric, at a fraction of the cost.
async function countTable(client: Client, t: PgTable, rowHash: string | undefined): Promise<TableCounts[string]> {
  const sum = rowHash ? `, coalesce(sum(${rowHash}), 0)::text AS sum` : '';
  const r = await client.query<{ rows: string; sum?: string }>(`SELECT count(*)::text AS rows${sum} FROM ONLY ${t.sql} AS dbflow_row`);
  const row = r.rows[0]!;
  return { rows: Number(row.rows), ...(rowHash !== undefined && { checksum: `${row.sum}` }) };
}
