// The fleet: two daemons enqueue each due time once, workers run each job on a worker whose labels match,
// the view (runs, status, workers, metrics) shows every run, and no secret ever passes through Redis.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import {
  allResults,
  enqueuedIds,
  fleetSetup,
  startDaemon,
  startWorker,
  writeHoldingPipeline,
  writeSqlitePipeline,
} from '../helpers/fleet.js';
import { onceAt, OPS_PASSPHRASE, parseMetrics, sampleOf } from '../helpers/ops.js';
import { waitFor } from '../helpers/processes.js';
import { everyValue } from '../helpers/redis.js';

void test(
  'fleet: two daemons enqueue each due time exactly once; each job runs once, on a worker with its labels; runs/status/workers/metrics see every run; no secret in Redis',
  { timeout: 120_000 },
  async (t) => {
    const setup = await fleetSetup(t);
    if (!setup) return;
    const { redis, dir, cleanup } = setup;
    writeSqlitePipeline(dir, 'anywhere', '*/2 * * * * *');
    writeSqlitePipeline(dir, 'eu', '*/2 * * * * *', { region: 'eu' });
    writeSqlitePipeline(dir, 'billing', '*/2 * * * * *', { region: 'eu', network: 'billing' });
    const workers = [
      startWorker(dir, redis.url, 'w-eu', 'region=eu', cleanup),
      startWorker(dir, redis.url, 'w-us', 'region=us', cleanup),
      startWorker(dir, redis.url, 'w-billing', 'region=eu,network=billing', cleanup),
    ];
    await Promise.all(workers.map((w) => w.waitFor(/taking jobs from/)));
    const daemons = [startDaemon(dir, redis.url, 'd1', cleanup), startDaemon(dir, redis.url, 'd2', cleanup)];
    await Promise.all(daemons.map((d) => d.waitFor(/metrics on http/)));

    // While it runs: the live workers and their labels.
    await waitFor(
      'three runs of each pipeline',
      async () => {
        const r = await allResults(redis.client);
        return ['anywhere', 'eu', 'billing'].every((p) => r.filter((x) => x.pipeline === p).length >= 3);
      },
      60_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${[...daemons, ...workers].map((p) => `${p.name}:\n${p.output()}`).join('\n')}`));
    const listed = await dbflow(['workers', '--queue', redis.url, '--json'], { cwd: dir });
    assert.equal(listed.exitCode, 0, listed.stderr);
    const live = JSON.parse(listed.stdout) as { id: string; labels: Record<string, string> }[];
    assert.deepEqual(
      live.map((w) => [w.id, w.labels]),
      [
        ['w-billing', { network: 'billing', region: 'eu' }],
        ['w-eu', { region: 'eu' }],
        ['w-us', { region: 'us' }],
      ],
    );
    // The daemon's metrics count the runs of every worker, labelled with the worker and its labels.
    const metricsUrl = /metrics on (http:\/\/\S+\/metrics)/.exec(daemons[0]!.output())![1]!;
    const families = parseMetrics(await (await fetch(metricsUrl)).text());
    const counted = sampleOf(families, 'dbflow_fleet_runs_total', {
      pipeline: 'billing',
      status: 'success',
      worker: 'w-billing',
      worker_labels: 'network=billing,region=eu',
    });
    assert.ok(counted !== undefined && counted >= 1, `billing runs counted: ${String(counted)}`);
    assert.ok(
      sampleOf(families, 'dbflow_fleet_worker_running', { worker: 'w-us', host: hostname(), worker_labels: 'region=us' }) !== undefined,
    );

    // Both daemons stop scheduling; the workers finish what was enqueued.
    for (const d of daemons) d.proc.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.proc));
    const ids = new Set(daemons.flatMap((d) => enqueuedIds(d.output())));
    await waitFor('every enqueued job to end', async () => (await allResults(redis.client)).length >= ids.size, 30_000);

    const results = await allResults(redis.client);
    assert.ok(results.length >= 9, `${results.length} runs`);
    const seen = results.map((r) => `${r.pipeline}@${Date.parse(r.due_at!)}`);
    // Exactly once: every due time either daemon enqueued ran once, and nothing else ran.
    assert.equal(new Set(seen).size, seen.length, `a due time ran twice: ${seen.join(' ')}`);
    assert.deepEqual([...seen].sort(), [...ids].sort());
    // Each daemon saw each due time (it enqueued it or found it enqueued): they scheduled the same times.
    const [a, b] = daemons.map((d) => new Set(enqueuedIds(d.output())));
    const both = [...a!].filter((id) => b!.has(id));
    assert.ok(both.length >= 6, `the daemons shared too few due times: ${[...a!].join(' ')} / ${[...b!].join(' ')}`);
    // No gap: consecutive due times of a pipeline are 2 s apart.
    for (const p of ['anywhere', 'eu', 'billing']) {
      const due = results
        .filter((r) => r.pipeline === p)
        .map((r) => Date.parse(r.due_at!))
        .sort((x, y) => x - y);
      for (let i = 1; i < due.length; i++)
        assert.equal(due[i]! - due[i - 1]!, 2000, `${p}: due times ${due.map((d) => new Date(d).toISOString()).join(' ')}`);
    }
    // Labels: a job ran only on a worker that has every label it asks for.
    for (const r of results) {
      assert.equal(r.status, 'success', JSON.stringify(r));
      if (r.pipeline === 'eu') assert.ok(['w-eu', 'w-billing'].includes(r.worker), JSON.stringify(r));
      if (r.pipeline === 'billing') assert.equal(r.worker, 'w-billing', JSON.stringify(r));
      // The manifest records the fencing token and the worker.
      const manifest = JSON.parse(readFileSync(fileURLToPath(r.manifest!), 'utf8')) as { run: Record<string, unknown> };
      assert.equal(manifest.run.fencing_token, r.fencing_token);
      assert.equal(manifest.run.worker, r.worker);
      assert.equal(manifest.run.due_at, r.due_at);
    }
    // Fencing tokens of one pipeline grow with every run.
    for (const p of ['anywhere', 'eu', 'billing']) {
      const tokens = results.filter((r) => r.pipeline === p).map((r) => r.fencing_token!);
      assert.equal(new Set(tokens).size, tokens.length, `${p}: ${tokens.join(',')}`);
    }

    // One view: runs and status of the fleet.
    const runs = await dbflow(['runs', '--queue', redis.url, '--json', '--limit', '1000'], { cwd: dir });
    assert.equal(runs.exitCode, 0, runs.stderr);
    assert.equal((JSON.parse(runs.stdout) as unknown[]).length, results.length);
    const status = await dbflow(['status'], { cwd: dir, env: { DBFLOW_QUEUE: redis.url } });
    assert.equal(status.exitCode, 0, status.stdout + status.stderr);
    assert.match(status.stdout, /^billing\s+success .*w-billing/m);

    for (const w of workers) w.proc.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.proc));
    for (const w of workers) assert.match(w.output(), /stopped/);
    // Each worker leaves the audit record of each run it ran, in its own state folder, as `dbflow run` does.
    const audit = readFileSync(path.join(dir, 'state-w-billing', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { command: string; outcome: string; run_id?: string; pipeline?: string });
    assert.deepEqual(
      audit.map((a) => [a.command, a.outcome, a.run_id]).sort(),
      results
        .filter((r) => r.worker === 'w-billing')
        .map((r) => ['run', 'success', r.run_id])
        .sort(),
    );

    // No secret passed through Redis: every key, hash, set and stream entry, read after the runs.
    const all = await everyValue(redis.client);
    assert.ok(all.keys > 10, `only ${all.keys} keys`);
    assert.ok(all.text.includes('TEST_PASSPHRASE'), 'the job names its secret (by variable) …');
    assert.ok(!all.text.includes(OPS_PASSPHRASE), '… but never carries its value');
  },
);

void test(
  'fleet, overlap: queue: a due time that finds its pipeline running waits and runs right after it; one waits, later ones are skipped',
  { timeout: 120_000 },
  async (t) => {
    const setup = await fleetSetup(t);
    if (!setup) return;
    const { redis, dir, cleanup } = setup;
    // Due every 3 s, each run holding for 4 s: every due time finds the previous run going.
    writeHoldingPipeline(dir, 'slow', { holdMs: 4000, schedule: '*/3 * * * * *' });
    const file = path.join(dir, 'pipelines', 'slow.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('timezone: UTC\n', 'timezone: UTC\noverlap: queue\n'));
    const workers = [startWorker(dir, redis.url, 'w-1', '', cleanup), startWorker(dir, redis.url, 'w-2', '', cleanup)];
    await Promise.all(workers.map((w) => w.waitFor(/taking jobs from/)));
    const daemon = startDaemon(dir, redis.url, 'd1', cleanup);
    await daemon.waitFor(/overlap: queue/);
    const said = (): string => [daemon, ...workers].map((p) => `${p.name}:\n${p.output()}`).join('\n');
    await waitFor(
      'four runs and a skipped due time',
      async () => {
        const r = await allResults(redis.client);
        return r.filter((x) => x.status === 'success').length >= 4 && r.some((x) => x.status === 'skipped');
      },
      90_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${said()}`));
    daemon.proc.kill('SIGTERM');
    await daemon.proc;
    // The due time still queued runs after the daemon stopped: every enqueued one ends.
    const enqueued = new Set(enqueuedIds(daemon.output())).size;
    await waitFor('every enqueued due time to end', async () => (await allResults(redis.client)).length >= enqueued, 30_000);
    for (const w of workers) w.proc.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.proc));

    const results = await allResults(redis.client);
    assert.equal(results.length, enqueued, 'each due time ended once: run or skipped');
    const runs = results.filter((r) => r.status === 'success').sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
    for (let i = 1; i < runs.length; i++) {
      const [prev, next] = [runs[i - 1]!, runs[i]!];
      // Never two at once, anywhere in the fleet.
      assert.ok(Date.parse(next.started_at) >= Date.parse(prev.finished_at), `runs overlap: ${JSON.stringify([prev, next])}\n${said()}`);
      // Queued, not skipped: it was due while the previous one ran, and ran once that one ended.
      assert.ok(Date.parse(next.due_at!) < Date.parse(prev.finished_at), `run ${i} was not due during the previous one`);
      assert.ok(
        Date.parse(next.started_at) - Date.parse(prev.finished_at) < 5000,
        `run ${i} started ${Date.parse(next.started_at) - Date.parse(prev.finished_at)} ms after the previous ended`,
      );
    }
    // Every other due time was skipped because one was already queued: never because the run was going.
    const skipped = results.filter((r) => r.status !== 'success');
    assert.ok(skipped.length >= 1);
    for (const s of skipped) assert.match(s.error ?? '', /already queued \(overlap: queue keeps one\)/, JSON.stringify(s));
    assert.match(said(), /queued: its previous run is still going \(overlap: queue\)/);
    assert.equal(await redis.client.keys('dbflow:fleet:queued:*').then((k) => k.length), 0, 'no queued place is left held');
  },
);

