// Row counts and content checksums of every user table, read in one transaction.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { TableCounts } from '../../src/index.js';
import { RowEncoder, Sum64 } from './row-checksum.js';

// Rows read between two turns of the event loop, so a large count never stalls other steps.
const ROWS_PER_TURN = 20_000;

/**
 * Counts the rows of every table except SQLite's own (`sqlite_%`) and virtual tables (their
 * shadow tables hold the data and are counted), inside one read transaction, so the counts are
 * of one state of the database.
 * The checksum of a table is the sum modulo 2^64 of the first 8 bytes (big-endian) of
 * sha256(canonical encoding of the row, see RowEncoder) over all its rows, as 16 hex digits:
 * it does not depend on row order or page layout, only on the values.
 */
export async function countTables(db: Database.Database, signal?: AbortSignal): Promise<TableCounts> {
  const tables = db
    .prepare(
      `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name`,
    )
    .pluck()
    .all() as string[];
  const counts: TableCounts = {};
  const ownTransaction = !db.inTransaction;
  if (ownTransaction) db.exec('BEGIN');
  try {
    // The first read pins the state that every later read of this transaction sees.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    for (const table of tables) counts[table] = await countTable(db, table, signal);
  } finally {
    if (ownTransaction && db.inTransaction) db.exec('COMMIT');
  }
  return counts;
}

async function countTable(db: Database.Database, table: string, signal?: AbortSignal): Promise<{ rows: number; checksum: string }> {
  const rows = db
    .prepare(`SELECT * FROM "${table.replace(/"/g, '""')}"`)
    .raw(true)
    .safeIntegers(true)
    .iterate() as IterableIterator<unknown[]>;
  const encoder = new RowEncoder();
  const sum = new Sum64();
  let n = 0;
  try {
    for (const row of rows) {
      sum.add(encoder.hashRow(row));
      if (++n % ROWS_PER_TURN === 0) {
        await yieldToLoop();
        signal?.throwIfAborted();
      }
    }
  } finally {
    rows.return?.();
  }
  return { rows: n, checksum: sum.hex() };
}
