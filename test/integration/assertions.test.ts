// Data assertions: read-only queries run inside the snapshot and again on the restored copy, on PostgreSQL and MariaDB.
// Equal results (and met conditions) verify the backup; a result that differs on the restored copy fails the run
// naming the query and both results, and nothing is published; a query over its timeout is named too.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { MY_URL, requireMyBackupTools, scratchDatabase as scratchMyDatabase, withConnection } from '../helpers/mysql.js';
import { PG_URL, requireBackupTools, scratchDatabase } from '../helpers/postgres.js';
import { tmpDir } from '../helpers/tmp.js';

const PASSPHRASE = 'correct horse battery staple';

// A backup of database `app` with its assertions (a YAML list), restore-tested and compared.
function pipeline(driver: string, url: string, asserts: string): string {
  return `version: 1
name: asserted
secrets:
  passphrase: { env: TEST_PASSPHRASE }
databases:
  app:
    driver: ${driver}
    url: "${url}"
    assert:
${asserts}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: encrypt, uses: encrypt, input: dump, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.pgp" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, target: scratch, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

const HOLDING = `      - { name: payments total, query: "SELECT sum(amount), count(*) FROM payments" }
      - { name: orders without a customer, query: "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL", expect: "= 0" }
      - { query: "SELECT count(*) FROM customers", expect: ">= 3" }`;

const SETUP = [
  'CREATE TABLE customers (id int PRIMARY KEY, name varchar(40) NOT NULL)',
  'CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL)',
  'CREATE TABLE payments (id int PRIMARY KEY, amount decimal(12,2) NOT NULL)',
  "INSERT INTO customers VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger')",
  'INSERT INTO orders VALUES (1, 1), (2, 2), (3, 2)',
  'INSERT INTO payments VALUES (1, 10.50), (2, 99.99), (3, 0.01)',
];

async function backups(dir: string, driver: string, url: string, asserts: string) {
  writeFileSync(path.join(dir, 'p.yaml'), pipeline(driver, url, asserts));
  return dbflow(['run', 'p.yaml'], { cwd: dir, env: { TEST_PASSPHRASE: PASSPHRASE } });
}

function manifests(dir: string): { status: string; verification: { check: string; ok: boolean; detail?: string }[] }[] {
  const root = path.join(dir, 'backups');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((r) => existsSync(path.join(root, r, 'manifest.json')))
    .map((r) => JSON.parse(readFileSync(path.join(root, r, 'manifest.json'), 'utf8')) as ReturnType<typeof manifests>[number]);
}

for (const driver of ['postgres', 'mysql'] as const) {
  void test(
    `${driver}: assertions that hold verify the backup; one that differs on the restored copy fails the run, naming it`,
    { timeout: 180_000 },
    async (t) => {
      let url: string;
      if (driver === 'postgres') {
        if (!(await requireBackupTools(t))) return;
        const db = await scratchDatabase(t, PG_URL);
        for (const q of SETUP) await db.pool.query(q);
        url = db.url;
      } else {
        if (!(await requireMyBackupTools(t))) return;
        const db = await scratchMyDatabase(t, MY_URL);
        await withConnection(db.url, async (c) => {
          for (const q of SETUP) await c.query(q);
        });
        url = db.url;
      }
      const dir = tmpDir(t);
      const ok = await backups(dir, driver, url, HOLDING);
      assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
      const [verified] = manifests(dir);
      assert.equal(verified?.status, 'verified');
      const check = verified.verification.find((v) => v.check === 'assert');
      assert.deepEqual([check?.ok, check?.detail], [true, '3 data assertions hold']);

      // The restored copy is a scratch database of another name: its current database differs from the snapshot's.
      const current = driver === 'postgres' ? 'SELECT current_database()' : 'SELECT database()';
      const differs = await backups(dir, driver, url, `${HOLDING}\n      - { name: which database, query: "${current}" }`);
      assert.equal(differs.exitCode, 1, differs.stdout + differs.stderr);
      assert.match(
        differs.stdout + differs.stderr,
        new RegExp(
          `restored "app" fails 1 data assertion: "which database" \\(${current.replace(/[()]/g, '\\$&')}\\): in the snapshot \\[\\["[a-z0-9_]+"\\]\\], restored \\[\\["dbflow_verify_`,
        ),
      );
      assert.equal(manifests(dir).length, 1, 'the failed run published no manifest');

      // A condition the restored copy misses names the query, the value and the condition.
      const missed = await backups(dir, driver, url, `      - { name: too few, query: "SELECT count(*) FROM customers", expect: ">= 4" }`);
      assert.equal(missed.exitCode, 1, missed.stdout + missed.stderr);
      assert.match(
        missed.stdout + missed.stderr,
        /"too few" \(SELECT count\(\*\) FROM customers\): in the snapshot \[\["3"\]\], restored \[\["3"\]\], expected >= 4/,
      );

      // A query over its timeout fails the snapshot, named.
      const sleep = driver === 'postgres' ? 'SELECT pg_sleep(5)' : 'SELECT SLEEP(5)';
      const slow = await backups(dir, driver, url, `      - { query: "${sleep}", timeout: 300ms }`);
      assert.equal(slow.exitCode, 1, slow.stdout + slow.stderr);
      assert.match(
        slow.stdout + slow.stderr,
        new RegExp(`the assertion query "${sleep.replace(/[()]/g, '\\$&')}" failed: it ran longer than its timeout of 300 ms`),
      );
      assert.equal(manifests(dir).length, 1);
    },
  );
}
