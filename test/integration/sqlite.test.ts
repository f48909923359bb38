// The sqlite driver and the sqlite-seed step, against real database files and a live writer.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { DbflowError, IntegrityError, type TableCounts } from '../../src/index.js';
import sqlitePlugin from '../../plugins/sqlite/index.js';
import {
  ACCOUNTS,
  START_BALANCE,
  balanceSum,
  createLiveDatabase,
  makeContext,
  readAll,
  sqliteConfig,
  sqliteDriver as driver,
  startWriter,
  tempDir,
} from '../helpers/sqlite-fixtures.js';

// Counting options of the databases these tests count: with content checksums.
const CHECKSUMMED = sqliteConfig('counts', 'sqlite:counts', { checksums: true });

const seedStep = sqlitePlugin.steps!.find((s) => s.uses === 'sqlite-seed')!;

// A dump of a small database, as bytes.
async function dumpBytes(dir: string): Promise<{ bytes: Buffer; tables: TableCounts }> {
  const file = path.join(dir, 'src.db');
  createLiveDatabase(file, 2000);
  const ctx = makeContext({ tmpdir: dir });
  const snap = await driver.snapshot(ctx, { db: sqliteConfig('src', `sqlite:${file}`) });
  try {
    const dump = await driver.dump(ctx, { db: sqliteConfig('src', `sqlite:${file}`), snapshot: snap });
    return { bytes: await readAll(dump.stream), tables: snap.info.tables };
  } finally {
    await snap.release();
  }
}

// FNV-1a 64 over UTF-8 in BigInt: the reference the fast checksum must match.
function referenceChecksum(file: string, table: string): string {
  const db = new Database(file, { readonly: true });
  const cols = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(table) as string[];
  const texts = db
    .prepare(`SELECT ${cols.map((c) => `quote("${c}")`).join(" || ',' || ")} FROM "${table}"`)
    .pluck()
    .all() as string[];
  db.close();
  let sum = 0n;
  for (const text of texts) {
    let h = 0xcbf29ce484222325n;
    for (const b of Buffer.from(text, 'utf8')) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
    sum = (sum + h) & 0xffffffffffffffffn;
  }
  return sum.toString(16).padStart(16, '0');
}

void test('a snapshot taken under a live writer restores to exactly its counted rows', async (t) => {
  const dir = tempDir(t);
  const live = path.join(dir, 'live.db');
  createLiveDatabase(live, 20_000);
  // Few pages per backup step: the copy spans many turns while the writer commits.
  const db = sqliteConfig('live', `sqlite:${live}`, { backup_step_pages: 16 });
  const writer = startWriter(live);
  t.after(() => writer.stop());
  await writer.committed(25);
  let previous: TableCounts | undefined;
  let overlapped = 0; // snapshots during which the writer committed (one a loaded machine may miss; not all three)
  for (let run = 1; run <= 3; run++) {
    const tmpdir = path.join(dir, `run-${run}`);
    mkdirSync(tmpdir);
    const ctx = makeContext({ tmpdir });
    const before = writer.commits();
    const snap = await driver.snapshot(ctx, { db });
    try {
      if (writer.commits() > before) overlapped++;
      assert.equal(snap.info.driver, 'sqlite');
      assert.equal(snap.info.tables.accounts?.rows, ACCOUNTS);
      const dump = await driver.dump(ctx, { db, snapshot: snap });
      assert.equal(dump.format, 'sqlite3');
      assert.equal(dump.extension, '.sqlite3');
      const scratch = await driver.scratch(ctx, { db, name: `verify_${run}` });
      try {
        await driver.restore(ctx, { url: scratch.url, input: dump.stream, format: dump.format, db });
        assert.deepEqual(await driver.rowCounts(ctx, { url: scratch.url, db: CHECKSUMMED }), snap.info.tables);
        // Transfers keep the total: a torn copy would not.
        assert.equal(balanceSum(scratch.url.slice('sqlite:'.length)), ACCOUNTS * START_BALANCE);
      } finally {
        await scratch.drop();
      }
      if (previous) assert.notDeepEqual(snap.info.tables, previous, 'the writer changed the database between snapshots');
      previous = snap.info.tables;
      await writer.committed((run + 1) * 50);
      assert.notDeepEqual(
        await driver.rowCounts(ctx, { url: db.url, db: CHECKSUMMED }),
        snap.info.tables,
        'the live database moved on after the snapshot',
      );
    } finally {
      await snap.release();
    }
    assert.deepEqual(readdirSync(tmpdir), [], 'release() removes the staged copy');
  }
  assert.ok(overlapped > 0, 'the writer committed during at least one of the three snapshots');
  assert.ok((await writer.stop()) >= 200);
});

