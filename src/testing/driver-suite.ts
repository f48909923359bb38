// describeDriver: the conformance suite every database driver passes, first-party ones included.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { compareCounts } from '../repo/restore.js';
import { scratchDatabaseName } from '../plugins/scratch-name.js';
import type { DatabaseConfig, DatabaseDriver, DriverContext, DriverSnapshot, TableCounts } from '../plugins/types.js';
import { testContext } from './context.js';
import { describeError, isKind, prepare, type Setup } from './support.js';

/** What an author's setup gives the driver suite, for one test. */
export interface DriverSetup {
  driver: DatabaseDriver;
  /** A database of this driver that the suite may fill and change: made for this test, empty. */
  database: DatabaseConfig;
  /** Fills the database: at least one table, with rows. Called once, at the start of every test. */
  seed(): Promise<void>;
  /**
   * Changes the row count of at least one table (inserts or deletes rows) and commits. Called while a
   * snapshot is held, and more than once: each call must change the counts again.
   */
  write(): Promise<void>;
  /** Removes the database (and anything else the setup made). */
  cleanup?(): void | Promise<void>;
}

/** Options of the driver suite. */
export interface DriverSuiteOptions {
  /** Timeout of each test in ms (default 300 000). */
  timeout?: number;
}

/** One test's database, driver and context. */
interface Case extends DriverSetup {
  ctx: DriverContext;
}

/**
 * Registers the driver conformance suite with `node:test`: snapshot → dump → restore → equal counts,
 * writes after the snapshot left out, failed restores, scratch databases dropped, snapshots released
 * safely (see "Testing your plugin" in docs/plugins.md). `setup` runs at the start of every test.
 */
export function describeDriver(name: string, setup: Setup<DriverSetup>, options: DriverSuiteOptions = {}): void {
  const driverTest = (title: string, body: (c: Case) => Promise<void>): void => {
    test(title, { timeout: options.timeout ?? 300_000 }, async (t) => {
      const s = await prepare(t, setup);
      if (!s) return;
      const { ctx, dispose } = testContext({
        id: 'conformance',
        databases: { [s.database.name]: { config: s.database, driver: s.driver } },
      });
      t.after(dispose);
      await s.seed();
      await body({ ...s, ctx });
    });
  };
  describe(name, () => {
    driverTest(
      "snapshot → dump → restore into a scratch database: the restored row counts (and checksums) equal the snapshot's",
      roundTrip,
    );
    driverTest('writes made after the snapshot, also while its dump runs, are neither in its counts nor in its dump', writesAfter);
    driverTest('a restore whose input fails at its end rejects, and its scratch database is dropped all the same', failedRestore);
    driverTest('scratch databases: created empty, gone after drop(); a second drop() is harmless', scratchDrop);
    driverTest(
      'a snapshot released after its dump was abandoned, or released twice, lets go of everything: writes and a new snapshot work',
      releases,
    );
    driverTest('a snapshot released before its counts are done settles them and lets go of everything', earlyRelease);
  });
}

// A snapshot of the test's database.
function snapshot(c: Case): Promise<DriverSnapshot> {
  return c.driver.snapshot(c.ctx, { db: c.database });
}

// Runs `body` with a fresh scratch database, dropped afterwards whatever happens.
async function withScratch<T>(c: Case, body: (url: string) => Promise<T>): Promise<T> {
  const scratch = await c.driver.scratch(c.ctx, {
    db: c.database,
    name: scratchDatabaseName(`t${randomBytes(4).toString('hex')}`, c.database.name),
  });
  try {
    return await body(scratch.url);
  } finally {
    await scratch.drop();
  }
}

// Dumps `snap`, restores the dump into a scratch database and counts its rows.
async function dumpRestoreCount(c: Case, snap: DriverSnapshot, afterDumpStarted?: () => Promise<void>): Promise<TableCounts> {
  const dump = await c.driver.dump(c.ctx, { db: c.database, snapshot: snap });
  const final = dump.final ?? Promise.resolve();
  final.catch(() => undefined); // awaited below
  await afterDumpStarted?.();
  return withScratch(c, async (url) => {
    await c.driver.restore(c.ctx, { url, input: dump.stream, format: dump.format, db: c.database });
    await final;
    await snap.counted;
    return c.driver.rowCounts(c.ctx, { url, db: c.database });
  });
}

// What differs between two sets of counts, for a message.
function differences(expected: TableCounts, actual: TableCounts, checksums = true): string {
  return compareCounts(expected, actual, checksums)
    .map((d) => `${d.table}: ${d.expected ?? 'missing'} vs ${d.actual ?? 'missing'}${d.checksum ? ' (checksum differs)' : ''}`)
    .join('; ');
}

async function roundTrip(c: Case): Promise<void> {
  const snap = await snapshot(c);
  try {
    await snap.counted;
    const { info } = snap;
    assert.equal(info.driver, c.driver.name, 'info.driver is the driver name');
    assert.ok(typeof info.serverVersion === 'string' && info.serverVersion !== '', 'info.serverVersion says what the server is');
    assert.ok(!Number.isNaN(Date.parse(info.takenAt)), `info.takenAt is an ISO 8601 time: ${info.takenAt}`);
    const rows = Object.values(info.tables).reduce((n, x) => n + x.rows, 0);
    assert.ok(
      Object.keys(info.tables).length > 0 && rows > 0,
      `the snapshot counted the seeded tables and rows: ${JSON.stringify(info.tables)}`,
    );
    const live = await c.driver.rowCounts(c.ctx, { url: c.database.url, db: c.database });
    assert.equal(
      differences(info.tables, live),
      '',
      'rowCounts of the unchanged database equal the snapshot counts: tables named and checksummed the same way',
    );
    const restored = await dumpRestoreCount(c, snap);
    assert.equal(differences(info.tables, restored), '', "the restored counts equal the snapshot's");
  } finally {
    await snap.release();
  }
}

