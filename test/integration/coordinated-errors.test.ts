// Coordinated snapshots that cannot get every barrier: a participant blocked by another session fails the run cleanly and frees
// the others at once; a dbflow process killed while it holds barriers frees them too, because the sessions die with it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { hasStackTrace, spawnDbflow } from '../helpers/cli.js';
import { causalDatabases, coordinatedPipeline, urlsOf, type CausalDatabases } from '../helpers/coordinated-run.js';
import { databasesStartingWith as myDatabasesStartingWith, requireMyBackupTools } from '../helpers/mysql.js';
import { databasesStartingWith, requireBackupTools } from '../helpers/postgres.js';
import { backupEnv } from '../helpers/postgres-run.js';
import { descendants, endOf, waitFor } from '../helpers/processes.js';
import {
  killSessions,
  myProbeCommit,
  mySessions,
  pgProbeCommit,
  pgSessions,
  probeLoop,
  samplePorts,
  shareLockHolder,
  type PortSampler,
  type ProbeLoop,
} from '../helpers/sessions.js';
import { tmpDir } from '../helpers/tmp.js';
import { manifestsUnder, runIdOf, verifyPrefix, writePipeline } from '../helpers/backup-run.js';

const MINUTE = 60_000;

// What the blocking session on db2 runs, and leaves open: a row lock's table lock (ROW EXCLUSIVE) on a table in scope.
const BLOCKER_SQL = 'UPDATE customers SET balance = balance + 0 WHERE id = 1';

// Both servers and the tools of the pipeline.
async function requireAll(t: TestContext): Promise<boolean> {
  return (await requireBackupTools(t, 'zstd', 'gpg')) && (await requireMyBackupTools(t, 'zstd', 'gpg'));
}

/** A session on `url` idle in a transaction that has run BLOCKER_SQL; rolled back after the test. Resolves with its backend pid. */
async function blockOn(t: TestContext, url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url, application_name: 'blocking session' });
  c.on('error', () => undefined); // terminated when the database is dropped
  await c.connect();
  t.after(async () => {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end().catch(() => undefined);
  });
  const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  await c.query('BEGIN');
  await c.query(BLOCKER_SQL);
  return rows[0]!.pid;
}

interface Started {
  sub: ReturnType<typeof spawnDbflow>;
  cwd: string;
  dbs: CausalDatabases;
  blockerPid: number;
  ports: PortSampler;
  exited: () => string | false;
}

// Three seeded databases, a blocker on db2, and `dbflow run` of the coordinated pipeline started with these timeouts.
async function startBlockedRun(t: TestContext, timeouts: { barrierTimeout: string; lockTimeout?: string }): Promise<Started> {
  const run: { ports?: PortSampler; mq?: string } = {};
  // Registered first, so it runs before the scratch databases are dropped: a session the run left (a barrier) would hold up the drop.
  t.after(async () => {
    run.ports?.stop();
    if (run.ports && run.mq) await killSessions(run.ports.pg, run.ports.my, run.mq);
  });
  const dbs = await causalDatabases(t);
  run.mq = dbs.mq.name;
  const blockerPid = await blockOn(t, dbs.db2.url);
  const cwd = tmpDir(t);
  const file = writePipeline(cwd, coordinatedPipeline({ urls: urlsOf(dbs), coordinated: true, ...timeouts }));
  // Its temporary files in a folder of the test: a killed run cannot remove them itself.
  const sub = spawnDbflow(['run', file], { cwd, env: { ...backupEnv(), TMPDIR: tmpDir(t) } });
  t.after(() => void sub.kill('SIGKILL'));
  const exited = endOf(sub);
  const ports = samplePorts(sub.pid!);
  run.ports = ports;
  return { sub, cwd, dbs, blockerPid, ports, exited };
}

// Waits until the barrier on db1 is held: a granted SHARE lock of a dbflow session on a table of db1.
async function untilDb1Barrier(t: TestContext, s: Started): Promise<number> {
  const holder = await waitFor(
    'the barrier on db1 (a SHARE lock of a dbflow session)',
    () => shareLockHolder(s.dbs.db1.name),
    60_000,
    s.exited,
  );
  t.diagnostic(`db1 barrier held by pid ${holder.pid}, application_name "${holder.application_name}"`);
  return performance.now();
}

