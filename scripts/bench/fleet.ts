// Bench section 14: the fleet on one machine around a private Redis: jobs per second through the queue with
// no-op pipelines, and how long after its due time a scheduled run starts with 1, 3 and 10 workers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadPipelineText } from '../../src/engine/load.js';
import { Enqueuer } from '../../src/ops/fleet/jobs.js';
import { readResults, type FleetResult } from '../../src/ops/fleet/streams.js';
import { freePort } from '../../src/plugins/free-port.js';
import { OPS_STEPS_PLUGIN } from '../../test/helpers/ops.js';
import { percentile } from './mysql-figures.js';
import type { SectionResult } from './postgres.js';
import { bounded, figure, notAvailable, type Table } from './report.js';
import { BenchError, CLI } from './util.js';

const SECTION = '14 fleet';
const THROUGHPUT_JOBS = 400;
const THROUGHPUT_WORKERS = 3;
const DELAY_PIPELINES = 10;
const DELAY_EVERY_S = 2;
const DELAY_SECONDS = 24;

function noop(name: string, schedule?: string): string {
  return `version: 1
name: ${name}
${schedule ? `schedule: "${schedule}"\n` : ''}plugins: [${JSON.stringify(OPS_STEPS_PLUGIN)}]
steps:
  - { id: noop, uses: sleep, with: { ms: 0 } }
`;
}

async function startRedis(dir: string): Promise<{ url: string; redis: Redis; stop: () => void }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    proc.on('exit', () => reject(new BenchError(`redis-server ended:\n${out}`)));
  });
  const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null });
  return { url: `redis://127.0.0.1:${port}`, redis, stop: () => void (redis.disconnect(), proc.kill('SIGTERM')) };
}

function startWorkers(n: number, url: string, dir: string, concurrency: number): ChildProcess[] {
  return Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [CLI, 'worker', '--queue', url, '--id', `bench-w${i}`, '--concurrency', String(concurrency)], {
      env: { ...process.env, DBFLOW_STATE_DIR: path.join(dir, `state-w${i}`), DBFLOW_LOCK_DIR: path.join(dir, 'locks') },
      stdio: 'ignore',
    }),
  );
}

