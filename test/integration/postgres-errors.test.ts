// Failures of PostgreSQL backups through the CLI: each is exit 1, a clear message, no stack, nothing published, nothing left on the server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { escapeRegExp, hasStackTrace, spawnDbflow } from '../helpers/cli.js';
import {
  databasesStartingWith,
  PG_URL,
  requireBackupTools,
  scratchDatabase,
  throwawayPostgres,
  withClient,
  withDatabase,
} from '../helpers/postgres.js';
import { seedShop } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline, pgDumpBelow } from '../helpers/postgres-run.js';
import { tmpDir } from '../helpers/tmp.js';
import { type BackupRun, manifestsUnder, readManifest, runBackup, runIdOf, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { bytesWritten, descendants, endOf, freePort, type ProcessInfo, waitFor } from '../helpers/processes.js';

const MINUTE = 60_000;

// A failed run: exit code 1, every pattern in its output, no stack trace, no manifest, no scratch database left.
async function assertFailedCleanly(
  r: BackupRun,
  cwd: string,
  patterns: RegExp[],
  server: { url: string; password?: string } = { url: PG_URL },
): Promise<string> {
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.exitCode, 1, output);
  for (const p of patterns) assert.match(output, p);
  assert.ok(!hasStackTrace(output), `no stack trace:\n${output}`);
  assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), [], 'no manifest was published');
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId), server.url, server.password), [], 'no scratch database is left');
  return output;
}

