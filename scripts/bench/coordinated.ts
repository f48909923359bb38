// 6. Coordinated snapshot: how long one snapshot step over three participants (two PostgreSQL databases
// and a MariaDB database) blocks commits, under a causal writer that commits item i to db1, then mq,
// then db2. A pipeline with only the snapshot step is run in-process through the public API, again and
// again; each run's `outputs.coordination.blocked_ms` (the longest any participant held its barrier) is read
// from the snapshot step's state.
import { rmSync } from 'node:fs';
import { loadPipelineText, runPipeline, type LoadedPipeline } from '../../src/index.js';
import { ITEMS_MY, ITEMS_PG, startCausalWriter, type CausalWriter } from '../../test/helpers/causal-writer.js';
import { percentile } from './mysql-figures.js';
import {
  connectionOptions,
  MY_ADMIN_URL,
  myDatabaseUrl,
  myDisplayUrl,
  myDropScratch,
  myIdent,
  myScratchName,
  probeMyServer,
  withMy,
} from './mysql-server.js';
import { databaseUrl, displayUrl, dropScratch, ident, PG_ADMIN_URL, probeServer, scratchName, withClient } from './pg-server.js';
import type { SectionResult } from './postgres.js';
import { bounded, figure } from './report.js';
import { BenchError, ROOT, scratchDir } from './util.js';

export interface CoordinatedOptions {
  quick: boolean;
  log: (s: string) => void;
}

/** BENCH_COORD_SNAPSHOTS, else 50 (10 with BENCH_QUICK). */
function snapshotCount(quick: boolean): number {
  const raw = process.env.BENCH_COORD_SNAPSHOTS;
  const n = Number(raw ?? (quick ? 10 : 50));
  if (!Number.isInteger(n) || n < 1) throw new BenchError(`BENCH_COORD_SNAPSHOTS must be a whole number ≥ 1, not "${raw}"`);
  return n;
}

const BLOCKED_P99_MS = 50;
const WRITER_MAX_MS = 600_000;

// A few small tables besides the writer's `items`, so that the barrier has more than one table to hold.
const PG_TABLES = [
  ITEMS_PG,
  'CREATE TABLE accounts (id int PRIMARY KEY, balance numeric(14,2) NOT NULL)',
  'INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 64) i',
  'CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), kind text NOT NULL)',
  "INSERT INTO events (kind) SELECT 'seed-' || i % 5 FROM generate_series(1, 2000) i",
];
const MY_TABLES = [
  ITEMS_MY,
  'CREATE TABLE accounts (id int PRIMARY KEY, balance decimal(14,2) NOT NULL) ENGINE=InnoDB',
  'INSERT INTO accounts SELECT seq, 1000 FROM seq_1_to_64',
  'CREATE TABLE events (id bigint AUTO_INCREMENT PRIMARY KEY, at datetime(6) NOT NULL DEFAULT NOW(6), kind varchar(20) NOT NULL) ENGINE=InnoDB',
  "INSERT INTO events (kind) SELECT CONCAT('seed-', seq % 5) FROM seq_1_to_2000",
];

/** The pipeline: one coordinated snapshot step over db1, mq and db2, nothing else (no artifact, so nothing is published). */
function snapshotYaml(urls: { db1: string; mq: string; db2: string }): string {
  return `version: 1
name: bench_coordinated
databases:
  db1: ${JSON.stringify({ driver: 'postgres', url: urls.db1 })}
  mq: ${JSON.stringify({ driver: 'mysql', url: urls.mq })}
  db2: ${JSON.stringify({ driver: 'postgres', url: urls.db2 })}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [db1, mq, db2], coordinated: true, barrier_timeout: 10s } }
`;
}

interface Snapshot {
  blockedMs: number;
  /** Wall time of the run (connect, barriers, snapshots, counts, release). */
  runMs: number;
  held: Record<string, number>;
  /** From the first barrier acquired to the last released, by the barriers' timestamps (ms resolution). */
  spanMs: number;
}

// One run of the snapshot pipeline: its commit-blocking time, read from the snapshot step's outputs.
async function snapshotOnce(loaded: LoadedPipeline, stateDir: string, n: number): Promise<Snapshot> {
  const t0 = performance.now();
  const result = await runPipeline(loaded, { stateDir });
  const runMs = performance.now() - t0;
  const step = result.steps.get('snapshot');
  if (result.status !== 'success' || !step)
    throw new BenchError(`snapshot #${n}: the run ended ${result.status}: ${step?.error ?? result.error ?? ''}`);
  const c = step.outputs?.coordination as
    | {
        coordinated?: unknown;
        blocked_ms?: unknown;
        barriers?: Record<string, { held_ms?: unknown; acquired_at?: unknown; released_at?: unknown }>;
      }
    | undefined;
  if (c?.coordinated !== true || typeof c.blocked_ms !== 'number')
    throw new BenchError(
      `snapshot #${n}: outputs.coordination is ${JSON.stringify(c)}, not a coordinated snapshot with a numeric blocked_ms`,
    );
  const barriers = Object.entries(c.barriers ?? {});
  const held = Object.fromEntries(barriers.map(([db, b]) => [db, Number(b.held_ms)]));
  const times = (key: 'acquired_at' | 'released_at'): number[] => barriers.map(([, b]) => Date.parse(String(b[key])));
  const spanMs = Math.max(...times('released_at')) - Math.min(...times('acquired_at'));
  return { blockedMs: c.blocked_ms, runMs, held, spanMs };
}

