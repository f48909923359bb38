// Reaping: a run SIGKILLed in its restore-test leaves a scratch database and temporary folders; the next run
// (and prune) reap them and its record reads killed — and nothing of a live run, or of another host's run, is touched.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { scratchDatabaseName, type EngineEvent } from '../../src/index.js';
import { dbflow } from '../helpers/cli.js';
import { leftovers, makeSources, setupCase, signalAt, type CaseSetup, type Driver } from '../helpers/kill-case.js';
import * as myServer from '../helpers/mysql.js';
import * as pgServer from '../helpers/postgres.js';
import { waitFor } from '../helpers/processes.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { tmpDir } from '../helpers/tmp.js';

const restoreTool: Record<'postgres' | 'mysql', string> = { postgres: 'pg_restore', mysql: 'mariadb' };
const restoreStarted = (e: EngineEvent | { type: 'line' }): boolean => e.type === 'step:start' && 'id' in e && e.id === 'restore_test';

// A run record of another process, as `dbflow run` writes it at its start, with a temporary folder and a scratch database of its id.
async function foreignRun(
  t: TestContext,
  c: CaseSetup,
  id: string,
  owner: { pid: number; host: string },
): Promise<{ tmp: string; scratch: string }> {
  const dir = path.join(c.cwd, '.dbflow', 'runs', id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'pipeline.json'), JSON.stringify({ name: 'other', started_at: new Date().toISOString(), owner }));
  const tmp = mkdtempSync(path.join(os.tmpdir(), `dbflow-${id}-`));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const scratch = scratchDatabaseName(id, 'app');
  const server = c.driver === 'postgres' ? pgServer : myServer;
  const create =
    c.driver === 'postgres'
      ? pgServer.withClient(pgServer.PG_URL, (cl) => cl.query(`CREATE DATABASE ${scratch}`))
      : myServer.withConnection(myServer.MY_URL, (cl) => cl.query(`CREATE DATABASE ${scratch}`));
  await create;
  t.after(async () => {
    if (c.driver === 'postgres')
      await pgServer.withClient(pgServer.PG_URL, (cl) => cl.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`));
    else await myServer.withConnection(myServer.MY_URL, (cl) => cl.query(`DROP DATABASE IF EXISTS ${scratch}`));
  });
  assert.deepEqual(await server.databasesStartingWith(scratch), [scratch]);
  return { tmp: path.basename(tmp), scratch };
}

for (const driver of ['postgres', 'mysql'] as const satisfies Driver[]) {
  test(`${driver}: the next run reaps what a run SIGKILLed in its restore-test left, and nothing of live runs`, async (t) => {
    const s3 = await requireS3(t);
    assert.ok(s3);
    t.after(stopS3);
    const sources = await makeSources(t, tmpDir(t), s3);
    const c = await setupCase(tmpDir(t), driver, 'file', sources);

    const killed = await signalAt(
      ['run', c.file, '--json'],
      c,
      { at: restoreStarted, child: restoreTool[driver], signal: 'SIGKILL' },
      true,
    );
    assert.ok(killed.signalled && killed.runId, killed.stderr);
    const runId = killed.runId;
    const left = await leftovers(c, runId);
    assert.deepEqual(left.scratch, [scratchDatabaseName(runId, 'app')], 'the kill left the scratch database');
    assert.ok(left.tmpdirs.length > 0, 'the kill left temporary folders');
    const before = JSON.parse((await dbflow(['runs', '--json'], { cwd: c.cwd })).stdout) as { run_id: string; status: string }[];
    assert.equal(before.find((r) => r.run_id === runId)?.status, 'killed', 'dbflow runs sees at once that its process is gone');

    // A live run of another pipeline (this process), and a run of another host: never reaped.
    const live = await foreignRun(t, c, '20991231T235959Z-aaaa', { pid: process.pid, host: os.hostname() });
    const remote = await foreignRun(t, c, '20991231T235959Z-bbbb', { pid: 999_999_999, host: `not-${os.hostname()}` });

    const next = await dbflow(['run', c.file], { cwd: c.cwd, env: c.env });
    assert.equal(next.exitCode, 0, `the lock is free and the next run succeeds: ${next.stderr}`);
    assert.match(next.stderr, new RegExp(`dropped scratch database ${scratchDatabaseName(runId, 'app')} of a run that died`));
    assert.deepEqual(await leftovers(c, runId), { tmpdirs: [], scratch: [] }, 'the scratch database and the temporary folders are gone');
    for (const other of [live, remote]) {
      const id = other === live ? '20991231T235959Z-aaaa' : '20991231T235959Z-bbbb';
      const kept = await leftovers(c, id);
      assert.deepEqual(kept, { tmpdirs: [other.tmp], scratch: [other.scratch] }, `nothing of run ${id} was touched`);
    }
    const runs = JSON.parse((await dbflow(['runs', '--json'], { cwd: c.cwd })).stdout) as { run_id: string; status: string }[];
    assert.equal(runs.find((r) => r.run_id === runId)?.status, 'killed');
    assert.equal(runs.find((r) => r.run_id === '20991231T235959Z-aaaa')?.status, 'running', 'a live run reads running');
    assert.equal(runs.find((r) => r.run_id === '20991231T235959Z-bbbb')?.status, 'running', "another host's run is not judged here");
    const metrics = readFileSync(path.join(c.cwd, '.dbflow', 'metrics.prom'), 'utf8');
    assert.match(metrics, /^dbflow_runs_total\{pipeline="killpoint",status="killed"\} 1$/m, 'the metrics count the killed run');
  });
}

// A dead run's session, still at work on the server when the next run starts (a run killed while the server
// created its scratch database would see it appear after the reaper looked): ended before the databases are listed.
for (const driver of ['postgres', 'mysql'] as const satisfies Driver[]) {
  test(`${driver}: the next run ends the sessions a dead run still has on the server before it reaps`, async (t) => {
    const s3 = await requireS3(t);
    assert.ok(s3);
    t.after(stopS3);
    const sources = await makeSources(t, tmpDir(t), s3);
    const c = await setupCase(tmpDir(t), driver, 'file', sources);
    const id = '20000101T000000Z-dead';
    const dead = await foreignRun(t, c, id, { pid: 999_999_999, host: os.hostname() });
    // PostgreSQL: the session that creates a scratch database is named after it; MariaDB: a session that uses it.
    const named = new URL(pgServer.PG_URL);
    named.searchParams.set('application_name', dead.scratch);
    const started = Date.now();
    const sleeping = (
      driver === 'postgres'
        ? pgServer.withClient(named.toString(), (cl) => cl.query('SELECT pg_sleep(60)'))
        : myServer.withConnection(myServer.withDatabase(myServer.MY_URL, dead.scratch), (cl) => cl.query('SELECT SLEEP(60)'))
    ).then(
      () => Date.now() - started,
      () => Date.now() - started,
    );
    await waitFor("the dead run's session at work", async () => (await sessionsNamed(driver, dead.scratch)) === 1, 10_000);

    const next = await dbflow(['run', c.file], { cwd: c.cwd, env: c.env });
    assert.equal(next.exitCode, 0, next.stderr);
    assert.match(next.stderr, /ended session \d+ of a run that died/);
    assert.match(next.stderr, new RegExp(`dropped scratch database ${dead.scratch} of a run that died`));
    const ranMs = await sleeping;
    assert.ok(ranMs < 50_000, `the dead run's statement was ended, not left to run its 60 s (${ranMs} ms)`);
    assert.equal(await sessionsNamed(driver, dead.scratch), 0);
    assert.deepEqual((await leftovers(c, id)).scratch, [], 'its scratch database is gone');
  });
}

