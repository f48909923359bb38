// 4. PostgreSQL: dbflow's snapshot → dump → compress → encrypt → upload chain through the built CLI
// against `pg_dump -Fc -Z0 | zstd -3 -T0 | gpg` on a generated database of BENCH_PG_SIZE_MB, in
// alternating rounds (checksums on and off), with the CPU of every process and of the server; the
// restore test against stock tools; and (BENCH_PG_FLAT=1) peak RSS on a database of 3× the size.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { scratchPrefix } from '../../src/index.js';
import { dbflowRun, writePipeline } from './chain-runs.js';
import { cpuBreakdown } from './cpu-breakdown.js';
import { checkArtifact, verifyBackup, type Decoded } from './db-checks.js';
import {
  chainRounds,
  checkedChainRun,
  dbflowRunner,
  describeDbflow,
  restoreRounds,
  rowsDiffer,
  sec,
  strip,
  warmGpg,
  withManifest,
  type ChainRun,
} from './db-chain.js';
import { chainFigures, flatFigures, restoreFigures } from './db-figures.js';
import { watchRun } from './cpu-watch.js';
import { benchDatabase, PG_TABLES, type SourceDatabase } from './pg-generate.js';
import { pgBenchYaml, pgShellRestore, pgShellRun, PG_SHELL_RESTORE, PG_SHELL_SCRIPT, type PgShellRestore } from './pg-runs.js';
import { databasesStartingWith, databaseUrl, displayUrl, dropScratch, PG_ADMIN_URL, probeServer, scratchName } from './pg-server.js';
import { figure, type Figure, type Table } from './report.js';
import { pgServerCpu } from './server-cpu.js';
import { DATA, MiB, scratchDir } from './util.js';

export interface PostgresOptions {
  sizeMiB: number;
  /** Also measure peak RSS on a database of 3× the size. */
  flat: boolean;
  rebuild: boolean;
  /** Rounds of (dbflow, shell, dbflow with checksums off, shell), and of restores. */
  rounds: number;
  passFile: string;
  gnupgHome: string;
  log: (s: string) => void;
}

/** A section's figures, plus what could not be measured while the rest could. */
export interface SectionResult {
  figures: Figure[];
  details: unknown;
  broken?: string[];
  /** Printed after the figures. */
  tables?: Table[];
}

/** What the shell side runs, for the report. */
export const PG_SHELL_TEXT = [
  PG_SHELL_SCRIPT,
  '# restore test ($SCRATCH a fresh name; create, restore, count, drop are each timed):',
  ...PG_SHELL_RESTORE.split('\n').filter((l) => !/^t\d=|bench-phases|pipefail/.test(l)),
].join('\n');

