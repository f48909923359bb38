// Row counts (and, when asked, content checksums) of every user table, read in one transaction.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { TableCounts } from '../../src/plugin-api.js';
import { Fnv64Sum } from './row-checksum.js';

// Rows read between two turns of the event loop, so a large count never stalls other steps.
const ROWS_PER_TURN = 50_000;

/**
 * Counts the rows of every table except SQLite's own (`sqlite_%`) and virtual tables (their
 * shadow tables hold the data and are counted), inside one read transaction, so the counts are
 * of one state of the database.
 *
 * The checksum of a table: each row is written as the SQL literals of its stored columns in
 * declared order, as SQLite's quote() gives them (`42`, `0.5`, `'it''s'`, `X'00FF'`, `NULL`),
 * joined by `,`; the table's checksum is the sum modulo 2^64 of the FNV-1a 64 hashes of the
 * UTF-8 bytes of those texts, as 16 hex digits. It does not depend on row order or page layout,
 * only on the values (text after an embedded NUL character is not seen, as quote() stops there).
 * FNV-1a rather than a cryptographic hash: the checksum detects damage, not tampering, and
 * sha256 per row would double the time of counting a large database.
 */
export async function countTables(db: Database.Database, checksums: boolean, signal?: AbortSignal): Promise<TableCounts> {
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
    for (const table of tables) {
      counts[table] = checksums
        ? await countTable(db, table, signal)
        : {
            rows: Number(
              db
                .prepare(`SELECT count(*) FROM ${quoteIdent(table)}`)
                .pluck()
                .get(),
            ),
          };
    }
  } finally {
    if (ownTransaction && db.inTransaction) db.exec('COMMIT');
  }
  return counts;
}

async function countTable(db: Database.Database, table: string, signal?: AbortSignal): Promise<{ rows: number; checksum: string }> {
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(table) as string[];
  const text = columns.map((c) => `quote(${quoteIdent(c)})`).join(" || ',' || ");
  const rows = db
    .prepare(`SELECT ${text} FROM ${quoteIdent(table)}`)
    .pluck()
    .iterate() as IterableIterator<string>;
  const sum = new Fnv64Sum();
  let n = 0;
  try {
    for (const row of rows) {
      sum.add(row);
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

// An SQL identifier in double quotes.
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
