// The fleet under faults: a worker killed or paused mid-run, a daemon killed, Redis restarted; and `dbflow run --queue`.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import {
  allResults,
  enqueuedIds,
  fleetSetup,
  startDaemon,
  startWorker,
  writeHoldingPipeline,
  writeSqlitePipeline,
  type FleetProcess,
} from '../helpers/fleet.js';
import { OPS_PASSPHRASE, sleepLog } from '../helpers/ops.js';
import type { FleetResult } from '../../src/ops/fleet/streams.js';
import { waitFor } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { tmpDir } from '../helpers/tmp.js';

/** The run ids a `sleep` step's log says started. */
function startedRuns(log: string): string[] {
  return sleepLog(log)
    .filter((l) => l.what === 'start')
    .map((l) => l.run);
}

/** The run folders in the repository of `pipeline`, and whether each holds a manifest. */
function runFolders(dir: string, pipeline: string): Map<string, boolean> {
  const repo = path.join(dir, 'pipelines', 'backups', pipeline);
  const out = new Map<string, boolean>();
  for (const id of existsSync(repo) ? readdirSync(repo) : []) out.set(id, existsSync(path.join(repo, id, 'manifest.json')));
  return out;
}

function said(...ps: FleetProcess[]): string {
  return ps.map((p) => `--- ${p.name}:\n${p.output()}`).join('\n');
}

// A private Redis, worker w-a, daemon d1 and a one-shot pipeline `name` whose last step holds `holdMs`: returned once
// the run has reached that step on w-a (undefined when there is no redis-server and the test was skipped).
async function midRun(t: TestContext, name: string, holdMs: number, stateFolder?: string) {
  const setup = await fleetSetup(t);
  if (!setup) return undefined;
  const { redis, dir, cleanup } = setup;
  mkdirSync(path.join(dir, 'pipelines'));
  const stateDir = stateFolder === undefined ? undefined : path.join(dir, stateFolder);
  const a = startWorker(dir, redis.url, 'w-a', '', cleanup, stateDir === undefined ? undefined : { stateDir });
  await a.waitFor(/taking jobs from/);
  const daemon = startDaemon(dir, redis.url, 'd1', cleanup);
  await daemon.waitFor(/watching pipelines/);
  const log = writeHoldingPipeline(dir, name, { holdMs });
  await waitFor('the run to reach its last step on w-a', () => startedRuns(log).length === 1, 45_000).catch((err: Error) =>
    assert.fail(`${err.message}\n${said(daemon, a)}`),
  );
  return { redis, dir, cleanup, a, daemon, log, stateDir: stateDir! };
}

void test(
  'fleet: a worker SIGKILLed mid-run: the job completes on another worker after stall detection; the killed run publishes nothing and is reaped',
  { timeout: 120_000 },
  async (t) => {
    // Both workers keep their run records in one state folder, as two workers of one machine do.
    const started = await midRun(t, 'held', 4000, 'state');
    if (!started) return;
    const { redis, dir, cleanup, a, daemon, log, stateDir } = started;
    const b = startWorker(dir, redis.url, 'w-b', '', cleanup, { stateDir });
    await b.waitFor(/taking jobs from/);
    a.proc.kill('SIGKILL');
    await a.proc;
    const killedRun = startedRuns(log)[0]!;
    await waitFor('the job to complete on w-b', async () => (await allResults(redis.client)).length === 1, 40_000).catch((err: Error) =>
      assert.fail(`${err.message}\n${said(daemon, a, b)}`),
    );
    const [result] = await allResults(redis.client);
    assert.equal(result!.worker, 'w-b', JSON.stringify(result));
    assert.equal(result!.status, 'success', `${JSON.stringify(result)}\n${said(b)}`);
    assert.equal(result!.job_id, enqueuedIds(daemon.output())[0]);
    assert.ok(result!.fencing_token! >= 2, `w-b took the lease after w-a: token ${result!.fencing_token}`);
    // The killed run left its upload but no manifest; only w-b's run is a backup.
    const folders = runFolders(dir, 'held');
    assert.equal(folders.get(killedRun), false, JSON.stringify([...folders]));
    assert.equal(folders.get(result!.run_id), true);
    const listed = await dbflow(['backups', 'list', path.join(dir, 'pipelines', 'backups', 'held'), '--json'], { cwd: dir });
    const backups = JSON.parse(listed.stdout) as { backups: { run_id?: string }[]; orphans: unknown[] };
    assert.deepEqual(
      backups.backups.map((x) => x.run_id),
      [result!.run_id],
      listed.stdout,
    );
    // Reaped as on one machine: the next run of the pipeline marked the killed run's record.
    const record = JSON.parse(readFileSync(path.join(stateDir, 'runs', killedRun, 'result.json'), 'utf8')) as { status: string };
    assert.equal(record.status, 'killed');
    b.proc.kill('SIGTERM');
    daemon.proc.kill('SIGTERM');
    await Promise.all([b.proc, daemon.proc]);
  },
);