// A probe write that is still waiting after 500 ms (a barrier holds it up); one that went through is tried again, for up to 10 s.
// (Wrapped: an async function cannot resolve to a promise.)
async function heldUp(db: string, write: () => Promise<number>): Promise<{ write: Promise<number> }> {
  for (const until = performance.now() + 10_000; performance.now() < until;) {
    const p = write();
    const done = await Promise.race([p.then(() => true), sleep(500, false, { ref: false })]);
    if (!done) return { write: p };
  }
  assert.fail(`while the run waits for db2, an INSERT + COMMIT on ${db} should wait for its barrier, but each went through at once`);
}

// Nothing the run made is left: no manifest, no restore-test database on either server.
async function assertNothingPublished(cwd: string, runId: string): Promise<void> {
  assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), [], 'no manifest was published');
  assert.deepEqual(await databasesStartingWith(verifyPrefix(runId)), [], 'no PostgreSQL restore-test database is left');
  assert.deepEqual(await myDatabasesStartingWith(verifyPrefix(runId)), [], 'no MariaDB restore-test database is left');
}

// No session of the run is left on either server (PostgreSQL: application_name dbflow… on the scratch databases, or the run's ports; MariaDB: the run's ports).
async function assertNoSessionsLeft(s: Started, withinMs: number): Promise<void> {
  const left = async (): Promise<string | undefined> => {
    const p = await pgSessions([s.dbs.db1.name, s.dbs.db2.name], s.ports.pg);
    const m = await mySessions(s.dbs.mq.name, s.ports.my);
    return p.length || m.length ? JSON.stringify({ postgres: p, mariadb: m }) : undefined;
  };
  const deadline = performance.now() + withinMs;
  let still = await left();
  while (still !== undefined && performance.now() < deadline) {
    await sleep(50);
    still = await left();
  }
  assert.equal(still, undefined, `no session of the run is left on either server after ${withinMs} ms`);
}

void test(
  'a participant blocked by an open transaction: exit 1 naming db2 and the blocking pid and query, the other barriers freed at once, nothing left',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireAll(t))) return;
    const s = await startBlockedRun(t, { barrierTimeout: '2s' });
    // Writers on the participants that can get their barrier: held up by it at most as long as the run waits for db2.
    const probes: Record<'db1' | 'mq', ProbeLoop> = {
      db1: await probeLoop('pg', s.dbs.db1.url),
      mq: await probeLoop('my', s.dbs.mq.url),
    };
    t.after(() => Promise.all(Object.values(probes).map((p) => p.stop())));
    const heldAt = await untilDb1Barrier(t, s);
    const done = await s.sub;
    const exitedAt = performance.now();
    s.ports.stop();
    const output = `${String(done.stdout)}\n${String(done.stderr)}`;
    const runId = runIdOf(String(done.stdout));

    assert.equal(done.exitCode, 1, output);
    const waited = exitedAt - heldAt;
    assert.ok(
      waited >= 1500 && waited < 2000 + 3000,
      `the run waited for db2 about barrier_timeout (2 s), then ended: ${waited.toFixed(0)} ms from db1's barrier to exit`,
    );
    assert.match(output, /\bdb2\b/, 'the error names the blocked participant');
    assert.match(output, new RegExp(`pid ${s.blockerPid}\\b`), `the error names the blocking session (pid ${s.blockerPid})`);
    assert.ok(output.includes(BLOCKER_SQL), `the error shows the blocking session's query:\n${output}`);
    assert.match(
      output.slice(output.indexOf(`pid ${s.blockerPid}`)),
      /\b\d+(\.\d+)? ?(ms|s)\b/,
      "the error gives the blocking session's age",
    );
    assert.ok(!hasStackTrace(output), `no stack trace:\n${output}`);
    t.diagnostic(
      `the error: ${output
        .split('\n')
        .find((l) => l.includes(`pid ${s.blockerPid}`))
        ?.trim()}`,
    );
    await assertNothingPublished(s.cwd, runId);

    // Right after the failure, a plain INSERT + COMMIT on db1 and on mq goes through at once: their barriers are gone.
    const after = { db1: await pgProbeCommit(s.dbs.db1.url), mq: await myProbeCommit(s.dbs.mq.url) };
    t.diagnostic(`INSERT + COMMIT after the failure: db1 ${after.db1.toFixed(0)} ms, mq ${after.mq.toFixed(0)} ms`);
    for (const [db, ms] of Object.entries(after)) assert.ok(ms < 1000, `${db}: INSERT + COMMIT took ${ms.toFixed(0)} ms after the failure`);
    // The writers that ran meanwhile commit again within a second of the failure, and none was held up much longer than the barrier wait.
    for (const [db, probe] of Object.entries(probes)) {
      await waitFor(`${db}'s writer to commit after the failure`, () => probe.done.some((x) => x.end > exitedAt), 1000);
      assert.equal(probe.failure(), undefined, `${db}'s writer failed: ${probe.failure()?.message}`);
      const longest = Math.max(...probe.done.map((x) => x.end - x.start));
      t.diagnostic(`${db}: ${probe.done.length} commits during and after the run, the longest took ${longest.toFixed(0)} ms`);
      assert.ok(longest < 2000 + 1500, `${db}: no commit was held up longer than the barrier wait (longest ${longest.toFixed(0)} ms)`);
    }
    await assertNoSessionsLeft(s, 3000);
  },
);