// Sessions on the shared server named after (PostgreSQL) or using (MariaDB) the database `name`.
async function sessionsNamed(driver: 'postgres' | 'mysql', name: string): Promise<number> {
  if (driver === 'postgres') {
    const { rows } = await pgServer.withClient(pgServer.PG_URL, (cl) =>
      cl.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [name]),
    );
    return rows[0]!.n;
  }
  const [rows] = await myServer.withConnection(myServer.MY_URL, (cl) =>
    cl.query<RowDataPacket[]>('SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?', [name]),
  );
  return Number(rows[0]!.n);
}

test('prune reaps the temporary folders of a run that died and marks it killed', async (t) => {
  const s3 = await requireS3(t);
  assert.ok(s3);
  t.after(stopS3);
  const sources = await makeSources(t, tmpDir(t), s3);
  const c = await setupCase(tmpDir(t), 'sqlite', 'file', sources);
  const killed = await signalAt(['run', c.file, '--json'], c, { at: restoreStarted, delayMs: 5, signal: 'SIGKILL' }, true);
  assert.ok(killed.runId);
  assert.ok((await leftovers(c, killed.runId)).tmpdirs.length > 0, 'the kill left temporary folders');
  const prune = await dbflow(['prune', c.repo, '--keep-last', '5'], { cwd: c.cwd, env: c.env });
  assert.equal(prune.exitCode, 0, prune.stderr);
  assert.deepEqual((await leftovers(c, killed.runId)).tmpdirs, []);
  const result = JSON.parse((await dbflow(['runs', '--json'], { cwd: c.cwd })).stdout) as { run_id: string; status: string }[];
  assert.equal(result.find((r) => r.run_id === killed.runId)?.status, 'killed');
  assert.match(prune.stderr, /marked killed/);
});
