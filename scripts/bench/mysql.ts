// 5. MariaDB: dbflow's snapshot → dump → compress → encrypt → upload chain through the built CLI
// against `mariadb-dump --single-transaction | zstd -3 -T0 | gpg` on a generated InnoDB database of
// BENCH_MYSQL_SIZE_MB, the cost of in-snapshot checksums, and how long the snapshot blocks commits
// (its BACKUP STAGE BLOCK_COMMIT barrier) under a concurrent writer.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { dbflowRun, writePipeline, type DbflowRun } from './chain-runs.js';
import { alternateRuns, chainFigures, dbflowRunner, describe, message, sec, strip, warmGpg, type ChainRun } from './db-chain.js';
import { measureBarrier, type BarrierResult } from './mysql-barrier.js';
import { myBenchDatabase, MY_TABLES, type MySourceDatabase } from './mysql-generate.js';
import { myBenchYaml, myShellRun, MY_SHELL_SCRIPT, type MyShellRun } from './mysql-runs.js';
import { clientCnf, MY_ADMIN_URL, myDisplayUrl, myForgetDir, myRegisterDir, probeMyServer } from './mysql-server.js';
import type { SectionResult } from './postgres.js';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, DATA, MiB, scratchDir } from './util.js';

export interface MysqlOptions {
  sizeMiB: number;
  rebuild: boolean;
  quick: boolean;
  passFile: string;
  gnupgHome: string;
  log: (s: string) => void;
}

/** What the shell side runs, for the report. */
export const MY_SHELL_TEXT = MY_SHELL_SCRIPT;

const BARRIER_P99_MS = 50;
const WRITER_MAX_MS = 120_000;

/** The nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) throw new BenchError('percentile of nothing');
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * A dbflow run whose manifest's `databases.bench.position.barrier_ms` (the commit barrier of that
 * run's snapshot of the source database) is read before its artifact is removed.
 */
async function chainRun(pipelineFile: string, stateDir: string, outDir: string): Promise<DbflowRun & { barrierMs?: number }> {
  const r = await dbflowRun(pipelineFile, stateDir, outDir, { keep: true });
  try {
    const m = JSON.parse(readFileSync(path.join(r.runDir, 'manifest.json'), 'utf8')) as {
      databases?: Record<string, { position?: { barrier_ms?: unknown } }>;
    };
    const ms = m.databases?.bench?.position?.barrier_ms;
    return { ...r, artifact: undefined, ...(typeof ms === 'number' && { barrierMs: ms }) };
  } catch {
    return { ...r, artifact: undefined };
  } finally {
    rmSync(r.runDir, { recursive: true, force: true });
  }
}