void test('an unreachable server: "cannot connect to PostgreSQL"', { timeout: MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const port = await freePort();
  const cwd = tmpDir(t);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres?connect_timeout=5`;
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url })), backupEnv());
  await assertFailedCleanly(r, cwd, [/cannot connect to PostgreSQL/, new RegExp(`127\\.0\\.0\\.1:${port}`)]);
});

void test('a database that does not exist: "does not exist", naming it', { timeout: MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const name = `dbflow_test_missing_${randomBytes(4).toString('hex')}`;
  const cwd = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: withDatabase(PG_URL, name) })), backupEnv());
  await assertFailedCleanly(r, cwd, [new RegExp(`"${name}" does not exist`)]);
  assert.deepEqual(await databasesStartingWith(name), [], 'nothing created it');
});

void test('no pg_dump in bin_dir: says which program is missing and how to install it', { timeout: MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const db = await scratchDatabase(t);
  await seedShop(db.pool, { rows: 100 });
  const cwd = tmpDir(t);
  const empty = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: db.url, options: { bin_dir: empty } })), backupEnv());
  await assertFailedCleanly(r, cwd, [/pg_dump/, /not found/, /install/, new RegExp(escapeRegExp(empty))]);
});

void test(
  'pg_dump killed while it streams: the run fails, names pg_dump and the signal, publishes nothing',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seedShop(db.pool, { rows: 20_000 });
    const cwd = tmpDir(t);
    // The throttle holds the stream back, so pg_dump is still writing when it is killed.
    const file = writePipeline(cwd, backupPipeline({ url: db.url, throttleMs: 100 }));
    const sub = spawnDbflow(['run', file], { cwd, env: backupEnv() });
    t.after(() => void sub.kill('SIGKILL'));
    const exited = endOf(sub);
    const dump = await waitFor(
      'pg_dump to stream',
      () => {
        const p = pgDumpBelow(sub.pid!);
        return p && bytesWritten(p.pid) > 256 * 1024 && p;
      },
      60_000,
      exited,
    );
    process.kill(dump.pid, 'SIGKILL');
    const r = await exitWithin(sub, 20_000, 'after its pg_dump was killed');
    await assertFailedCleanly(r, cwd, [/pg_dump/, /killed|signal/i]);
    // Its sessions (the snapshot's, pg_dump's) end with it.
    const sessions = (): Promise<number> =>
      withClient(PG_URL, (c) =>
        c.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'dbflow%'", [
          db.name,
        ]),
      ).then((res) => Number(res.rows[0]!.n));
    await waitFor("the run's sessions to end", async () => (await sessions()) === 0, 10_000);
  },
);

void test(
  'a table dropped between snapshot and dump (lock_tables: false): the dump fails naming the table',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seedShop(db.pool, { rows: 500 });
    const cwd = tmpDir(t);
    const report = path.join(cwd, 'drop.json');
    const drop = { id: 'drop', uses: 'pg-sql', with: { url: db.url, sql: 'DROP TABLE public.order_items', lock_timeout: '3s', report } };
    // jobs: 1 — one session counts; without lock_tables it imports the snapshot and ends before the dump.
    const yaml = backupPipeline({ url: db.url, options: { lock_tables: false, jobs: 1 }, between: [drop] });
    const r = await runBackup(cwd, writePipeline(cwd, yaml), backupEnv());
    const outcome = JSON.parse(readFileSync(report, 'utf8')) as { ok: boolean; error?: string };
    assert.deepEqual(outcome, { ok: true }, 'with lock_tables: false the snapshot does not keep DROP TABLE waiting');
    await assertFailedCleanly(r, cwd, [/order_items/, /dropped|does not exist/]);
  },
);

void test(
  'with lock_tables (the default), DROP TABLE waits for the backup: a 1 s lock_timeout fails it, and the backup verifies',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    const shop = await seedShop(db.pool, { rows: 500 });
    const cwd = tmpDir(t);
    const report = path.join(cwd, 'drop.json');
    const drop = { id: 'drop', uses: 'pg-sql', with: { url: db.url, sql: 'DROP TABLE public.order_items', lock_timeout: '1s', report } };
    const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: db.url, between: [drop] })), backupEnv());
    const outcome = JSON.parse(readFileSync(report, 'utf8')) as { ok: boolean; error?: string; code?: string };
    assert.equal(outcome.ok, false, 'the DROP did not get its lock');
    assert.equal(outcome.code, '55P03');
    assert.match(outcome.error ?? '', /lock timeout/);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const m = readManifest(cwd, r.runId);
    assert.equal(m.status, 'verified');
    assert.deepEqual(Object.keys(m.databases.app!.tables).sort(), shop.tables);
    const { rows } = await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM public.order_items');
    assert.ok(Number(rows[0]!.n) > 0, 'the table is still there');
  },
);

void test('a wrong password: "password authentication failed", and the password is not shown', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const server = await throwawayPostgres(t);
  if (!server) return;
  const cwd = tmpDir(t);
  const wrong = `wrong-${randomBytes(8).toString('hex')}`;
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: server.url, password: true })), backupEnv(wrong));
  const output = await assertFailedCleanly(r, cwd, [/password authentication failed/, /"postgres"/], server);
  assert.ok(!output.includes(wrong), 'the password is not in the output');
});

// The result of a CLI run that must end within `ms` (else what is still running below it fails the test).
async function exitWithin(sub: ReturnType<typeof spawnDbflow>, ms: number, after: string): Promise<BackupRun> {
  const done = await Promise.race([sub, sleep(ms, undefined, { ref: false }).then(() => undefined)]);
  if (!done) {
    const left = descendants(sub.pid!).map((p) => p.cmdline);
    sub.kill('SIGKILL');
    assert.fail(`the CLI did not exit within ${ms / 1000} s ${after}; still running below it: ${JSON.stringify(left)}`);
  }
  const r = { exitCode: done.exitCode ?? -1, stdout: String(done.stdout), stderr: String(done.stderr) };
  return { ...r, runId: runIdOf(r.stdout) };
}

// Starts a backup of a 20k-order shop and waits until restore-test's pg_restore runs; returns the CLI and that process.
async function untilRestoring(t: TestContext): Promise<{ sub: ReturnType<typeof spawnDbflow>; cwd: string; pgRestore: ProcessInfo }> {
  const db = await scratchDatabase(t);
  await seedShop(db.pool, { rows: 20_000 });
  const cwd = tmpDir(t);
  const sub = spawnDbflow(['run', writePipeline(cwd, backupPipeline({ url: db.url }))], { cwd, env: backupEnv() });
  t.after(() => void sub.kill('SIGKILL'));
  const exited = endOf(sub);
  const running = (): ProcessInfo | undefined =>
    descendants(sub.pid!).find((p) => p.comm === 'pg_restore' && path.basename(p.exe) === 'pg_restore');
  const pgRestore = await waitFor('pg_restore to run', running, 60_000, exited);
  return { sub, cwd, pgRestore };
}

void test(
  'pg_restore killed during restore-test: the run fails and ends, and the scratch database is dropped',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const { sub, cwd, pgRestore } = await untilRestoring(t);
    process.kill(pgRestore.pid, 'SIGKILL');
    const r = await exitWithin(sub, 20_000, 'after its pg_restore was killed');
    await assertFailedCleanly(r, cwd, [/pg_restore/, /killed|signal/i]);
  },
);

void test('interrupted while restore-test restores: exit 130, and its scratch database is dropped', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const { sub, cwd } = await untilRestoring(t);
  sub.kill('SIGINT');
  const r = await exitWithin(sub, 20_000, 'of SIGINT');
  assert.equal(r.exitCode, 130, `${r.stdout}\n${r.stderr}`);
  assert.ok(!hasStackTrace(`${r.stdout}\n${r.stderr}`));
  assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), []);
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), [], 'the scratch database was dropped');
});