void test('WAL contents that were never checkpointed are in the snapshot', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'wal.db');
  const db = new Database(file);
  t.after(() => db.close());
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)');
  const insert = db.prepare('INSERT INTO items (name) VALUES (?)');
  db.transaction(() => Array.from({ length: 100 }, (_, i) => insert.run(`checkpointed ${i}`)))();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.transaction(() => Array.from({ length: 500 }, (_, i) => insert.run(`only in the WAL ${i}`)))();
  assert.ok(statSync(`${file}-wal`).size > 0, 'the rows are in the -wal file');
  // A plain file copy misses them.
  copyFileSync(file, path.join(dir, 'copy.db'));
  const ctx = makeContext({ tmpdir: dir });
  assert.equal((await driver.rowCounts(ctx, { url: `sqlite:${path.join(dir, 'copy.db')}`, db: CHECKSUMMED })).items?.rows, 100);

  const snap = await driver.snapshot(ctx, { db: sqliteConfig('wal', `sqlite:${file}`) });
  t.after(() => snap.release());
  assert.equal(snap.info.tables.items?.rows, 600);
  assert.equal(snap.info.position.source_journal_mode, 'wal');
  assert.equal(typeof snap.info.position.page_count, 'number');
  assert.match(snap.info.serverVersion, /^3\.\d+\.\d+$/);
  assert.deepEqual(await driver.rowCounts(ctx, { url: `sqlite:${file}`, db: CHECKSUMMED }), snap.info.tables);
  const staged = (snap as unknown as { file: string }).file;
  assert.equal(snap.info.tables.items?.checksum, referenceChecksum(staged, 'items'));
});

void test('checksums follow the documented definition and ignore row order', async (t) => {
  const dir = tempDir(t);
  const ctx = makeContext({ tmpdir: dir });
  const rows: unknown[][] = [
    [1, 'plain', 0.1, null, Buffer.from([0, 255])],
    [2, "it's ☃ and 😀", -1e300, 9007199254740993n, null],
    [3, '', 1.0, -42, Buffer.alloc(0)],
  ];
  const make = (name: string, order: unknown[][]): string => {
    const file = path.join(dir, name);
    const db = new Database(file);
    db.defaultSafeIntegers(true);
    db.exec('CREATE TABLE t (id INTEGER, s TEXT, r REAL, i INTEGER, b BLOB)');
    for (const r of order) db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?)').run(...r);
    db.close();
    return file;
  };
  const a = make('a.db', rows);
  const b = make('b.db', [...rows].reverse());
  const countsA = await driver.rowCounts(ctx, { url: `sqlite:${a}`, db: CHECKSUMMED });
  assert.deepEqual(await driver.rowCounts(ctx, { url: `sqlite:${b}`, db: CHECKSUMMED }), countsA);
  assert.equal(countsA.t?.checksum, referenceChecksum(a, 't'));
  const c = make('c.db', [...rows.slice(0, 2), [3, '', 1.0, -41, Buffer.alloc(0)]]);
  assert.notEqual((await driver.rowCounts(ctx, { url: `sqlite:${c}`, db: CHECKSUMMED })).t?.checksum, countsA.t?.checksum);
});

void test('restore refuses other formats and non-empty targets, and a damaged stream is an IntegrityError', async (t) => {
  const dir = tempDir(t);
  const { bytes, tables } = await dumpBytes(dir);
  const ctx = makeContext({ tmpdir: dir });
  const db = sqliteConfig('src', `sqlite:${path.join(dir, 'src.db')}`);

  const scratch = await driver.scratch(ctx, { db, name: 'target' });
  t.after(() => scratch.drop());
  await assert.rejects(
    driver.restore(ctx, { url: scratch.url, input: Readable.from([bytes]), format: 'pg_dump-custom', db: CHECKSUMMED }),
    (err: Error) => {
      assert.ok(err instanceof DbflowError);
      assert.match(err.message, /restores "sqlite3" dumps, not "pg_dump-custom"/);
      return true;
    },
  );
  await assert.rejects(
    driver.restore(ctx, { url: db.url, input: Readable.from([bytes]), format: 'sqlite3', db: CHECKSUMMED }),
    /refusing to restore over ".*src\.db".*remove it first/,
  );

  const cases: [string, Buffer][] = [
    ['cut mid-page', bytes.subarray(0, Math.floor(bytes.length / 2) + 123)],
    ['cut at a page boundary', bytes.subarray(0, 4096 * 3)],
    ['only a part of the header', bytes.subarray(0, 60)],
    ['not a database', Buffer.from('definitely not sqlite\n'.repeat(500))],
    ['a damaged page', Buffer.concat([bytes.subarray(0, 4096 * 4), Buffer.alloc(4096, 0xa5), bytes.subarray(4096 * 5)])],
  ];
  for (const [what, damaged] of cases) {
    const half = [damaged.subarray(0, damaged.length >> 1), damaged.subarray(damaged.length >> 1)];
    await assert.rejects(
      driver.restore(ctx, { url: scratch.url, input: Readable.from(half), format: 'sqlite3', db: CHECKSUMMED }),
      IntegrityError,
      what,
    );
    assert.equal(statSync(scratch.url.slice('sqlite:'.length)).size, 0, `${what}: the target is untouched`);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.restore-')),
      [],
      `${what}: no temporary file is left`,
    );
  }

  // The whole stream restores, and counts like the snapshot.
  await driver.restore(ctx, {
    url: scratch.url,
    input: Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]),
    format: 'sqlite3',
    db: CHECKSUMMED,
  });
  assert.deepEqual(await driver.rowCounts(ctx, { url: scratch.url, db: CHECKSUMMED }), tables);
});

