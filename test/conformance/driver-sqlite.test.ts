// The sqlite driver on the driver conformance suite: a WAL database file per test, checksums on.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import sqlite from '../../plugins/sqlite/index.js';
import { describeDriver } from '../../src/testing/index.js';

const driver = sqlite.drivers!.find((d) => d.name === 'sqlite')!;

// Runs `sql` on the database file.
function exec(file: string, sql: string): void {
  const db = new Database(file);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

describeDriver('sqlite', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-conformance-sqlite-'));
  const file = path.join(dir, 'app.db');
  let n = 0;
  return {
    driver,
    database: { name: 'app', driver: 'sqlite', url: `sqlite:${file}`, options: { checksums: true } },
    seed: () =>
      Promise.resolve(
        exec(
          file,
          `PRAGMA journal_mode = WAL;
           CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL);
           CREATE TABLE "order items" (id INTEGER PRIMARY KEY, customer INTEGER, note TEXT, data BLOB);
           CREATE TABLE empty_table (id INTEGER PRIMARY KEY);
           WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 500)
             INSERT INTO customers (name, balance) SELECT 'customer ' || n || ' ☃', n * 1.5 FROM i;
           WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 2000)
             INSERT INTO "order items" (customer, note, data) SELECT 1 + n % 500, 'item ' || n, randomblob(64) FROM i;`,
        ),
      ),
    write: () =>
      Promise.resolve(
        exec(
          file,
          `INSERT INTO "order items" (customer, note) VALUES (1, 'written after the snapshot ${++n}'); DELETE FROM customers WHERE id = ${n};`,
        ),
      ),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});