void test(
  'fleet: a worker paused (SIGSTOP) past its lease: another takes the job with a greater fencing token; resumed (SIGCONT), the paused run publishes nothing',
  { timeout: 120_000 },
  async (t) => {
    const started = await midRun(t, 'paused', 3000);
    if (!started) return;
    const { redis, dir, cleanup, a, daemon, log } = started;
    const pausedRun = startedRuns(log)[0]!;
    const tokenA = Number(/^(\d+) /.exec((await redis.client.get((await redis.client.keys('dbflow:fleet:lease:*'))[0]!)) ?? '')?.[1]);
    a.proc.kill('SIGSTOP');
    const b = startWorker(dir, redis.url, 'w-b', '', cleanup);
    // w-b finds the job stalled, waits for w-a's lease to expire, takes it and starts the run again.
    await waitFor('w-b to start the run again', () => startedRuns(log).length === 2, 40_000).catch((err: Error) =>
      assert.fail(`${err.message}\n${said(daemon, a, b)}`),
    );
    // w-a wakes up while w-b runs: its sleep is over, it would publish next.
    a.proc.kill('SIGCONT');
    await waitFor('the job to complete on w-b', async () => (await allResults(redis.client)).some((r) => r.worker === 'w-b'), 40_000);
    await a.waitFor(/was taken over by another run/, 20_000);
    await waitFor('w-a to end its run', () => /\[paused\] run \S+ (cancelled|failed)/.test(a.output()), 20_000).catch((err: Error) =>
      assert.fail(`${err.message}\n${said(a)}`),
    );
    const results = await allResults(redis.client);
    const byB = results.find((r) => r.worker === 'w-b')!;
    assert.equal(byB.status, 'success', said(b));
    assert.equal(byB.fencing_token, tokenA + 1);
    const byA = results.find((r) => r.worker === 'w-a');
    if (byA) assert.notEqual(byA.status, 'success', JSON.stringify(byA));
    const folders = runFolders(dir, 'paused');
    assert.equal(folders.get(pausedRun), false, `the paused run published: ${JSON.stringify([...folders])}`);
    assert.equal(folders.get(byB.run_id), true);
    const manifest = JSON.parse(readFileSync(fileURLToPath(byB.manifest!), 'utf8')) as { run: { fencing_token: number; worker: string } };
    assert.deepEqual([manifest.run.fencing_token, manifest.run.worker], [tokenA + 1, 'w-b']);
    for (const p of [a, b, daemon]) p.proc.kill('SIGTERM');
    await Promise.all([a.proc, b.proc, daemon.proc]);
  },
);

/** Asserts that each pipeline's due times in `results` are consecutive (`everyMs` apart) and each ran once. */
function assertEveryDueOnce(
  results: { pipeline: string; due_at?: string }[],
  pipelines: string[],
  everyMs: number,
  ids: Set<string>,
): void {
  const seen = results.map((r) => `${r.pipeline}@${Date.parse(r.due_at!)}`);
  assert.equal(new Set(seen).size, seen.length, `a due time ran twice: ${seen.join(' ')}`);
  assert.deepEqual([...seen].sort(), [...ids].sort(), 'the runs are the due times the daemons enqueued');
  for (const p of pipelines) {
    const due = results
      .filter((r) => r.pipeline === p)
      .map((r) => Date.parse(r.due_at!))
      .sort((x, y) => x - y);
    for (let i = 1; i < due.length; i++)
      assert.equal(due[i]! - due[i - 1]!, everyMs, `${p}: a due time was missed: ${due.map((d) => new Date(d).toISOString()).join(' ')}`);
  }
}

// The results that are neither a success nor a due time skipped by the pipelines' overlap: skip because its previous
// run still held the lease (on a loaded machine a run may outlast the 2 s between due times): accounted for, not lost.
function unaccounted(results: FleetResult[]): FleetResult[] {
  return results.filter(
    (r) => r.status !== 'success' && !(r.status === 'skipped' && /is already running in the fleet/.test(r.error ?? '')),
  );
}