async function writesAfter(c: Case): Promise<void> {
  const before = await c.driver.rowCounts(c.ctx, { url: c.database.url, db: c.database });
  const snap = await snapshot(c);
  try {
    await c.write();
    const restored = await dumpRestoreCount(c, snap, () => c.write());
    assert.equal(
      differences(snap.info.tables, before),
      '',
      'the snapshot counts what was there when it was taken, not the writes after it',
    );
    const live = await c.driver.rowCounts(c.ctx, { url: c.database.url, db: c.database });
    assert.notEqual(differences(before, live, false), '', "the setup's write() must change row counts (else this case proves nothing)");
    assert.equal(
      differences(snap.info.tables, restored),
      '',
      "the restored counts equal the snapshot's: no write after the snapshot is in the dump",
    );
  } finally {
    await snap.release();
  }
}

async function failedRestore(c: Case): Promise<void> {
  const snap = await snapshot(c);
  try {
    const dump = await c.driver.dump(c.ctx, { db: c.database, snapshot: snap });
    dump.final?.catch(() => undefined);
    const broke = new Error('the artifact broke at its end (dbflow/testing)');
    // Every byte passes, then the stream fails: as a decoder whose integrity check fails at the end.
    const failingAtEnd = new Transform({ transform: (chunk: Buffer, _e, done) => done(null, chunk), flush: (done) => done(broke) });
    dump.stream.on('error', (err) => failingAtEnd.destroy(err));
    const input: Readable = dump.stream.pipe(failingAtEnd);
    let scratchUrl = '';
    await assert.rejects(
      withScratch(c, (url) => {
        scratchUrl = url;
        return c.driver.restore(c.ctx, { url, input, format: dump.format, db: c.database });
      }),
      (err) => {
        assert.ok(err instanceof Error, `the restore rejects with an Error: ${describeError(err)}`);
        return true;
      },
      'a restore whose input fails must reject',
    );
    await assertGone(c, scratchUrl);
  } finally {
    await snap.release();
  }
}

async function scratchDrop(c: Case): Promise<void> {
  const scratch = await c.driver.scratch(c.ctx, {
    db: c.database,
    name: scratchDatabaseName(`t${randomBytes(4).toString('hex')}`, c.database.name),
  });
  let dropped = false;
  try {
    if (c.driver.exists)
      assert.equal(await c.driver.exists(c.ctx, { db: { ...c.database, url: scratch.url } }), true, 'exists() finds the scratch database');
    const counts = await c.driver.rowCounts(c.ctx, { url: scratch.url, db: c.database });
    assert.deepEqual(counts, {}, 'a scratch database is created empty');
    await scratch.drop();
    dropped = true;
    await assertGone(c, scratch.url);
    await scratch.drop();
  } finally {
    if (!dropped) await scratch.drop();
  }
}

// The database at `url` is gone: exists() says so, or, for a driver without it, counting its rows fails.
async function assertGone(c: Case, url: string): Promise<void> {
  assert.ok(url !== '', 'a scratch database was made');
  if (c.driver.exists) {
    assert.equal(await c.driver.exists(c.ctx, { db: { ...c.database, url } }), false, `the scratch database ${url} is gone after drop()`);
    return;
  }
  await assert.rejects(
    c.driver.rowCounts(c.ctx, { url, db: c.database }),
    Error,
    `the scratch database ${url} is gone after drop(): counting its rows fails`,
  );
}

async function releases(c: Case): Promise<void> {
  const snap = await snapshot(c);
  const dump = await c.driver.dump(c.ctx, { db: c.database, snapshot: snap });
  dump.final?.catch(() => undefined);
  dump.stream.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    dump.stream.once('data', () => resolve());
    dump.stream.once('end', () => resolve());
    dump.stream.once('error', () => resolve());
  });
  dump.stream.destroy();
  await snap.counted?.catch(() => undefined);
  await snap.release();
  await snap.release();
  await c.write();
  const again = await snapshot(c);
  try {
    await again.counted;
    const live = await c.driver.rowCounts(c.ctx, { url: c.database.url, db: c.database });
    assert.equal(differences(again.info.tables, live), '', 'a new snapshot after the release counts the database as it is');
  } finally {
    await again.release();
    await again.release();
  }
  await c.write();
}

async function earlyRelease(c: Case): Promise<void> {
  const snap = await snapshot(c);
  await snap.release();
  if (snap.counted) {
    await snap.counted.catch((err: unknown) => {
      assert.ok(isKind(err, 'DbflowError'), `counting stopped by the release fails with a DbflowError, not ${describeError(err)}`);
    });
  }
  await c.write();
  const again = await snapshot(c);
  try {
    await again.counted;
    assert.ok(Object.keys(again.info.tables).length > 0, 'a new snapshot after the release works');
  } finally {
    await again.release();
  }
}