export async function coordinatedSection(o: CoordinatedOptions): Promise<SectionResult> {
  const { log } = o;
  const snapshots = snapshotCount(o.quick);
  const [pgServer, myServer] = await Promise.all([probeServer(), probeMyServer()]);
  log(
    `  PostgreSQL ${pgServer.serverVersion} at ${displayUrl(PG_ADMIN_URL)}; ${myServer.serverVersion} at ${myDisplayUrl(MY_ADMIN_URL)} (binlog ${myServer.binlog ? 'on' : 'off'})`,
  );
  const names = { db1: scratchName('coord_db1'), mq: myScratchName('coord_mq'), db2: scratchName('coord_db2') };
  const work = scratchDir('coordinated');
  let writer: CausalWriter | undefined;
  try {
    for (const db of [names.db1, names.db2]) {
      await withClient((c) => c.query(`CREATE DATABASE ${ident(db)}`));
      await withClient(async (c) => {
        for (const s of PG_TABLES) await c.query(s);
      }, databaseUrl(db));
    }
    await withMy(async (c) => {
      await c.query(`CREATE DATABASE ${myIdent(names.mq)}`);
      await c.query(`USE ${myIdent(names.mq)}`);
      for (const s of MY_TABLES) await c.query(s);
    });
    const urls = { db1: databaseUrl(names.db1), mq: myDatabaseUrl(names.mq), db2: databaseUrl(names.db2) };
    const loaded = await loadPipelineText('bench-coordinated.yaml', snapshotYaml(urls), ROOT);

    writer = await startCausalWriter({ db1: urls.db1, mq: connectionOptions(urls.mq), db2: urls.db2 }, { maxMs: WRITER_MAX_MS });
    await writer.committed(20, 10_000);
    log(`  ${snapshots} coordinated snapshots of db1 (PostgreSQL), mq (MariaDB), db2 (PostgreSQL) under the causal writer …`);
    const taken: Snapshot[] = [];
    const before = writer.iterations();
    writer.mark();
    const t0 = performance.now();
    let stoppedEarly: string | undefined;
    for (let i = 1; i <= snapshots; i++) {
      stoppedEarly = writer.stopped();
      if (stoppedEarly) break;
      taken.push(await snapshotOnce(loaded, work, i));
      if (i % 10 === 0) log(`  snapshots: ${i}/${snapshots}, ${writer.iterations() - before} items written so far`);
    }
    const measureMs = performance.now() - t0;
    const items = writer.iterations() - before;
    const latencies = writer.mark();
    await writer.stop();
    writer = undefined;
    if (!taken.length) throw new BenchError(`no snapshot was taken: ${stoppedEarly ?? 'unknown reason'}`);

    const blocked = taken.map((s) => s.blockedMs);
    const n = blocked.length;
    const commits = items * 3;
    log(
      `  commits blocked: p50 ${percentile(blocked, 50).toFixed(1)} ms, p99 ${percentile(blocked, 99).toFixed(1)} ms, max ${Math.max(...blocked).toFixed(1)} ms over ${n} snapshots; ${commits} writer commits in ${(measureMs / 1000).toFixed(1)} s`,
    );
    const S = '6 coordinated';
    const lat = latencies.length ? latencies : [0];
    const runs = taken.map((s) => s.runMs);
    const spans = taken.map((s) => s.spanMs);
    const heldMax = (db: string): string => Math.max(...taken.map((s) => s.held[db] ?? 0)).toFixed(1);
    return {
      figures: [
        figure(S, `commits blocked p50 (${n} snapshots)`, percentile(blocked, 50), 'ms', {
          note: 'outputs.coordination.blocked_ms of the snapshot step; 2 PostgreSQL + 1 MariaDB participants',
        }),
        bounded(S, `commits blocked p99 (${n} snapshots)`, percentile(blocked, 99), 'ms', BLOCKED_P99_MS, true, `nearest rank of ${n}`),
        figure(S, 'commits blocked max', Math.max(...blocked), 'ms', {
          note: `longest barrier held: db1 ${heldMax('db1')}, mq ${heldMax('mq')}, db2 ${heldMax('db2')} ms; snapshot run p50 ${percentile(runs, 50).toFixed(0)} ms`,
        }),
        figure(S, `first barrier acquired → last released p99`, percentile(spans, 99), 'ms', {
          note: `from the barriers' acquired_at/released_at (ms resolution); p50 ${percentile(spans, 50).toFixed(0)} ms, max ${Math.max(...spans).toFixed(0)} ms`,
        }),
        figure(S, 'writer commits/s during the snapshots', commits / (measureMs / 1000), '/s', {
          note: `${commits} commits (${items} items × 3 databases, INSERT + COMMIT each) in ${(measureMs / 1000).toFixed(1)} s`,
        }),
        figure(S, 'writer commit latency p99', percentile(lat, 99), 'ms', {
          note: `INSERT to COMMIT done, per transaction; p50 ${percentile(lat, 50).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`,
        }),
      ],
      ...(stoppedEarly && { broken: [`${n} of ${snapshots} snapshots only: ${stoppedEarly}`] }),
      details: {
        servers: { postgres: pgServer.serverVersion, mariadb: myServer.serverVersion, binlog: myServer.binlog },
        databases: names,
        snapshots: taken,
        measureMs,
        items,
        commitLatencyMs: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: Math.max(...lat), n: latencies.length },
      },
    };
  } finally {
    await writer?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    await Promise.all([dropScratch(names.db1), dropScratch(names.db2), myDropScratch(names.mq)]);
  }
}
