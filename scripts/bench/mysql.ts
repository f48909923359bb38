// 5. MariaDB: dbflow's snapshot → dump → compress → encrypt → upload chain through the built CLI
// against `mariadb-dump --single-transaction | zstd -3 -T0 | gpg` on a generated InnoDB database of
// BENCH_MYSQL_SIZE_MB, in alternating rounds (checksums on and off), with the CPU of every process and
// of mariadbd; the restore test against stock tools; and how long the snapshot blocks commits (its
// BACKUP STAGE BLOCK_COMMIT barrier) under a concurrent writer.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { scratchPrefix } from '../../src/index.js';
import type { RowDataPacket } from 'mysql2/promise';
import { dbflowRun, writePipeline } from './chain-runs.js';
import { cpuBreakdown } from './cpu-breakdown.js';
import { checkArtifact, verifyBackup, type Decoded } from './db-checks.js';
import {
  chainRounds,
  checkedChainRun,
  dbflowRunner,
  message,
  restoreRounds,
  rowsDiffer,
  sec,
  strip,
  warmGpg,
  withManifest,
  type ChainRun,
} from './db-chain.js';
import { restoreFigures } from './db-figures.js';
import { measureBarrier, type BarrierResult } from './mysql-barrier.js';
import { myBenchDatabase } from './mysql-generate.js';
import { myBenchYaml, myShellRestore, myShellRun, MY_SHELL_RESTORE, MY_SHELL_SCRIPT, type MyShellRestore } from './mysql-runs.js';
import {
  clientCnf,
  MY_ADMIN_URL,
  myDisplayUrl,
  myDropScratch,
  myForgetDir,
  myRegisterDir,
  myScratchName,
  probeMyServer,
  withMy,
} from './mysql-server.js';
import type { SectionResult } from './postgres.js';
import { myFigures, percentile } from './mysql-figures.js';
import { myServerCpu } from './server-cpu.js';
import { DATA, scratchDir } from './util.js';

export interface MysqlOptions {
  sizeMiB: number;
  rebuild: boolean;
  quick: boolean;
  /** Rounds of (dbflow, shell, dbflow with checksums off, shell), and of restores. */
  rounds: number;
  passFile: string;
  gnupgHome: string;
  log: (s: string) => void;
}

/** What the shell side runs, for the report. */
export const MY_SHELL_TEXT = [
  MY_SHELL_SCRIPT,
  '# restore test ($SCRATCH a fresh name; create, restore, count, drop are each timed):',
  ...MY_SHELL_RESTORE.split('\n').filter((l) => !/^t\d=|bench-phases|pipefail/.test(l)),
].join('\n');

async function schemasStartingWith(prefix: string): Promise<string[]> {
  const [rows] = await withMy((c) =>
    c.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ? ORDER BY 1', [
      prefix.length,
      prefix,
    ]),
  );
  return rows.map((r) => String(r.n));
}

const WRITER_MAX_MS = 120_000;