void test(
  "fleet: status --queue judges each pipeline against its rpo from every worker's runs, and fails once the workers stop",
  { timeout: 120_000 },
  async (t) => {
    const setup = await fleetSetup(t);
    if (!setup) return;
    const { redis, dir, cleanup } = setup;
    writeSqlitePipeline(dir, 'fresh', '*/2 * * * * *', {}, true);
    const file = path.join(dir, 'pipelines', 'fresh.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^schedule: .*$/m, '$&\nrpo: 8s\nrto: 1m'));
    const workers = [startWorker(dir, redis.url, 'w-a', '', cleanup), startWorker(dir, redis.url, 'w-b', '', cleanup)];
    await Promise.all(workers.map((w) => w.waitFor(/taking jobs from/)));
    const daemon = startDaemon(dir, redis.url, 'd1', cleanup);
    await waitFor('a verified run', async () => (await allResults(redis.client)).some((r) => r.status === 'success'), 60_000).catch(
      (err: Error) => assert.fail(`${err.message}\n${[daemon, ...workers].map((p) => p.output()).join('\n')}`),
    );

    // Fresh: judged from the fleet's results (no run is recorded in this folder's state).
    const fresh = await dbflow(['status', '--queue', redis.url], { cwd: dir });
    assert.equal(fresh.exitCode, 0, fresh.stdout + fresh.stderr);
    assert.match(fresh.stdout, /^fresh\s+8s\s+\S+Z\s+\S+\s+ok\s+\S+\s+1m\s+ok$/m);
    const json = JSON.parse((await dbflow(['status', '--queue', redis.url, '--json', 'pipelines/fresh.yaml'], { cwd: dir })).stdout) as {
      freshness: { pipeline: string; state: string; restores: { database: string; duration_ms: number }[] }[];
    };
    assert.deepEqual(
      json.freshness.map((f) => [f.pipeline, f.state, f.restores.map((r) => r.database)]),
      [['fresh', 'ok', ['demo']]],
    );

    // Every worker stops: the due times pile up unrun, and once the rpo has passed the check fails.
    for (const w of workers) w.proc.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.proc));
    await waitFor(
      'the fleet status to say stale',
      async () => (await dbflow(['status', '--queue', redis.url], { cwd: dir })).exitCode === 1,
      30_000,
    );
    const stale = await dbflow(['status', '--queue', redis.url], { cwd: dir });
    assert.match(stale.stdout, /^fresh\s+8s\s+\S+Z\s+\S+\s+STALE/m);
    assert.match(stale.stderr, /pipeline "fresh" is STALE: its last verified backup is \S+ old/);
    assert.match(stale.stdout, /fleet on redis:\/\/127\.0\.0\.1:\d+\S*: 0 live workers/);
  },
);