void test('restore into a new path creates it; a stream error fails the restore and leaves nothing', async (t) => {
  const dir = tempDir(t);
  const { bytes, tables } = await dumpBytes(dir);
  const ctx = makeContext({ tmpdir: dir });
  const target = path.join(dir, 'restored', 'new.db');
  await driver.restore(ctx, { url: `sqlite://${target}`, input: Readable.from([bytes]), format: 'sqlite3', db: CHECKSUMMED });
  assert.deepEqual(await driver.rowCounts(ctx, { url: `sqlite:${target}`, db: CHECKSUMMED }), tables);

  const failing = new Readable({ read() {} });
  failing.push(bytes.subarray(0, 8192));
  setImmediate(() => failing.destroy(new Error('upstream decoder failed')));
  await assert.rejects(
    driver.restore(ctx, { url: `sqlite:${path.join(dir, 'restored', 'other.db')}`, input: failing, format: 'sqlite3', db: CHECKSUMMED }),
    /upstream decoder failed/,
  );
  assert.deepEqual(readdirSync(path.join(dir, 'restored')), ['new.db']);
});

void test('scratch databases live in the tmpdir and drop() leaves no file behind', async (t) => {
  const dir = tempDir(t);
  const { bytes } = await dumpBytes(dir);
  const tmpdir = path.join(dir, 'step');
  mkdirSync(tmpdir);
  const ctx = makeContext({ tmpdir });
  const db = sqliteConfig('src', `sqlite:${path.join(dir, 'src.db')}`);
  const first = await driver.scratch(ctx, { db, name: 'dbflow_verify_run_src' });
  const second = await driver.scratch(ctx, { db, name: 'dbflow_verify_run_src' });
  assert.notEqual(first.url, second.url);
  assert.match(first.url, /^sqlite:\//);
  const file = first.url.slice('sqlite:'.length);
  assert.equal(path.dirname(file), tmpdir);
  await driver.restore(ctx, { url: first.url, input: Readable.from([bytes]), format: 'sqlite3', db: CHECKSUMMED });
  // A connection in WAL mode leaves -wal and -shm files while it is open.
  const open = new Database(file);
  open.pragma('journal_mode = WAL');
  open.exec("INSERT INTO accounts VALUES (100000, 'x', 0)");
  assert.ok(readdirSync(tmpdir).some((f) => f.endsWith('-wal')));
  await first.drop();
  open.close();
  await second.drop();
  assert.deepEqual(readdirSync(tmpdir), []);
});

void test('a missing database file is an error, and nothing is created', async (t) => {
  const dir = tempDir(t);
  const ctx = makeContext({ tmpdir: dir });
  const missing = path.join(dir, 'nope.db');
  await assert.rejects(driver.snapshot(ctx, { db: sqliteConfig('x', `sqlite:${missing}`) }), (err: Error) => {
    assert.ok(err instanceof DbflowError);
    assert.match(err.message, /database file ".*nope\.db" does not exist/);
    return true;
  });
  await assert.rejects(driver.rowCounts(ctx, { url: `sqlite:${missing}`, db: CHECKSUMMED }), /does not exist/);
  assert.deepEqual(readdirSync(dir), []);
  writeFileSync(path.join(dir, 'text.db'), 'hello, not a database\n'.repeat(10));
  await assert.rejects(
    driver.snapshot(ctx, { db: sqliteConfig('x', `sqlite:${path.join(dir, 'text.db')}`) }),
    /not a healthy SQLite database/,
  );
  for (const bad of ['sqlite:', 'sqlite::memory:', 'postgres://x/y']) {
    await assert.rejects(driver.rowCounts(ctx, { url: bad, db: CHECKSUMMED }), new RegExp(`"${bad}" is not a usable sqlite URL`));
  }
});

void test('sqlite URLs: relative to the working directory, or absolute', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'rel.db');
  createLiveDatabase(file, 10);
  const ctx = makeContext({ tmpdir: dir });
  const rel = path.relative(process.cwd(), file);
  const expected = await driver.rowCounts(ctx, { url: `sqlite://${file}`, db: CHECKSUMMED });
  for (const url of [`sqlite:${rel}`, `sqlite://${rel}`, `sqlite:./${rel}`, `sqlite://./${rel}`, `sqlite:${file}`]) {
    assert.deepEqual(await driver.rowCounts(ctx, { url, db: CHECKSUMMED }), expected, url);
  }
});

