// The tables a backup covers, and their row counts and content checksums, read inside a snapshot.
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { TableCounts } from '../../src/plugin-api.js';
import { rowHash, type MyChecksumScheme, type MyColumn } from './checksum.js';
import { ident } from './connect.js';

/** A table in scope. */
export interface MyTable {
  /** The table's name: its key in the manifest's counts (the database's name differs after a restore). */
  name: string;
  engine: string;
  /** Its columns in order, as the checksum reads them. */
  columns: MyColumn[];
}

/** Engines whose tables a consistent snapshot covers (MVCC); others are read as they are when the dump reaches them. */
const TRANSACTIONAL = new Set(['innodb', 'rocksdb']);

/** True when the table's engine is not covered by a transaction's consistent snapshot (MyISAM, Aria, MEMORY, …). */
export function isNonTransactional(t: MyTable): boolean {
  return !TRANSACTIONAL.has(t.engine.toLowerCase());
}

/** Base tables of `database` (views and sequences are not tables), without `exclude`, with how to checksum their columns. */
export async function tablesInScope(c: Connection, database: string, exclude: readonly string[] = []): Promise<MyTable[]> {
  const [tables] = await c.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS name, COALESCE(ENGINE, '') AS engine FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME`,
    [database],
  );
  const [columns] = await c.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS tbl, COLUMN_NAME AS col, DATA_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  );
  const byTable = new Map<string, MyColumn[]>();
  for (const { tbl, col, type, nullable } of columns as { tbl: string; col: string; type: string; nullable: string }[]) {
    byTable.set(tbl, [...(byTable.get(tbl) ?? []), { name: col, type, nullable: nullable !== 'NO' }]);
  }
  const skip = new Set(exclude);
  return (tables as { name: string; engine: string }[])
    .filter((t) => !skip.has(t.name))
    .map((t) => ({ name: t.name, engine: t.engine, columns: byTable.get(t.name) ?? [] }));
}

/**
 * Counts every table in the transaction open on `c`, and with a checksum `scheme` sums a hash of each
 * row (see the schemes). CHECKSUM TABLE is not used: it hashes the stored row format, which a restore
 * into another row format, engine or server version changes, and for MyISAM with CHECKSUM=1 it
 * returns the live checksum, outside any snapshot.
 */
export async function countTables(
  c: Connection,
  database: string,
  tables: readonly MyTable[],
  scheme: MyChecksumScheme | undefined,
  signal: AbortSignal,
): Promise<TableCounts> {
  const out: TableCounts = {};
  for (const t of tables) {
    signal.throwIfAborted();
    const from = `${ident(database)}.${ident(t.name)}`;
    const sum = scheme && t.columns.length ? `, CAST(COALESCE(SUM(${rowHash(t.columns, scheme)}), 0) AS CHAR) AS sum` : '';
    const [rows] = await c.query<RowDataPacket[]>(`SELECT COUNT(*) AS n${sum} FROM ${from}`);
    const row = rows[0] as { n: string | number; sum?: string };
    out[t.name] = { rows: Number(row.n), ...(scheme && { checksum: String(row.sum ?? '0') }) };
  }
  return out;
}

/**
 * The definition of every table of `database` (columns with their types, engine), as one string per
 * table. DDL is not transactional in MySQL/MariaDB: a table altered after the snapshot is dumped with
 * its new definition, so a backup compares this before and after its dump.
 */
export async function schemaFingerprint(c: Connection, database: string): Promise<Map<string, string>> {
  const [rows] = await c.query<RowDataPacket[]>(
    `SELECT t.TABLE_NAME AS name, CONCAT_WS(',', t.ENGINE, t.CREATE_TIME,
            GROUP_CONCAT(CONCAT(c.COLUMN_NAME, ' ', c.COLUMN_TYPE) ORDER BY c.ORDINAL_POSITION SEPARATOR ',')) AS def
       FROM information_schema.TABLES t LEFT JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
      WHERE t.TABLE_SCHEMA = ? AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') GROUP BY t.TABLE_NAME, t.ENGINE, t.CREATE_TIME`,
    [database],
  );
  return new Map((rows as { name: string; def: string | null }[]).map((r) => [r.name, r.def ?? '']));
}

/** The tables whose definition differs between two fingerprints (changed, created or dropped). */
export function changedTables(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}