void test(
  'fleet: two daemons starting after a due time was missed while none ran enqueue it once, a worker runs it, and a restarted daemon does not again',
  { timeout: 120_000 },
  async (t) => {
    const setup = await fleetSetup(t);
    if (!setup) return;
    const { redis, dir, cleanup } = setup;
    // The pipeline ran before in the fleet (its result is in the stream)…
    writeSqlitePipeline(dir, 'nightly', onceAt(new Date(Date.now() + 3_600_000)));
    const byHand = await dbflow(['run', path.join('pipelines', 'nightly.yaml'), '--queue', redis.url], {
      cwd: dir,
      env: { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: path.join(dir, 'state-hand') },
    });
    assert.equal(byHand.exitCode, 0, byHand.stderr);
    // …then its due time passed while no daemon ran.
    const due = new Date(Math.ceil((Date.now() + 500) / 1000) * 1000);
    writeSqlitePipeline(dir, 'nightly', onceAt(due));
    await new Promise((resolve) => setTimeout(resolve, due.getTime() + 1500 - Date.now()));

    const worker = startWorker(dir, redis.url, 'w-1', '', cleanup);
    await worker.waitFor(/taking jobs from/);
    const daemons = [startDaemon(dir, redis.url, 'd1', cleanup), startDaemon(dir, redis.url, 'd2', cleanup)];
    const id = `nightly@${due.getTime()}`;
    for (const d of daemons) await d.waitFor(new RegExp(`\\[nightly\\] catching up: the run due at ${due.toISOString()} was missed`));
    await waitFor('the caught-up job to run', async () => (await allResults(redis.client)).some((r) => r.job_id === id), 40_000).catch(
      (err: Error) => assert.fail(`${err.message}\n${daemons.map((d) => d.output()).join('\n')}\n${worker.output()}`),
    );
    const ids = daemons.flatMap((d) => enqueuedIds(d.output()));
    assert.deepEqual(ids, [id, id], 'both daemons asked for the missed due time, under one job id');
    assert.equal(daemons.filter((d) => new RegExp(`\\] enqueued ${id} `).test(d.output())).length, 1, 'one of them enqueued it');
    const caught = (await allResults(redis.client)).filter((r) => r.pipeline === 'nightly');
    assert.deepEqual(
      caught.map((r) => [r.status, r.due_at ?? null]),
      [
        ['success', null],
        ['success', due.toISOString()],
      ],
    );
    // A daemon started again finds that due time's result: nothing more.
    daemons[0]!.proc.kill('SIGTERM');
    await daemons[0]!.proc;
    const again = startDaemon(dir, redis.url, 'd1-again', cleanup);
    await again.waitFor(/nightly\.yaml \(nightly\): scheduled/);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.doesNotMatch(again.output(), /catching up/);
    for (const p of [again, daemons[1]!, worker]) p.proc.kill('SIGTERM');
    await Promise.all([again.proc, daemons[1]!.proc, worker.proc]);
  },
);