export async function mysqlSection(o: MysqlOptions): Promise<SectionResult> {
  const { log } = o;
  const server = await probeMyServer();
  log(
    `  ${server.serverVersion} at ${myDisplayUrl(MY_ADMIN_URL)} (binlog ${server.binlog ? 'on' : 'off'}, buffer pool ${server.bufferPoolMiB.toFixed(0)} MiB); ${server.mariadbDump}`,
  );
  const src = await myBenchDatabase(o.sizeMiB, { rebuild: o.rebuild, log });
  const cpu = await myServerCpu();
  log(`  server CPU: ${cpu.cpu ? `read from /proc (${cpu.cpu.label})` : `n/a: ${cpu.na}`}`);
  const broken: string[] = [];
  const outDir = path.join(DATA, 'out', 'mysql');
  mkdirSync(outDir, { recursive: true });
  const work = scratchDir('mysql', DATA);
  myRegisterDir(work);
  myRegisterDir(outDir);
  const shellOut = path.join(outDir, 'shell.sql.zst.gpg');
  try {
    await warmGpg(o.passFile, o.gnupgHome, work);
    const pipeline = (name: string, checksums?: boolean, restore?: boolean): string =>
      writePipeline(
        path.join(work, `${name}.yaml`),
        myBenchYaml({
          name,
          url: src.url,
          passFile: o.passFile,
          outDir,
          ...(checksums !== undefined && { checksums }),
          restore: restore === true,
        }),
      );
    const chain = pipeline('bench_mysql_chain');
    const noSumsChain = pipeline('bench_mysql_nochecksums', false);
    const state = path.join(work, 'state');
    // A complete dump of the bench database: mariadb-dump names it in its header and ends with "Dump completed".
    const looksRight = (d: Decoded): string | undefined =>
      !new RegExp(`^-- Host: .*Database: ${src.name}$`, 'm').test(d.head)
        ? `it is not a mariadb-dump of ${src.name}`
        : !d.tail.includes('-- Dump completed')
          ? 'the dump is not complete'
          : undefined;

    const { attempt: dbflow } = await dbflowRunner<ChainRun>(chain, 'mysql', broken, log);
    const chainRun = checkedChainRun({
      attempt: dbflow,
      state,
      outDir,
      sourceRows: src.rows,
      passFile: o.passFile,
      gnupgHome: o.gnupgHome,
      looksRight,
      broken,
      log,
    });
    const shellEnv = { DB: src.name, MYCNF: clientCnf(), OUT: shellOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome };
    const rounds = await chainRounds({
      rounds: o.rounds,
      server: cpu.cpu,
      shell: (watch) => myShellRun(shellEnv, watch),
      dbflow: (i, watch) => chainRun(chain, 'chain run', i, watch),
      noSums: (i, watch) => chainRun(noSumsChain, 'run with checksums: false', i, watch),
      log,
    });
    const shellBad = await checkArtifact({
      side: 'the shell',
      artifact: shellOut,
      passFile: o.passFile,
      gnupgHome: o.gnupgHome,
      looksRight,
      log,
    });
    if (shellBad) broken.push(shellBad);

    // Restore test: dbflow's restore-test step, then stock tools on the artifact that run stored.
    const restorePipeline = pipeline('bench_mysql_restore', undefined, true);
    const kept: string[] = [];
    let restores: { dbflows: ChainRun[]; shells: MyShellRestore[] } | undefined;
    try {
      restores = await restoreRounds<MyShellRestore>({
        rounds: o.rounds,
        dbflow: (i) =>
          dbflow(`run with restore-test, round ${i + 1}`, async () => {
            const d = withManifest(await dbflowRun(restorePipeline, state, outDir, { keep: true }), 'bench', true);
            kept.push(d.runDir);
            if (d.status !== 'verified')
              broken.push(`dbflow run with restore-test, round ${i + 1}: its backup is ${d.status ?? 'without a status'}, not verified`);
            const leaked = await schemasStartingWith(scratchPrefix(path.basename(d.runDir))); // its own run's only: tests may run beside the bench
            if (leaked.length) {
              broken.push(`dbflow's restore-test left scratch database(s) behind: ${leaked.join(', ')} (dropped by the bench)`);
              for (const x of leaked) await myDropScratch(x);
            }
            return d;
          }),
        shell: async (artifact) => {
          const scratch = myScratchName('restore');
          try {
            const sr = await myShellRestore({
              OUT: artifact,
              PASS: o.passFile,
              GNUPGHOME: o.gnupgHome,
              MYCNF: clientCnf(),
              SCRATCH: scratch,
            });
            const wrong = rowsDiffer(sr.rows, src.rows);
            if (wrong) broken.push(`stock-tools restore: row counts differ: ${wrong}`);
            return sr;
          } finally {
            await myDropScratch(scratch);
          }
        },
        describeShell: (sr) =>
          `${sec(sr.wallMs)} (create ${sec(sr.createMs)}, gpg|zstd|mariadb ${sec(sr.restoreMs)}, counts ${sec(sr.countMs)}, drop ${sec(sr.dropMs)})`,
        fallback: shellOut,
        log,
      });
      const last = restores.dbflows.at(-1);
      if (last) {
        const p = await verifyBackup({ runDir: last.runDir, passFile: o.passFile, stateDir: state, log });
        if (p) broken.push(p);
      }
    } catch (err) {
      broken.push(`restore test: ${message(err)}`);
      log(`  restore test FAILED: ${message(err).split('\n')[0]}`);
    } finally {
      for (const d of kept) rmSync(d, { recursive: true, force: true });
    }

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

    const S = '5 mariadb';
    const figures = myFigures(S, { src, rounds, barrier, serverNa: cpu.na });
    if (restores)
      figures.push(
        ...restoreFigures(
          S,
          restores,
          'create, gpg -d|zstd -d|mariadb, count(*), drop',
          `of ${restores.dbflows.length ? "dbflow's artifacts" : "the shell's artifact"}`,
        ),
      );
    return {
      figures,
      ...(broken.length && { broken }),
      ...(rounds.shells.length && { tables: [cpuBreakdown(S, rounds, 'mariadb-dump')] }),
      details: {
        server: { ...server, url: myDisplayUrl(MY_ADMIN_URL), cpu: cpu.cpu?.label ?? `n/a: ${cpu.na}` },
        source: { ...src, url: myDisplayUrl(src.url) },
        rounds: o.rounds,
        shellScript: MY_SHELL_SCRIPT,
        shell: rounds.shells.map(strip),
        dbflow: rounds.dbflows.map(strip),
        noChecksums: rounds.noSums.map(strip),
        ...(restores && { restore: { dbflow: restores.dbflows.map(strip), shell: restores.shells.map(strip) } }),
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
