// The figures of the MariaDB section: the chain comparison, and the commit barrier under a writer.
import type { ChainRounds, ShellRun } from './db-chain.js';
import { sec } from './db-chain.js';
import { chainFigures } from './db-figures.js';
import type { BarrierResult } from './mysql-barrier.js';
import { MY_TABLES, type MySourceDatabase } from './mysql-generate.js';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, MiB } from './util.js';

const BARRIER_P99_MS = 50;

/** The nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) throw new BenchError('percentile of nothing');
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The section's figures but the restore test's. */
export function myFigures(
  S: string,
  r: { src: MySourceDatabase; rounds: ChainRounds<ShellRun>; barrier: BarrierResult | undefined; serverNa: string | undefined },
): Figure[] {
  const { src } = r;
  const { dbflows, noSums } = r.rounds;
  const rows = Object.values(src.rows).reduce((a, b) => a + b, 0);
  const figures: Figure[] = [
    figure(S, 'source database (data_length + index_length)', src.bytes / MiB, 'MiB', {
      note: `${rows} rows in ${MY_TABLES.length} InnoDB tables; ${src.name}, ${src.builtMs ? `built in ${sec(src.builtMs)}` : `cached, built ${src.builtAt}`}`,
    }),
    ...chainFigures(
      S,
      src.bytes / MiB,
      r.rounds,
      {
        shellName: 'mariadb-dump|zstd|gpg',
        dbflowTools: 'node, mariadb-dump, zstd',
        shellTools: 'bash, mariadb-dump, zstd, gpg',
        snapshotNote:
          'barrier + consistent snapshot + mariadb-dump started (spooled); its row counts and checksums run alongside the dump chain',
        dumpName: 'SQL dump',
      },
      r.serverNa,
    ),
  ];
  const b = r.barrier;
  const cli = [...dbflows, ...noSums].flatMap((d) => (d.barrierMs === undefined ? [] : [d.barrierMs]));
  if (b) {
    const n = b.barrierMs.length;
    const lat = b.commitLatencyMs;
    figures.push(
      figure(S, `commit barrier p50 (${n} snapshots)`, percentile(b.barrierMs, 50), 'ms', {
        note: `${b.barrierName}, binlog ${b.binlog}: info.position.barrier_ms of driver.snapshot() under a writer`,
      }),
      bounded(S, `commit barrier p99 (${n} snapshots)`, percentile(b.barrierMs, 99), 'ms', BARRIER_P99_MS, true, `nearest rank of ${n}`),
      figure(S, 'commit barrier max', Math.max(...b.barrierMs), 'ms', {
        note: `snapshot() call p50 ${percentile(b.snapshotMs, 50).toFixed(0)} ms (connect, barrier, dump start, counts and checksums of the writer's tables)${cli.length ? `; the CLI runs of the source database blocked commits ${cli.map((x) => `${x.toFixed(0)}`).join(', ')} ms` : ''}`,
      }),
      figure(S, 'writer commits during the snapshots', b.commits, '', {
        note: `${(b.commits / (b.measureMs / 1000)).toFixed(0)} commits/s over ${sec(b.measureMs)} (INSERT + UPDATE per transaction)${lat.length ? `; COMMIT latency p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms` : ''}`,
      }),
    );
  }
  return figures;
}
