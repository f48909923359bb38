// Coordinated snapshots through the CLI, against real servers: two PostgreSQL databases and a MariaDB database under a causal
// writer, backed up at one cut (or, uncoordinated, not), and the stored artifacts restored with stock tools.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Manifest } from '../../src/index.js';
import { causalViolation, myItemIds, pgItemIds, startCausalWriter } from '../helpers/causal-writer.js';
import {
  artifactOf,
  causalDatabases,
  coordinatedPipeline,
  coordinationOf,
  itemsCounted,
  PARTICIPANTS,
  urlsOf,
  type Coordination,
} from '../helpers/coordinated-run.js';
import {
  databasesStartingWith as myDatabasesStartingWith,
  requireMyBackupTools,
  scratchDatabase as myScratchDatabase,
} from '../helpers/mysql.js';
import { stockRestore as myStockRestore } from '../helpers/mysql-run.js';
import { databasesStartingWith, requireBackupTools, scratchDatabase } from '../helpers/postgres.js';
import { backupEnv, stockRestore as pgStockRestore } from '../helpers/postgres-run.js';
import { tmpDir } from '../helpers/tmp.js';
import { readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';

const MINUTE = 60_000;
const RUNS = 10;

// Both servers and every tool of the pipeline and of the stock restores.
async function requireAll(t: TestContext): Promise<boolean> {
  return (await requireBackupTools(t, 'zstd', 'gpg')) && (await requireMyBackupTools(t, 'zstd', 'gpg'));
}

// The checks every run must pass: verified, both checks of every participant ok, no restore-test database left on either server.
async function assertVerified(m: Manifest, run: number): Promise<void> {
  assert.equal(m.status, 'verified', `run ${run}: ${JSON.stringify(m.verification)}`);
  for (const db of PARTICIPANTS) {
    const checks = m.verification
      .filter((v) => v.database === db)
      .map((v) => [v.check, v.ok])
      .sort();
    assert.deepEqual(
      checks,
      [
        ['restore', true],
        ['rowcount', true],
      ],
      `run ${run}, ${db}: ${JSON.stringify(m.verification)}`,
    );
  }
  assert.equal(m.databases.db1?.driver, 'postgres');
  assert.equal(m.databases.mq?.driver, 'mysql');
  assert.equal(m.databases.db2?.driver, 'postgres');
  assert.deepEqual(
    await databasesStartingWith(verifyPrefix(m.run.id)),
    [],
    `run ${run}: restore-test dropped its PostgreSQL scratch databases`,
  );
  assert.deepEqual(
    await myDatabasesStartingWith(verifyPrefix(m.run.id)),
    [],
    `run ${run}: restore-test dropped its MariaDB scratch database`,
  );
}

// The one coordination entry of a run's manifest.
function coordinationEntry(m: Manifest, run: number): Coordination {
  const entries = coordinationOf(m);
  assert.equal(
    entries.length,
    1,
    `run ${run}: one coordination entry (one snapshot step with several databases): ${JSON.stringify(entries)}`,
  );
  const c = entries[0]!;
  assert.equal(c.step, 'snapshot');
  assert.deepEqual(c.participants, [...PARTICIPANTS]);
  return c;
}

// Item ids of each participant, as restored with stock tools (gpg, zstd, pg_restore / mariadb) from what the run stored.
async function restoredIds(t: TestContext, cwd: string, m: Manifest): Promise<Record<(typeof PARTICIPANTS)[number], number[]>> {
  const [db1, mq, db2] = await Promise.all([scratchDatabase(t), myScratchDatabase(t), scratchDatabase(t)]);
  await Promise.all([
    pgStockRestore(artifactOf(cwd, m, 'db1'), db1.url, tmpDir(t)),
    myStockRestore(artifactOf(cwd, m, 'mq'), mq.url, tmpDir(t)),
    pgStockRestore(artifactOf(cwd, m, 'db2'), db2.url, tmpDir(t)),
  ]);
  const ids = { db1: await pgItemIds(db1.pool), mq: await myItemIds(mq.pool), db2: await pgItemIds(db2.pool) };
  // Restores are not needed once read: the servers stay small while the runs go on.
  await Promise.all([db1.pool.end(), mq.pool.end(), db2.pool.end()]);
  return ids;
}

// A promise that never rejects: its error, or undefined.
const settled = (p: Promise<unknown>): Promise<Error | undefined> =>
  p.then(
    () => undefined,
    (err: unknown) => err as Error,
  );

void test(
  'ten coordinated backups of PostgreSQL, MariaDB and PostgreSQL under a causal writer each restore to one consistent cut',
  { timeout: 9 * MINUTE },
  async (t) => {
    if (!(await requireAll(t))) return;
    const dbs = await causalDatabases(t);
    const cwd = tmpDir(t);
    const file = writePipeline(cwd, coordinatedPipeline({ urls: urlsOf(dbs), coordinated: true, barrierTimeout: '10s' }));
    const writer = await startCausalWriter(dbs.targets, { after: (fn) => t.after(fn), maxMs: 9 * MINUTE });
    await writer.committed(20);

    const restores: Promise<Error | undefined>[] = [];
    const blocked: number[] = [];
    // blocked_ms is the commit-blocking time: the longest any participant's barrier was held (checked after every run has been verified).
    const spans: string[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const before = writer.iterations();
      const r = await runBackup(cwd, file, backupEnv());
      assert.equal(r.exitCode, 0, `run ${run}:\n${r.stdout}\n${r.stderr}`);
      assert.ok(
        writer.iterations() > before,
        `run ${run}: the writer went on during the run (${before} → ${writer.iterations()}${writer.stopped() ? `; it stopped: ${writer.stopped()}` : ''})`,
      );
      const m = readManifest(cwd, r.runId);
      await assertVerified(m, run);

      const c = coordinationEntry(m, run);
      assert.equal(c.coordinated, true, `run ${run}: ${JSON.stringify(c)}`);
      assert.ok(
        typeof c.blocked_ms === 'number' && Number.isFinite(c.blocked_ms) && c.blocked_ms >= 0,
        `run ${run}: blocked_ms ${c.blocked_ms}`,
      );
      blocked.push(c.blocked_ms);
      assert.deepEqual(
        Object.keys(c.barriers ?? {}).sort(),
        [...PARTICIPANTS].sort(),
        `run ${run}: a barrier per participant: ${JSON.stringify(c.barriers)}`,
      );
      const barriers = Object.values(c.barriers ?? {});
      for (const [db, b] of Object.entries(c.barriers ?? {})) {
        assert.ok(b.method.length > 0 && typeof b.held_ms === 'number' && b.held_ms >= 0, `run ${run}, ${db}: ${JSON.stringify(b)}`);
        assert.ok(
          Date.parse(b.acquired_at) <= Date.parse(b.released_at),
          `run ${run}, ${db}: acquired before released: ${JSON.stringify(b)}`,
        );
      }
      // Every barrier was held at one moment: the last acquired before the first released.
      const lastAcquired = Math.max(...barriers.map((b) => Date.parse(b.acquired_at)));
      const firstReleased = Math.min(...barriers.map((b) => Date.parse(b.released_at)));
      assert.ok(lastAcquired <= firstReleased, `run ${run}: every barrier held at once: ${JSON.stringify(c.barriers)}`);
      const longest = Math.max(...barriers.map((b) => b.held_ms));
      if (c.blocked_ms !== longest) spans.push(`run ${run}: blocked_ms ${c.blocked_ms}, longest held_ms ${longest}`);
      for (const db of ['db1', 'db2'] as const) {
        const point = m.databases[db]?.position.restore_point;
        assert.ok(
          typeof point === 'string' && point.length > 0,
          `run ${run}, ${db}: a restore point: ${JSON.stringify(m.databases[db]?.position)}`,
        );
      }
      // The counts taken inside the snapshots already show the cut (items are numbered 1, 2, 3 … and never deleted).
      const counted = { db1: itemsCounted(m, 'db1'), mq: itemsCounted(m, 'mq'), db2: itemsCounted(m, 'db2') };
      assert.ok(
        counted.db1 >= counted.mq && counted.mq >= counted.db2 && counted.db1 - counted.db2 <= 1,
        `run ${run}: counted ${JSON.stringify(counted)}`,
      );

      // What was stored, restored with stock tools while the next run goes: one cut of the writer's sequence.
      restores.push(
        settled(
          (async () => {
            const ids = await restoredIds(t, cwd, m);
            assert.deepEqual(
              { db1: ids.db1.length, mq: ids.mq.length, db2: ids.db2.length },
              counted,
              `run ${run}: restored items equal the counts of the snapshot`,
            );
            assert.equal(causalViolation(ids), undefined, `run ${run}: the restored databases are one consistent cut`);
          })(),
        ),
      );
    }
    for (const failure of await Promise.all(restores)) if (failure !== undefined) throw failure;
    const items = await writer.stop();
    t.diagnostic(`${items} items written; commits blocked ${blocked.map((ms) => ms.toFixed(1)).join(', ')} ms`);
    assert.deepEqual(spans, [], 'blocked_ms is the longest time any participant held its barrier');
  },
);

void test(
  'uncoordinated snapshots of the same databases (coordinated: false) do break the causal order: the check can fail',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireAll(t))) return;
    const dbs = await causalDatabases(t);
    const cwd = tmpDir(t);
    // In the writer's order: each later snapshot sees items the earlier ones did not.
    const file = writePipeline(cwd, coordinatedPipeline({ urls: urlsOf(dbs), coordinated: false, order: PARTICIPANTS }));
    const writer = await startCausalWriter(dbs.targets, { after: (fn) => t.after(fn), maxMs: 9 * MINUTE });
    await writer.committed(20);

    const seen: string[] = [];
    // Up to ten runs; once a stored backup has restored to a broken cut, the point is made.
    for (let run = 1; run <= RUNS && !seen.length; run++) {
      const r = await runBackup(cwd, file, backupEnv());
      assert.equal(r.exitCode, 0, `run ${run}:\n${r.stdout}\n${r.stderr}`);
      const m = readManifest(cwd, r.runId);
      await assertVerified(m, run);
      const c = coordinationEntry(m, run);
      assert.equal(c.coordinated, false, `run ${run}: ${JSON.stringify(c)}`);
      assert.equal(c.blocked_ms, undefined, `run ${run}: no barrier across the databases, so no commit-blocking time`);
      const violation = causalViolation(await restoredIds(t, cwd, m));
      if (violation) seen.push(`run ${run}: ${violation}`);
    }
    await writer.stop();
    assert.ok(seen.length > 0, `in ${RUNS} uncoordinated runs, at least one restored backup breaks the causal order`);
    t.diagnostic(seen.join('\n'));
  },
);
