// 5. MariaDB: dbflow's snapshot → dump → compress → encrypt → upload chain through the built CLI
// against `mariadb-dump --single-transaction | zstd -3 -T0 | gpg` on a generated InnoDB database of
// BENCH_MYSQL_SIZE_MB, the cost of in-snapshot checksums, and how long the snapshot blocks commits
// (its BACKUP STAGE BLOCK_COMMIT barrier) under a concurrent writer.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { dbflowRun, writePipeline, type DbflowRun } from './chain-runs.js';
import { measureBarrier, type BarrierResult } from './mysql-barrier.js';
import { myBenchDatabase, MY_TABLES, type MySourceDatabase } from './mysql-generate.js';
import { myBenchYaml, myShellRun, MY_SHELL_SCRIPT, type MyShellRun } from './mysql-runs.js';
import { clientCnf, MY_ADMIN_URL, myDisplayUrl, myForgetDir, myRegisterDir, probeMyServer } from './mysql-server.js';
import type { SectionResult } from './postgres.js';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, CLI, DATA, median, MiB, round, run, runOk, scratchDir } from './util.js';

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

const RUNS = 2;
const CHAIN = ['dump', 'compress', 'encrypt', 'upload'];
const RSS_LIMIT_MIB = 200;
const WALL_RATIO = 1.15;
const BARRIER_P99_MS = 50;
const WRITER_MAX_MS = 120_000;

type ChainRun = DbflowRun & { barrierMs?: number };
const chainMs = (r: DbflowRun): number => Math.max(...CHAIN.map((s) => r.stepMs[s] ?? 0));
const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const message = (err: unknown): string =>
  err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
const strip = (r: object): Record<string, unknown> => ({ ...r, stdout: undefined, stderr: undefined });

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