async function stopAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGTERM');
        }),
    ),
  );
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new BenchError(`${SECTION}: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Jobs per second: THROUGHPUT_JOBS no-op jobs (distinct pipelines) enqueued at once, taken by workers already waiting. */
async function throughputRound(dir: string, log: (s: string) => void): Promise<{ jobsPerSecond: number; seconds: number }> {
  const r = await startRedis(dir);
  const workers = startWorkers(THROUGHPUT_WORKERS, r.url, dir, 4);
  try {
    await waitUntil('the workers', async () => (await r.redis.scard('dbflow:fleet:workers')) === THROUGHPUT_WORKERS, 30_000);
    const loaded = await Promise.all(
      Array.from({ length: THROUGHPUT_JOBS }, (_, i) => loadPipelineText(path.join(dir, `noop${i}.yaml`), noop(`noop${i}`), dir)),
    );
    const enqueuer = new Enqueuer(r.redis);
    const due = new Date();
    const t0 = performance.now();
    await Promise.all(loaded.map((l) => enqueuer.enqueue(l, due)));
    await waitUntil('every job', async () => (await r.redis.xlen('dbflow:fleet:results')) >= THROUGHPUT_JOBS, 300_000);
    const seconds = (performance.now() - t0) / 1000;
    const failed = (await readResults(r.redis, THROUGHPUT_JOBS)).filter((x) => x.status !== 'success');
    if (failed.length) throw new BenchError(`${SECTION}: ${failed.length} no-op jobs did not succeed: ${JSON.stringify(failed[0])}`);
    await enqueuer.close();
    log(`  ${THROUGHPUT_JOBS} no-op jobs through ${THROUGHPUT_WORKERS} workers (concurrency 4) in ${seconds.toFixed(1)} s`);
    return { jobsPerSecond: THROUGHPUT_JOBS / seconds, seconds };
  } finally {
    await stopAll(workers);
    r.stop();
  }
}

/** Start delays: DELAY_PIPELINES no-op pipelines due every DELAY_EVERY_S s, scheduled by one daemon, run by `n` workers. */
async function delayRound(n: number, dir: string, log: (s: string) => void): Promise<number[]> {
  const r = await startRedis(dir);
  const pipelines = path.join(dir, `pipelines-${n}`);
  mkdirSync(pipelines);
  for (let i = 0; i < DELAY_PIPELINES; i++)
    writeFileSync(path.join(pipelines, `d${i}.yaml`), noop(`d${i}`, `*/${DELAY_EVERY_S} * * * * *`));
  const workers = startWorkers(n, r.url, dir, 2);
  const daemon = spawn(process.execPath, [CLI, 'daemon', pipelines, '--queue', r.url, '--no-metrics'], {
    env: { ...process.env, DBFLOW_STATE_DIR: path.join(dir, `state-d${n}`) },
    stdio: 'ignore',
  });
  try {
    await waitUntil('the workers', async () => (await r.redis.scard('dbflow:fleet:workers')) === n, 60_000);
    await waitUntil('the first runs', async () => (await r.redis.xlen('dbflow:fleet:results')) >= DELAY_PIPELINES, 60_000);
    const from = Date.now();
    await new Promise((resolve) => setTimeout(resolve, DELAY_SECONDS * 1000));
    const results: FleetResult[] = (await readResults(r.redis, 100_000)).filter((x) => Date.parse(x.due_at ?? '') >= from);
    const delays = results.map((x) => x.start_delay_ms!).filter((d) => d !== undefined);
    log(`  ${n} worker(s): ${delays.length} runs due in ${DELAY_SECONDS} s`);
    return delays;
  } finally {
    await stopAll([daemon, ...workers]);
    r.stop();
  }
}

export async function fleetSection(o: { quick: boolean; log: (s: string) => void }): Promise<SectionResult> {
  if (spawnSync('redis-server', ['--version']).error)
    return {
      figures: [
        notAvailable(SECTION, 'no-op jobs through the queue', 'jobs/s', '', 'redis-server is not installed (apt-get install redis-server)'),
      ],
      details: {},
    };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-bench-fleet-'));
  try {
    const t = await throughputRound(dir, o.log);
    const counts = o.quick ? [1, 3] : [1, 3, 10];
    const rows: string[][] = [];
    const figures = [
      figure(
        SECTION,
        `no-op jobs through the queue (${THROUGHPUT_JOBS} jobs, ${THROUGHPUT_WORKERS} workers × concurrency 4)`,
        Math.round(t.jobsPerSecond * 10) / 10,
        'jobs/s',
      ),
    ];
    for (const n of counts) {
      const d = await delayRound(n, dir, o.log);
      const [p50, p90, p99, max] = [50, 90, 99, 100].map((p) => percentile(d, p));
      rows.push([String(n), String(d.length), ...[p50, p90, p99, max].map((x) => String(Math.round(x!)))]);
      figures.push(
        bounded(
          SECTION,
          `start delay from due time p99, ${n} worker${n > 1 ? 's' : ''} (${DELAY_PIPELINES} pipelines every ${DELAY_EVERY_S} s)`,
          Math.round(p99!),
          'ms',
          1000,
          true,
        ),
      );
    }
    const table: Table = {
      title: `${SECTION}: start delay from due time (ms), ${DELAY_PIPELINES} no-op pipelines due every ${DELAY_EVERY_S} s, one daemon`,
      head: ['workers', 'runs', 'p50', 'p90', 'p99', 'max'],
      rows,
      notes: ['Each worker is a dbflow process with concurrency 2; all share this machine with Redis and the daemon.'],
    };
    return { figures, details: { throughput: t, delays: rows }, tables: [table] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
