// 4. PostgreSQL: dbflow's snapshot → dump → compress → encrypt → upload chain through the built CLI
// against `pg_dump -Fc -Z0 | zstd -3 -T0 | gpg` on a generated database of BENCH_PG_SIZE_MB, the
// cost of in-snapshot checksums, the restore test against stock tools, and (BENCH_PG_FLAT=1) peak
// RSS on a database of 3× the size.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { dbflowRun, writePipeline, type DbflowRun } from './chain-runs.js';
import { alternateRuns, chainFigures, dbflowRunner, describe, RSS_LIMIT_MIB, sec, strip, warmGpg } from './db-chain.js';
import { benchDatabase, PG_TABLES, type SourceDatabase } from './pg-generate.js';
import {
  pgBenchYaml,
  pgShellRestore,
  pgShellRun,
  PG_SHELL_RESTORE,
  PG_SHELL_SCRIPT,
  type PgShellRestore,
  type PgShellRun,
} from './pg-runs.js';
import { databasesStartingWith, databaseUrl, displayUrl, dropScratch, PG_ADMIN_URL, probeServer, scratchName } from './pg-server.js';
import { bounded, figure, type Figure } from './report.js';
import { DATA, MiB, round, scratchDir } from './util.js';

export interface PostgresOptions {
  sizeMiB: number;
  /** Also measure peak RSS on a database of 3× the size. */
  flat: boolean;
  rebuild: boolean;
  passFile: string;
  gnupgHome: string;
  log: (s: string) => void;
}

/** A section's figures, plus what could not be measured while the rest could. */
export interface SectionResult {
  figures: Figure[];
  details: unknown;
  broken?: string[];
}

/** What the shell side runs, for the report. */
export const PG_SHELL_TEXT = [
  PG_SHELL_SCRIPT,
  '# restore test ($SCRATCH a fresh name; create, restore, count, drop are each timed):',
  ...PG_SHELL_RESTORE.split('\n').filter((l) => !/^t\d=|bench-phases|pipefail/.test(l)),
].join('\n');

/** The restore test's scratch databases are named `dbflow_verify_<run>_<db>` (plugins/backup/restore-test.ts). */
const DBFLOW_SCRATCH_PREFIX = 'dbflow_verify_';