export async function postgres(o: PostgresOptions): Promise<SectionResult> {
  const { log } = o;
  const server = await probeServer();
  log(`  PostgreSQL ${server.serverVersion} at ${displayUrl(PG_ADMIN_URL)}; ${server.pgDump}`);
  const src = await benchDatabase(o.sizeMiB, { rebuild: o.rebuild, log });
  const cpu = await pgServerCpu(src.name);
  log(`  server CPU: ${cpu.cpu ? `read from /proc (${cpu.cpu.label})` : `n/a: ${cpu.na}`}`);
  const broken: string[] = [];
  const outDir = path.join(DATA, 'out', 'pg');
  mkdirSync(outDir, { recursive: true });
  const work = scratchDir('pg', DATA);
  const shellOut = path.join(outDir, 'shell.dump.zst.gpg');
  const kept: string[] = [];
  try {
    await warmGpg(o.passFile, o.gnupgHome, work);
    const pipeline = (name: string, db: SourceDatabase, checksums: boolean, restore: boolean): string =>
      writePipeline(path.join(work, `${name}.yaml`), pgBenchYaml({ name, url: db.url, passFile: o.passFile, outDir, checksums, restore }));
    const chain = pipeline('bench_pg_chain', src, true, false);
    const noSumsChain = pipeline('bench_pg_nochecksums', src, false, false);
    const state = path.join(work, 'state');
    // A dump of the bench database, complete (pg_dump -Fc starts with PGDMP and names the database in its header).
    const looksRight = (d: Decoded): string | undefined =>
      !d.head.startsWith('PGDMP')
        ? 'it is not a pg_dump custom-format archive'
        : !d.head.includes(src.name)
          ? `it is not a dump of ${src.name}`
          : undefined;

    const { attempt: dbflow } = await dbflowRunner<ChainRun>(chain, 'postgres', broken, log);
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
    const shellEnv = { PGURL: src.url, OUT: shellOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome };
    const rounds = await chainRounds({
      rounds: o.rounds,
      server: cpu.cpu,
      shell: (watch) => pgShellRun(shellEnv, watch),
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
    // Scratch databases left by dbflow are a driver bug.
    const restorePipeline = pipeline('bench_pg_restore', src, true, true);
    const restores = await restoreRounds<PgShellRestore>({
      rounds: o.rounds,
      dbflow: (i) =>
        dbflow(`run with restore-test, round ${i + 1}`, async () => {
          const d = withManifest(await dbflowRun(restorePipeline, state, outDir, { keep: true }), 'bench', true);
          kept.push(d.runDir);
          if (d.status !== 'verified')
            broken.push(`dbflow run with restore-test, round ${i + 1}: its backup is ${d.status ?? 'without a status'}, not verified`);
          const leaked = await databasesStartingWith(scratchPrefix(path.basename(d.runDir))); // its own run's only: tests may run beside the bench
          if (leaked.length) {
            broken.push(`dbflow's restore-test left scratch database(s) behind: ${leaked.join(', ')} (dropped by the bench)`);
            for (const x of leaked) await dropScratch(x);
          }
          return d;
        }),
      shell: async (artifact) => {
        const scratch = scratchName('restore');
        try {
          const sr = await pgShellRestore({
            OUT: artifact,
            PASS: o.passFile,
            GNUPGHOME: o.gnupgHome,
            ADMIN_URL: PG_ADMIN_URL,
            SCRATCH: scratch,
            SCRATCH_URL: databaseUrl(scratch),
          });
          const wrong = rowsDiffer(sr.rows, src.rows);
          if (wrong) broken.push(`stock-tools restore: row counts differ: ${wrong}`);
          return sr;
        } finally {
          await dropScratch(scratch);
        }
      },
      describeShell: (sr) =>
        `${sec(sr.wallMs)} (create ${sec(sr.createMs)}, gpg|zstd|pg_restore ${sec(sr.restoreMs)}, counts ${sec(sr.countMs)}, drop ${sec(sr.dropMs)})`,
      fallback: shellOut,
      log,
    });
    const last = restores.dbflows.at(-1);
    if (last) {
      const p = await verifyBackup({ runDir: last.runDir, passFile: o.passFile, stateDir: state, log });
      if (p) broken.push(p);
    }

    // RSS flatness on 3× the size.
    let flat: { db: SourceDatabase; run?: ChainRun } | undefined;
    if (o.flat) {
      const big = await benchDatabase(o.sizeMiB * 3, { rebuild: o.rebuild, log });
      const r = await dbflow('run on the 3× database', async () =>
        withManifest(
          await dbflowRun(pipeline('bench_pg_chain_3x', big, true, false), state, outDir, { keep: true, watch: () => watchRun() }),
          'bench',
        ),
      );
      if (r) log(`  dbflow 3× (${(big.bytes / MiB).toFixed(0)} MiB): ${describeDbflow(r)}`);
      flat = { db: big, ...(r && { run: r }) };
    }

    const S = '4 postgres';
    const figures = pgFigures(S, src, rounds, cpu.na);
    figures.push(
      ...restoreFigures(
        S,
        restores,
        'createdb, gpg -d|zstd -d|pg_restore, count(*), dropdb',
        `of ${restores.dbflows.length ? "dbflow's artifacts" : "the shell's artifact"}; pg_restore --exit-on-error, one job`,
      ),
    );
    if (flat?.run && rounds.dbflows.length) figures.push(...flatFigures(S, rounds.dbflows, flat.run, flat.db.bytes / MiB));
    return {
      figures,
      ...(broken.length && { broken }),
      ...(rounds.shells.length && { tables: [cpuBreakdown(S, rounds, 'pg_dump')] }),
      details: {
        server: { ...server, url: displayUrl(PG_ADMIN_URL), cpu: cpu.cpu?.label ?? `n/a: ${cpu.na}` },
        source: { ...src, url: displayUrl(src.url) },
        rounds: o.rounds,
        shellScript: PG_SHELL_SCRIPT,
        shell: rounds.shells.map(strip),
        dbflow: rounds.dbflows.map(strip),
        noChecksums: rounds.noSums.map(strip),
        restore: { dbflow: restores.dbflows.map(strip), shell: restores.shells.map(strip) },
        ...(flat && { rssFlat: { db: { ...flat.db, url: displayUrl(flat.db.url) }, run: flat.run && strip(flat.run) } }),
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(shellOut, { force: true });
    for (const d of kept) rmSync(d, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

function pgFigures(S: string, src: SourceDatabase, rounds: Parameters<typeof chainFigures>[2], serverNa: string | undefined): Figure[] {
  const rows = Object.values(src.rows).reduce((a, b) => a + b, 0);
  return [
    figure(S, 'source database (pg_database_size)', src.bytes / MiB, 'MiB', {
      note: `${rows} rows in ${PG_TABLES.length} tables; ${src.name}, ${src.builtMs ? `built in ${sec(src.builtMs)}` : `cached, built ${src.builtAt}`}`,
    }),
    ...chainFigures(
      S,
      src.bytes / MiB,
      rounds,
      {
        shellName: 'pg_dump|zstd|gpg',
        dbflowTools: 'node, pg_dump, zstd',
        shellTools: 'bash, pg_dump, zstd, gpg',
        snapshotNote: 'REPEATABLE READ snapshot exported and tables locked; its row counts and checksums run alongside the dump chain',
        dumpName: 'pg_dump -Fc -Z0',
      },
      serverNa,
    ),
  ];
}