void test('sqlite-seed creates a WAL database once; if_missing makes the second call a no-op', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'data', 'demo.db');
  const databases = { demo: `sqlite:${file}` };
  const ctx = makeContext({ tmpdir: dir, databases, with: { database: 'demo', rows: 2000 } });
  const first = await seedStep.run(ctx);
  assert.deepEqual(first.outputs, { created: true, path: file });
  const counts = await driver.rowCounts(ctx, { url: databases.demo, db: CHECKSUMMED });
  assert.deepEqual(Object.keys(counts), ['customers', 'order_items', 'orders']);
  assert.equal(counts.orders?.rows, 2000);
  assert.equal(counts.customers?.rows, 250);
  assert.ok(counts.order_items!.rows > 4000 && counts.order_items!.rows < 8000);
  const db = new Database(file);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.prepare('SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id').pluck().get(), 2000);
  db.close();
  assert.deepEqual(readdirSync(path.dirname(file)), ['demo.db']);

  const before = statSync(file);
  const second = await seedStep.run(ctx);
  assert.deepEqual(second.outputs, { created: false, path: file });
  assert.equal(statSync(file).mtimeMs, before.mtimeMs);

  const more = await seedStep.run(makeContext({ tmpdir: dir, databases, with: { database: 'demo', rows: 100, if_missing: false } }));
  assert.deepEqual(more.outputs, { created: true, path: file });
  assert.equal((await driver.rowCounts(ctx, { url: databases.demo, db: CHECKSUMMED })).orders?.rows, 2100);
});

void test('sqlite-seed defaults to 10000 rows, and a cancelled seed leaves no file', async (t) => {
  const dir = tempDir(t);
  const databases = { small: `sqlite:${path.join(dir, 'small.db')}`, big: `sqlite:${path.join(dir, 'big.db')}` };
  await seedStep.run(makeContext({ tmpdir: dir, databases, with: { database: 'small' } }));
  assert.equal((await driver.rowCounts(makeContext({ tmpdir: dir }), { url: databases.small, db: CHECKSUMMED })).orders?.rows, 10000);

  const controller = new AbortController();
  const seeding = seedStep.run(
    makeContext({ tmpdir: dir, databases, signal: controller.signal, with: { database: 'big', rows: 2_000_000 } }),
  );
  await sleep(50);
  controller.abort(new Error('cancelled by the test'));
  await assert.rejects(seeding, /cancelled by the test/);
  assert.deepEqual(readdirSync(dir), ['small.db']);
});

void test('a cancelled snapshot rejects and leaves no staged file', async (t) => {
  const dir = tempDir(t);
  const live = path.join(dir, 'live.db');
  createLiveDatabase(live, 20_000);
  const tmpdir = path.join(dir, 'step');
  mkdirSync(tmpdir);
  const controller = new AbortController();
  const ctx = makeContext({ tmpdir, signal: controller.signal });
  const snapshot = driver.snapshot(ctx, { db: sqliteConfig('live', `sqlite:${live}`, { backup_step_pages: 1 }) });
  setTimeout(() => controller.abort(new Error('cancelled by the test')), 5);
  await assert.rejects(snapshot, /cancelled by the test/);
  assert.deepEqual(readdirSync(tmpdir), []);
});

test('without the checksums option, counts are exact row counts only', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'plain.db');
  createLiveDatabase(file, 50);
  const ctx = makeContext({ tmpdir: dir });
  const snap = await driver.snapshot(ctx, { db: { name: 'plain', driver: 'sqlite', url: `sqlite:${file}`, options: {} } });
  try {
    for (const count of Object.values(snap.info.tables)) assert.deepEqual(Object.keys(count), ['rows']);
    assert.deepEqual(
      await driver.rowCounts(ctx, { url: `sqlite:${file}`, db: { name: 'plain', driver: 'sqlite', url: `sqlite:${file}`, options: {} } }),
      snap.info.tables,
    );
  } finally {
    await snap.release();
  }
});