void test('fleet: a daemon SIGKILLed: the other keeps scheduling, without a missed or doubled due time', { timeout: 90_000 }, async (t) => {
  const setup = await fleetSetup(t);
  if (!setup) return;
  const { redis, dir, cleanup } = setup;
  for (const p of ['one', 'two']) writeSqlitePipeline(dir, p, '*/2 * * * * *');
  const w = startWorker(dir, redis.url, 'w1', '', cleanup, { extra: ['--concurrency', '2'] });
  await w.waitFor(/taking jobs from/);
  const d1 = startDaemon(dir, redis.url, 'd1', cleanup);
  const d2 = startDaemon(dir, redis.url, 'd2', cleanup);
  await waitFor('four runs', async () => (await allResults(redis.client)).length >= 4, 30_000);
  d1.proc.kill('SIGKILL');
  await d1.proc;
  const killedAt = Date.now();
  await waitFor(
    'runs due after the kill',
    async () => (await allResults(redis.client)).filter((r) => Date.parse(r.due_at!) > killedAt + 4000).length >= 2,
    30_000,
  );
  d2.proc.kill('SIGTERM');
  await d2.proc;
  const ids = new Set([...enqueuedIds(d1.output()), ...enqueuedIds(d2.output())]);
  await waitFor('every enqueued job to end', async () => (await allResults(redis.client)).length >= ids.size, 30_000);
  const results = await allResults(redis.client);
  assert.deepEqual(unaccounted(results), [], said(w));
  assertEveryDueOnce(results, ['one', 'two'], 2000, ids);
  assert.ok(results.some((r) => Date.parse(r.due_at!) > killedAt + 4000));
  w.proc.kill('SIGTERM');
  await w.proc;
});

void test(
  'fleet: Redis restarted under load: workers and daemons reconnect; nothing is lost or run twice',
  { timeout: 120_000 },
  async (t) => {
    const redis = await startRedis(t, { persistent: true });
    if (!redis) return;
    const dir = tmpDir(t);
    const cleanup = (fn: () => void): void => void t.after(fn);
    const pipelines = ['r1', 'r2', 'r3'];
    for (const p of pipelines) writeSqlitePipeline(dir, p, '*/2 * * * * *');
    const workers = [startWorker(dir, redis.url, 'w1', '', cleanup), startWorker(dir, redis.url, 'w2', '', cleanup)];
    await Promise.all(workers.map((w) => w.waitFor(/taking jobs from/)));
    const daemons = [startDaemon(dir, redis.url, 'd1', cleanup), startDaemon(dir, redis.url, 'd2', cleanup)];
    await waitFor('six runs', async () => (await allResults(redis.client)).length >= 6, 30_000);
    await redis.stop();
    const down = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await redis.start();
    const upAt = Date.now();
    await waitFor(
      'runs due after the restart',
      async () => (await allResults(redis.client)).filter((r) => Date.parse(r.due_at!) > upAt + 2000).length >= 3,
      40_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${said(...daemons, ...workers)}`));
    for (const d of daemons) d.proc.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.proc));
    const ids = new Set(daemons.flatMap((d) => enqueuedIds(d.output())));
    await waitFor('every enqueued job to end', async () => (await allResults(redis.client)).length >= ids.size, 40_000).catch(
      (err: Error) => assert.fail(`${err.message}\n${said(...daemons, ...workers)}`),
    );
    const results = await allResults(redis.client);
    assertEveryDueOnce(results, pipelines, 2000, ids);
    assert.deepEqual(unaccounted(results), []);
    assert.ok(results.filter((r) => r.status === 'success').length >= results.length / 2, JSON.stringify(results));
    const during = results.filter((r) => Date.parse(r.due_at!) >= down && Date.parse(r.due_at!) <= upAt);
    assert.ok(during.length >= 3, `the due times while Redis was down ran after it came back: ${during.length}`);
    const delays = during.map((r) => r.start_delay_ms!).sort((x, y) => x - y);
    console.log(
      `# redis restart: ${results.length} runs, ${ids.size} due times enqueued, none lost or doubled; Redis down ${((upAt - down) / 1000).toFixed(1)} s, ${during.length} due meanwhile started ${(delays[0]! / 1000).toFixed(1)}–${(delays.at(-1)! / 1000).toFixed(1)} s late`,
    );
    for (const w of workers) w.proc.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.proc));
    for (const d of daemons) assert.match(d.output(), /connected again/);
  },
);

// A private Redis, and a run of a one-shot pipeline `name` on "machine a" (`dbflow run --queue`) that holds the fleet
// lease until the file `release` exists: returned once it holds it. `env(machine)`: a machine's own lock and state
// folders, so that only the fleet's lease can serialize two of them.
async function heldByHand(t: TestContext, name: string) {
  const redis = await startRedis(t);
  if (!redis) return undefined;
  const dir = tmpDir(t);
  const release = path.join(dir, 'release');
  const log = writeHoldingPipeline(dir, name, { holdMs: 60_000, schedule: '0 0 1 1 *', untilFile: release });
  const file = path.join(dir, 'pipelines', `${name}.yaml`);
  const env = (machine: string): Record<string, string> => ({
    TEST_PASSPHRASE: OPS_PASSPHRASE,
    DBFLOW_LOCK_DIR: path.join(dir, `locks-${machine}`),
    DBFLOW_STATE_DIR: path.join(dir, `state-${machine}`),
  });
  const first = spawnDbflow(['run', file, '--queue', redis.url], { cwd: dir, env: env('a') });
  t.after(() => void first.kill('SIGKILL'));
  await waitFor('the first run to hold the lease', () => startedRuns(log).length === 1, 30_000);
  return { redis, dir, release, file, env, first };
}