void test(
  'dbflow killed (SIGKILL) while it holds barriers: the sessions die with it, and writers on db1 and mq go on within seconds',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireAll(t))) return;
    // db2 stays blocked for longer than the test lasts. One try waits as long as the whole barrier_timeout (lock_timeout), so the
    // barriers on db1 and mq are held without a break while it does (with a shorter lock_timeout a try lets go of them between tries).
    const s = await startBlockedRun(t, { barrierTimeout: '30s', lockTimeout: '30s' });
    await untilDb1Barrier(t, s);

    // Writes on db1 and mq wait: the barriers are held (mq's is taken alongside db1's; a write that got in before it is tried again).
    const pending = {
      db1: (await heldUp('db1', () => pgProbeCommit(s.dbs.db1.url))).write,
      mq: (await heldUp('mq', () => myProbeCommit(s.dbs.mq.url))).write,
    };
    assert.ok(
      s.ports.pg.size > 0 && s.ports.my.size > 0,
      `the run's connections are known: ${JSON.stringify({ pg: [...s.ports.pg], my: [...s.ports.my] })}`,
    );

    const below = descendants(s.sub.pid!);
    s.ports.stop();
    const killedAt = performance.now();
    process.kill(s.sub.pid!, 'SIGKILL');
    const done = await s.sub;
    assert.equal(done.signal, 'SIGKILL', `dbflow ended by SIGKILL (exit ${done.exitCode})`);
    assert.throws(() => process.kill(s.sub.pid!, 0), { code: 'ESRCH' }, 'the dbflow process is gone');
    if (below.length) t.diagnostic(`below dbflow when it was killed: ${below.map((p) => p.cmdline).join('; ')}`);

    // The waiting writes go through, and new ones do at once.
    const state = { db1: 'held up', mq: 'held up' };
    for (const db of ['db1', 'mq'] as const)
      void pending[db].then(
        () => (state[db] = 'committed'),
        (e: Error) => (state[db] = `failed: ${e.message}`),
      );
    const settledIn = await Promise.race([
      Promise.all([pending.db1, pending.mq]).then(() => performance.now() - killedAt),
      sleep(5000, undefined, { ref: false }),
    ]);
    assert.ok(
      settledIn !== undefined,
      `the INSERT + COMMIT held up on db1 and mq went through within 5 s of the kill (${JSON.stringify(state)})`,
    );
    t.diagnostic(`held-up writes committed ${settledIn.toFixed(0)} ms after the kill`);
    const after = { db1: await pgProbeCommit(s.dbs.db1.url), mq: await myProbeCommit(s.dbs.mq.url) };
    for (const [db, ms] of Object.entries(after)) assert.ok(ms < 1000, `${db}: INSERT + COMMIT took ${ms.toFixed(0)} ms after the kill`);
    assert.deepEqual(manifestsUnder(path.join(s.cwd, 'backups')), [], 'no manifest was published');
    await assertNoSessionsLeft(s, 5000);
  },
);