function describe(d: DbflowRun & { barrierMs?: number }): string {
  return `${sec(d.wallMs)} (snapshot ${sec(d.stepMs.snapshot ?? 0)}, dump chain ${sec(chainMs(d))}), peak RSS ${(d.maxRssKiB / 1024).toFixed(0)} MiB${d.barrierMs !== undefined ? `, commits blocked ${d.barrierMs.toFixed(1)} ms` : ''}`;
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
    // gpg starts its agent and creates its keybox on first use: not part of a backup.
    await runOk(
      'gpg',
      [
        '--batch',
        '--yes',
        '--symmetric',
        '--pinentry-mode',
        'loopback',
        '--passphrase-file',
        o.passFile,
        '-o',
        path.join(work, 'warm.gpg'),
      ],
      { env: { ...process.env, GNUPGHOME: o.gnupgHome } },
    );
    const pipeline = (name: string, checksums?: boolean): string =>
      writePipeline(
        path.join(work, `${name}.yaml`),
        myBenchYaml({ name, url: src.url, passFile: o.passFile, outDir, ...(checksums !== undefined && { checksums }) }),
      );
    const chain = pipeline('bench_mysql_chain');
    const state = path.join(work, 'state');

    // Without the driver (or with a broken one) the shell figures are still worth having.
    let dbflowOk = true;
    const v = await run(process.execPath, [CLI, 'validate', chain]);
    if (v.code !== 0) {
      dbflowOk = false;
      broken.push(
        `dbflow cannot run the mysql pipeline (dbflow validate exited ${v.code}):\n${`${v.stderr}\n${v.stdout}`.trim().slice(-1500)}`,
      );
      log(`  dbflow validate failed: dbflow runs skipped (${v.stderr.trim().split('\n')[0] ?? ''})`);
    }
    const dbflow = async (what: string, fn: () => Promise<ChainRun>): Promise<ChainRun | undefined> => {
      if (!dbflowOk) return undefined;
      try {
        return await fn();
      } catch (err) {
        dbflowOk = false;
        broken.push(`dbflow ${what}: ${message(err)}`);
        log(`  dbflow ${what} FAILED: ${message(err).split('\n')[0]}`);
        return undefined;
      }
    };

    // The timed runs, alternating which side goes first.
    const shells: MyShellRun[] = [];
    const dbflows: ChainRun[] = [];
    const shellEnv = { DB: src.name, MYCNF: clientCnf(), OUT: shellOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome };
    for (let i = 0; i < RUNS; i++) {
      for (const side of i % 2 === 0 ? ['shell', 'dbflow'] : ['dbflow', 'shell']) {
        if (side === 'shell') {
          const s = await myShellRun(shellEnv);
          shells.push(s);
          log(`  shell  #${i + 1}: ${sec(s.wallMs)}, peak RSS ${(s.maxRssKiB / 1024).toFixed(0)} MiB, ${mib(s.outBytes)}`);
        } else {
          const d = await dbflow(`chain run #${i + 1}`, () => chainRun(chain, state, outDir));
          if (d) dbflows.push(d);
          if (d) log(`  dbflow #${i + 1}: ${describe(d)}, ${mib(d.outBytes)}`);
        }
      }
    }

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
  const { src, shells, dbflows } = r;
  const rows = Object.values(src.rows).reduce((a, b) => a + b, 0);
  const shWall = median(shells.map((s) => s.wallMs));
  const shOut = shells.at(-1)!.outBytes;
  const figures: Figure[] = [
    figure(S, 'source database (data_length + index_length)', src.bytes / MiB, 'MiB', {
      note: `${rows} rows in ${MY_TABLES.length} InnoDB tables; ${src.name}, ${src.builtMs ? `built in ${sec(src.builtMs)}` : `cached, built ${src.builtAt}`}`,
    }),
    figure(S, `shell mariadb-dump|zstd|gpg wall (median of ${shells.length})`, shWall / 1000, 's', {
      note: `${shells.map((s) => sec(s.wallMs)).join(', ')}; ${(src.bytes / MiB / (shWall / 1000)).toFixed(0)} MiB/s of the database`,
    }),
  ];
  if (dbflows.length) {
    const dbWall = median(dbflows.map((d) => d.wallMs));
    const snap = median(dbflows.map((d) => d.stepMs.snapshot ?? 0));
    const chain = median(dbflows.map(chainMs));
    const rssMiB = Math.max(...dbflows.map((d) => d.maxRssKiB)) / 1024;
    const dumpBytes = dbflows.at(-1)!.stepBytes.dump ?? 0;
    const dbOut = dbflows.at(-1)!.outBytes;
    const cpu = (t: { userS: number; sysS: number }[]): number => median(t.map((x) => x.userS + x.sysS));
    const ratio = dbWall / shWall;
    figures.push(
      figure(S, `dbflow wall (median of ${dbflows.length})`, dbWall / 1000, 's', {
        note: `${dbflows.map((d) => sec(d.wallMs)).join(', ')}; snapshot ${sec(snap)}, dump chain ${sec(chain)}, rest ${sec(dbWall - snap - chain)}`,
      }),
      bounded(
        S,
        'dbflow/shell wall time',
        ratio,
        '×',
        WALL_RATIO,
        true,
        `dbflow runs at ${(100 / ratio).toFixed(0)}% of the shell's speed`,
      ),
      bounded(
        S,
        `dbflow peak RSS (max of ${dbflows.length})`,
        rssMiB,
        'MiB',
        RSS_LIMIT_MIB,
        true,
        'GNU time %M: largest of node, mariadb-dump, zstd',
      ),
      figure(S, 'shell peak RSS', Math.max(...shells.map((s) => s.maxRssKiB)) / 1024, 'MiB', {
        note: 'largest of mariadb-dump, zstd, gpg',
      }),
      figure(S, 'dbflow snapshot step', snap / 1000, 's', {
        note: 'barrier + consistent snapshot + mariadb-dump started (spooled) + row counts and checksums inside the snapshot',
      }),
      figure(S, 'dbflow dump chain / shell wall', chain / shWall, '×', {
        note: `${sec(chain)} vs ${sec(shWall)}: dump → compress → encrypt → upload alone${dumpBytes ? `, ${(dumpBytes / MiB / (chain / 1000)).toFixed(0)} MiB/s of dump` : ''}`,
      }),
      figure(S, 'CPU user+sys: dbflow / shell', cpu(dbflows) / cpu(shells), '×', {
        note: `${round(cpu(dbflows), 1)} s vs ${round(cpu(shells), 1)} s (children included; the server's threads are not)`,
      }),
      figure(S, 'artifact size: dbflow / shell', dbOut / shOut, '×', {
        note: `${mib(dbOut)} vs ${mib(shOut)}${dumpBytes ? `; SQL dump ${mib(dumpBytes)}, zstd -3 ratio ${(dumpBytes / dbOut).toFixed(2)}×` : ''}`,
      }),
    );
    if (r.noSums) {
      const nsSnap = r.noSums.stepMs.snapshot ?? 0;
      figures.push(
        figure(S, 'dbflow wall with checksums: false (1 run)', r.noSums.wallMs / 1000, 's', {
          note: `${(r.noSums.wallMs / shWall).toFixed(2)}× the shell (snapshot ${sec(nsSnap)}, peak RSS ${(r.noSums.maxRssKiB / 1024).toFixed(0)} MiB); checksums cost ${sec(dbWall - r.noSums.wallMs)} of wall time (one run: noisy)`,
        }),
      );
    }
  } else {
    figures.push(figure(S, 'shell artifact', shOut / MiB, 'MiB', { note: 'dbflow could not run: see BROKEN' }));
  }
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