export async function postgres(o: PostgresOptions): Promise<SectionResult> {
  const { log } = o;
  const server = await probeServer();
  log(`  PostgreSQL ${server.serverVersion} at ${displayUrl(PG_ADMIN_URL)}; ${server.pgDump}`);
  const src = await benchDatabase(o.sizeMiB, { rebuild: o.rebuild, log });
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
    const state = path.join(work, 'state');

    const { attempt: dbflow, ok: dbflowOk } = await dbflowRunner<DbflowRun>(chain, 'postgres', broken, log);
    const shellEnv = { PGURL: src.url, OUT: shellOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome };
    const { shells, dbflows } = await alternateRuns(
      () => pgShellRun(shellEnv),
      (i) => dbflow(`chain run #${i + 1}`, () => dbflowRun(chain, state, outDir)),
      log,
    );

    // Once more without checksums: what they cost (they are computed alongside the dump).
    const noSums = await dbflow('run with checksums: false', () =>
      dbflowRun(pipeline('bench_pg_nochecksums', src, false, false), state, outDir),
    );
    if (noSums) log(`  dbflow checksums: false: ${describe(noSums)}`);

    // Restore test: dbflow's restore-test step, then stock tools on the artifact dbflow stored
    // (the shell's, when dbflow could not run). Scratch databases left by dbflow are a driver bug.
    const before = dbflowOk() ? await databasesStartingWith(DBFLOW_SCRATCH_PREFIX) : [];
    const dr = await dbflow('run with restore-test', () =>
      dbflowRun(pipeline('bench_pg_restore', src, true, true), state, outDir, { keep: true }),
    );
    if (dr) {
      kept.push(dr.runDir);
      log(
        `  dbflow restore_test ${sec(dr.stepMs.restore_test ?? 0)}, rowcount_check ${(dr.stepMs.rowcount_check ?? 0).toFixed(0)} ms (whole run ${sec(dr.wallMs)})`,
      );
      const leaked = (await databasesStartingWith(DBFLOW_SCRATCH_PREFIX)).filter((d) => !before.includes(d));
      if (leaked.length) {
        broken.push(`dbflow's restore-test left scratch database(s) behind: ${leaked.join(', ')} (dropped by the bench)`);
        for (const d of leaked) await dropScratch(d);
      }
    }
    const artifact = dr?.artifact ?? shellOut;
    const scratch = scratchName('restore');
    let sr: PgShellRestore;
    try {
      sr = await pgShellRestore({
        OUT: artifact,
        PASS: o.passFile,
        GNUPGHOME: o.gnupgHome,
        ADMIN_URL: PG_ADMIN_URL,
        SCRATCH: scratch,
        SCRATCH_URL: databaseUrl(scratch),
      });
    } finally {
      await dropScratch(scratch);
    }
    const wrong = PG_TABLES.filter((t) => sr.rows[t] !== src.rows[t]);
    if (wrong.length)
      broken.push(
        `stock-tools restore of ${dr ? "dbflow's" : "the shell's"} artifact: row counts differ for ${wrong.map((t) => `${t} (${sr.rows[t]} restored, ${src.rows[t]} in the source)`).join(', ')}`,
      );
    log(
      `  shell restore of ${dr ? "dbflow's" : "the shell's"} artifact: ${sec(sr.wallMs)} (create ${sec(sr.createMs)}, gpg|zstd|pg_restore ${sec(sr.restoreMs)}, counts ${sec(sr.countMs)}, drop ${sec(sr.dropMs)})`,
    );

    // RSS flatness on 3× the size.
    let flat: { db: SourceDatabase; run?: DbflowRun } | undefined;
    if (o.flat) {
      const big = await benchDatabase(o.sizeMiB * 3, { rebuild: o.rebuild, log });
      const r = await dbflow('run on the 3× database', () => dbflowRun(pipeline('bench_pg_chain_3x', big, true, false), state, outDir));
      if (r) log(`  dbflow 3× (${(big.bytes / MiB).toFixed(0)} MiB): ${describe(r)}`);
      flat = { db: big, ...(r && { run: r }) };
    }

    const figures = pgFigures({ src, shells, dbflows, noSums, dr, sr, flat });
    return {
      figures,
      ...(broken.length && { broken }),
      details: {
        server: { ...server, url: displayUrl(PG_ADMIN_URL) },
        source: { ...src, url: displayUrl(src.url) },
        shellScript: PG_SHELL_SCRIPT,
        shell: shells.map(strip),
        dbflow: dbflows.map(strip),
        ...(noSums && { noChecksums: strip(noSums) }),
        restore: { dbflow: dr && strip(dr), shell: strip(sr), artifact: dr ? 'dbflow' : 'shell' },
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

function pgFigures(r: {
  src: SourceDatabase;
  shells: PgShellRun[];
  dbflows: DbflowRun[];
  noSums: DbflowRun | undefined;
  dr: DbflowRun | undefined;
  sr: PgShellRestore;
  flat: { db: SourceDatabase; run?: DbflowRun } | undefined;
}): Figure[] {
  const S = '4 postgres';
  const { src, dbflows } = r;
  const rows = Object.values(src.rows).reduce((a, b) => a + b, 0);
  const figures: Figure[] = [
    figure(S, 'source database (pg_database_size)', src.bytes / MiB, 'MiB', {
      note: `${rows} rows in ${PG_TABLES.length} tables; ${src.name}, ${src.builtMs ? `built in ${sec(src.builtMs)}` : `cached, built ${src.builtAt}`}`,
    }),
    ...chainFigures(S, src.bytes / MiB, r, {
      shellName: 'pg_dump|zstd|gpg',
      dbflowTools: 'node, pg_dump, zstd',
      shellTools: 'pg_dump, zstd, gpg',
      snapshotNote: 'REPEATABLE READ snapshot exported and tables locked; its row counts and checksums run alongside the dump chain',
      serverWorkers: 'backends',
      dumpName: 'pg_dump -Fc -Z0',
      noSumsNoise: 'one run each way: noisy',
    }),
  ];
  if (r.dr) {
    const rt = r.dr.stepMs.restore_test ?? 0;
    figures.push(
      figure(S, 'restore: dbflow restore_test step', rt / 1000, 's', {
        note: `scratch db + download|decrypt|decompress|pg_restore + counts/checksums + drop; rowcount_check ${(r.dr.stepMs.rowcount_check ?? 0).toFixed(0)} ms`,
      }),
      figure(S, 'restore: dbflow / shell', rt / r.sr.wallMs, '×', { note: 'reported, no target' }),
    );
  }
  figures.push(
    figure(S, 'restore: shell gpg -d|zstd -d|pg_restore + count(*)', r.sr.wallMs / 1000, 's', {
      note: `of ${r.dr ? "dbflow's" : "the shell's"} artifact: createdb ${sec(r.sr.createMs)}, restore ${sec(r.sr.restoreMs)}, counts ${sec(r.sr.countMs)}, drop ${sec(r.sr.dropMs)}`,
    }),
  );
  if (r.flat?.run && dbflows.length) {
    const small = Math.max(...dbflows.map((d) => d.maxRssKiB)) / 1024;
    const big = r.flat.run.maxRssKiB / 1024;
    const slack = Math.max(0.1 * small, 15);
    figures.push(
      bounded(
        S,
        `dbflow peak RSS at 3× (${(r.flat.db.bytes / MiB).toFixed(0)} MiB)`,
        big,
        'MiB',
        RSS_LIMIT_MIB,
        true,
        `wall ${sec(r.flat.run.wallMs)}`,
      ),
      bounded(
        S,
        'dbflow peak RSS growth 1× → 3×',
        big - small,
        'MiB',
        round(slack, 1),
        true,
        `${small.toFixed(0)} → ${big.toFixed(0)} MiB; target: within 10% or 15 MiB`,
      ),
    );
  }
  return figures;
}
