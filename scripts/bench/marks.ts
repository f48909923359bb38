// 11. Recovery marks: how long `dbflow mark` blocks commits, over two throwaway PostgreSQL clusters and a throwaway
// MariaDB under the causal writer (item i committed to db1, then mq, then db2), and how many marks a second the
// command takes back to back. Each mark's `blocked_ms` (the longest any participant held its barrier) is read from
// its `--json` record.
import type { MarkRecord } from '../../src/repo/marks.js';
import { startCausalWriter, type CausalWriter } from '../../test/helpers/causal-writer.js';
import { MARKED, markSetup } from '../../test/helpers/mark-setup.js';
import { benchContext } from './archive-run.js';
import { percentile } from './mysql-figures.js';
import type { SectionResult } from './postgres.js';
import { bounded, figure } from './report.js';
import { BenchError, CLI, round, runOk } from './util.js';

const SECTION = '11 recovery marks';
const BLOCKED_P99_MS = 20;
const WRITER_MAX_MS = 900_000;

/** BENCH_MARKS, else 100 (20 with BENCH_QUICK). */
function markCount(quick: boolean): number {
  const raw = process.env.BENCH_MARKS;
  const n = Number(raw ?? (quick ? 20 : 100));
  if (!Number.isInteger(n) || n < 1) throw new BenchError(`BENCH_MARKS must be a whole number ≥ 1, not "${raw}"`);
  return n;
}

interface Taken {
  blockedMs: number;
  /** `dbflow mark` start to exit (a node start, connections, the barriers, the record stored). */
  wallMs: number;
  held: Record<string, number>;
  attempts: number;
}

export async function marksSection(o: { quick: boolean; log: (s: string) => void }): Promise<SectionResult> {
  const marks = markCount(o.quick);
  const { t, cleanup } = benchContext();
  let writer: CausalWriter | undefined;
  try {
    const s = await markSetup(t);
    if (!s) throw new BenchError('no throwaway servers');
    const env = { ...process.env, ...s.env };
    writer = await startCausalWriter(s.targets, { maxMs: WRITER_MAX_MS });
    await writer.committed(20, 10_000);
    o.log(`  ${marks} marks of db1 (PostgreSQL), mq (MariaDB), db2 (PostgreSQL) under the causal writer, back to back …`);
    const taken: Taken[] = [];
    const before = writer.iterations();
    writer.mark();
    const t0 = performance.now();
    let stoppedEarly: string | undefined;
    for (let i = 1; i <= marks; i++) {
      stoppedEarly = writer.stopped();
      if (stoppedEarly) break;
      const r = await runOk(process.execPath, [CLI, 'mark', s.pipeline, '--json'], { cwd: s.dir, env });
      const record = JSON.parse(r.stdout) as MarkRecord;
      const names = Object.keys(record.participants).sort();
      if (names.join() !== [...MARKED].sort().join())
        throw new BenchError(`mark #${i} has the participants ${names.join(', ')}, not ${MARKED.join(', ')}: ${r.stdout}`);
      taken.push({
        blockedMs: record.blocked_ms,
        wallMs: r.wallMs,
        held: Object.fromEntries(Object.entries(record.participants).map(([db, p]) => [db, p.held_ms])),
        attempts: record.attempts,
      });
      if (i % 20 === 0) o.log(`  marks: ${i}/${marks}, ${writer.iterations() - before} items written so far`);
    }
    const measureMs = performance.now() - t0;
    const items = writer.iterations() - before;
    const latencies = writer.mark();
    await writer.stop();
    writer = undefined;
    if (!taken.length) throw new BenchError(`no mark was taken: ${stoppedEarly ?? 'unknown reason'}`);

    const blocked = taken.map((m) => m.blockedMs);
    const walls = taken.map((m) => m.wallMs);
    const n = taken.length;
    const commits = items * 3;
    const lat = latencies.length ? latencies : [0];
    // Hundreds of thousands of latencies: too many to spread into Math.max.
    const latMax = lat.reduce((m, x) => (x > m ? x : m), 0);
    const heldMax = (db: string): string => Math.max(...taken.map((m) => m.held[db] ?? 0)).toFixed(1);
    const retried = taken.filter((m) => m.attempts > 1).length;
    o.log(
      `  commits blocked: p50 ${percentile(blocked, 50).toFixed(1)} ms, p99 ${percentile(blocked, 99).toFixed(1)} ms, max ${Math.max(...blocked).toFixed(1)} ms over ${n} marks in ${(measureMs / 1000).toFixed(1)} s`,
    );
    return {
      figures: [
        figure(SECTION, `commits blocked p50 (${n} marks)`, percentile(blocked, 50), 'ms', {
          note: 'blocked_ms of `dbflow mark --json`: the longest any participant held its barrier; 2 PostgreSQL + 1 MariaDB',
        }),
        bounded(SECTION, `commits blocked p99 (${n} marks)`, percentile(blocked, 99), 'ms', BLOCKED_P99_MS, true, `nearest rank of ${n}`),
        figure(SECTION, 'commits blocked max', Math.max(...blocked), 'ms', {
          note: `longest barrier held: db1 ${heldMax('db1')}, mq ${heldMax('mq')}, db2 ${heldMax('db2')} ms; ${retried} of ${n} marks needed more than one try`,
        }),
        figure(SECTION, 'marks per second (dbflow mark, back to back)', round(n / (measureMs / 1000), 2), '/s', {
          note: `each a process: node start, 3 connections, the barriers, the record stored; wall p50 ${percentile(walls, 50).toFixed(0)} ms, p99 ${percentile(walls, 99).toFixed(0)} ms`,
        }),
        figure(SECTION, 'writer commits/s during the marks', commits / (measureMs / 1000), '/s', {
          note: `${commits} commits (${items} items × 3 databases) in ${(measureMs / 1000).toFixed(1)} s; no archiver running`,
        }),
        figure(SECTION, 'writer commit latency p99', percentile(lat, 99), 'ms', {
          note: `INSERT to COMMIT done, per transaction; p50 ${percentile(lat, 50).toFixed(1)} ms, max ${latMax.toFixed(1)} ms`,
        }),
      ],
      ...(stoppedEarly && { broken: [`${n} of ${marks} marks only: ${stoppedEarly}`] }),
      details: {
        marks: taken,
        measureMs,
        items,
        commitLatencyMs: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: latMax, n: latencies.length },
      },
    };
  } finally {
    await writer?.stop().catch(() => undefined);
    await cleanup();
  }
}