export async function mysqlSection(o: MysqlOptions): Promise<SectionResult> {
  const { log } = o;
  const server = await probeMyServer();
  log(
    `  ${server.serverVersion} at ${myDisplayUrl(MY_ADMIN_URL)} (binlog ${server.binlog ? 'on' : 'off'}, buffer pool ${server.bufferPoolMiB.toFixed(0)} MiB); ${server.mariadbDump}`,
  );
  const src = await myBenchDatabase(o.sizeMiB, { rebuild: o.rebuild, log });
  const broken: string[] = [];
  const outDir = path.join(DATA, 'out', 'mysql');
  mkdirSync(outDir, { recursive: true });
  const work = scratchDir('mysql', DATA);
  myRegisterDir(work);
  myRegisterDir(outDir);
  const shellOut = path.join(outDir, 'shell.sql.zst.gpg');
  try {
    await warmGpg(o.passFile, o.gnupgHome, work);
    const pipeline = (name: string, checksums?: boolean): string =>
      writePipeline(
        path.join(work, `${name}.yaml`),
        myBenchYaml({ name, url: src.url, passFile: o.passFile, outDir, ...(checksums !== undefined && { checksums }) }),
      );
    const chain = pipeline('bench_mysql_chain');
    const state = path.join(work, 'state');

    const { attempt: dbflow } = await dbflowRunner<ChainRun>(chain, 'mysql', broken, log);
    const shellEnv = { DB: src.name, MYCNF: clientCnf(), OUT: shellOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome };
    const { shells, dbflows } = await alternateRuns(
      () => myShellRun(shellEnv),
      (i) => dbflow(`chain run #${i + 1}`, () => chainRun(chain, state, outDir)),
      log,
    );

    // Once more without checksums (options.checksums of the mysql driver, on by default): what they cost.
    const noSums = await dbflow('run with checksums: false', () => chainRun(pipeline('bench_mysql_nochecksums', false), state, outDir));
    if (noSums) log(`  dbflow checksums: false: ${describe(noSums)}`);

    // The commit barrier under a concurrent writer, through the driver's public API.
    let barrier: BarrierResult | undefined;
    try {
      const snapshots = o.quick ? 20 : 50;
      log(`  commit barrier: ${snapshots} snapshots under a concurrent writer (at most ${WRITER_MAX_MS / 1000} s) …`);
      barrier = await measureBarrier({ snapshots, maxMs: WRITER_MAX_MS, log });
      log(
        `  commit barrier (${barrier.barrierName}): p50 ${percentile(barrier.barrierMs, 50).toFixed(1)} ms, p99 ${percentile(barrier.barrierMs, 99).toFixed(1)} ms, max ${Math.max(...barrier.barrierMs).toFixed(1)} ms over ${barrier.barrierMs.length} snapshots; ${barrier.commits} writer commits in ${sec(barrier.measureMs)}`,
      );
      if (barrier.stoppedEarly) broken.push(`commit barrier: ${barrier.barrierMs.length} snapshots only: ${barrier.stoppedEarly}`);
    } catch (err) {
      broken.push(`commit barrier under a writer: ${message(err)}`);
      log(`  commit barrier FAILED: ${message(err).split('\n')[0]}`);
    }

    return {
      figures: myFigures({ src, shells, dbflows, noSums, barrier }),
      ...(broken.length && { broken }),
      details: {
        server: { ...server, url: myDisplayUrl(MY_ADMIN_URL) },
        source: { ...src, url: myDisplayUrl(src.url) },
        shellScript: MY_SHELL_SCRIPT,
        shell: shells.map(strip),
        dbflow: dbflows.map(strip),
        ...(noSums && { noChecksums: strip(noSums) }),
        ...(barrier && { barrier }),
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(shellOut, { force: true });
    rmSync(outDir, { recursive: true, force: true });
    myForgetDir(work);
    myForgetDir(outDir);
  }
}

function myFigures(r: {
  src: MySourceDatabase;
  shells: MyShellRun[];
  dbflows: ChainRun[];
  noSums: ChainRun | undefined;
  barrier: BarrierResult | undefined;
}): Figure[] {
  const S = '5 mariadb';
  const { src, dbflows } = r;
  const rows = Object.values(src.rows).reduce((a, b) => a + b, 0);
  const figures: Figure[] = [
    figure(S, 'source database (data_length + index_length)', src.bytes / MiB, 'MiB', {
      note: `${rows} rows in ${MY_TABLES.length} InnoDB tables; ${src.name}, ${src.builtMs ? `built in ${sec(src.builtMs)}` : `cached, built ${src.builtAt}`}`,
    }),
    ...chainFigures(S, src.bytes / MiB, r, {
      shellName: 'mariadb-dump|zstd|gpg',
      dbflowTools: 'node, mariadb-dump, zstd',
      shellTools: 'mariadb-dump, zstd, gpg',
      snapshotNote: 'barrier + consistent snapshot + mariadb-dump started (spooled); its row counts and checksums run alongside the dump chain',
      serverWorkers: 'threads',
      dumpName: 'SQL dump',
      noSumsExtra: (ns) => `, peak RSS ${(ns.maxRssKiB / 1024).toFixed(0)} MiB`,
      noSumsNoise: 'one run: noisy',
    }),
  ];
  const b = r.barrier;
  const cli = [...dbflows, ...(r.noSums ? [r.noSums] : [])].flatMap((d) => (d.barrierMs === undefined ? [] : [d.barrierMs]));
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