void test(
  'dbflow run --queue (and DBFLOW_QUEUE) honours the fleet lease on any machine and records its fencing token',
  { timeout: 60_000 },
  async (t) => {
    const started = Date.now();
    const held = await heldByHand(t, 'byhand');
    if (!held) return;
    const { redis, dir, release, file, env, first } = held;
    const second = await dbflow(['run', file], { cwd: dir, env: { ...env('b'), DBFLOW_QUEUE: redis.url } });
    assert.equal(second.exitCode, 75, second.stderr);
    // The pipeline's first token: Redis's clock in milliseconds (a counter that restarts at 1 could meet old tokens again).
    const firstToken = Number(/already running in the fleet: pid \d+ \(dbflow run\) on .*fencing token (\d+)/.exec(second.stderr)?.[1]);
    assert.ok(firstToken >= started && firstToken <= Date.now(), `${firstToken}: ${second.stderr}`);
    writeFileSync(release, '');
    // Released: the first run ends and publishes; the next run, on the other machine, takes the lease with the next token.
    const r = await first;
    assert.equal(r.exitCode, 0, String(r.stderr));
    const third = await dbflow(['run', file, '--json'], { cwd: dir, env: { ...env('b'), DBFLOW_QUEUE: redis.url } });
    assert.equal(third.exitCode, 0, third.stderr);
    const manifests = [...runFolders(dir, 'byhand')].filter(([, m]) => m).map(([id]) => id);
    assert.equal(manifests.length, 2);
    const tokens = manifests.map(
      (id) =>
        (
          JSON.parse(readFileSync(path.join(dir, 'pipelines', 'backups', 'byhand', id, 'manifest.json'), 'utf8')) as {
            run: { fencing_token: number };
          }
        ).run.fencing_token,
    );
    assert.deepEqual(
      tokens.sort((x, y) => x - y),
      [firstToken, firstToken + 1],
    );
    const runs = await dbflow(['runs', '--queue', redis.url, '--json'], { cwd: dir });
    assert.deepEqual(
      (JSON.parse(runs.stdout) as { status: string; fencing_token: number }[]).map((x) => [x.status, x.fencing_token]),
      [
        ['success', firstToken + 1],
        ['success', firstToken],
      ],
    );
  },
);

void test(
  'a run paused while Redis lost its data (a restart without persistence) publishes nothing when it wakes: the next run took a greater fencing token',
  { timeout: 60_000 },
  async (t) => {
    const held = await heldByHand(t, 'lost');
    if (!held) return;
    const { redis, dir, release, file, env, first } = held;
    const [leaseKey] = await redis.client.keys('dbflow:fleet:lease:*');
    const tokenA = Number(/^(\d+) /.exec((await redis.client.get(leaseKey!)) ?? '')?.[1]);
    first.kill('SIGSTOP');
    // Redis restarts empty: the lease and the token counter are gone.
    await redis.stop();
    await redis.start();
    assert.equal(await redis.client.exists(leaseKey!), 0);
    writeFileSync(release, '');
    const second = await dbflow(['run', file], { cwd: dir, env: { ...env('b'), DBFLOW_QUEUE: redis.url } });
    assert.equal(second.exitCode, 0, second.stderr);
    const [byB = ''] = readdirSync(path.join(dir, 'state-b', 'runs'));
    // The paused run wakes with its hold over and the lease free: it must not take it back and publish.
    first.kill('SIGCONT');
    const a = await first;
    assert.notEqual(a.exitCode, 0, `${String(a.stdout)}\n${String(a.stderr)}`);
    assert.match(String(a.stdout), /writing the manifest failed: .*\(fencing token \d+\) was taken over by another run/);
    const published = [...runFolders(dir, 'lost')].filter(([, m]) => m).map(([id]) => id);
    assert.deepEqual(published, [byB], `only the run after the loss published: ${JSON.stringify([...runFolders(dir, 'lost')])}`);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'pipelines', 'backups', 'lost', byB, 'manifest.json'), 'utf8')) as {
      run: { fencing_token: number };
    };
    assert.ok(manifest.run.fencing_token > tokenA, `token ${manifest.run.fencing_token} after ${tokenA}`);
  },
);
