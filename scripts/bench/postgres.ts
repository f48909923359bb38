// 4. PostgreSQL: dbflow's snapshot → dump → compress → encrypt → upload chain through the built CLI
// against `pg_dump -Fc -Z0 | zstd -3 -T0 | gpg` on a generated database of BENCH_PG_SIZE_MB, the
// cost of in-snapshot checksums, the restore test against stock tools, and (BENCH_PG_FLAT=1) peak
// RSS on a database of 3× the size.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { dbflowRun, writePipeline, type DbflowRun } from './chain-runs.js';
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
import { BenchError, CLI, DATA, median, MiB, round, run, runOk, scratchDir } from './util.js';

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

const RUNS = 2;
const CHAIN = ['dump', 'compress', 'encrypt', 'upload'];
const RSS_LIMIT_MIB = 200;
/** The restore test's scratch databases are named `dbflow_verify_<run>_<db>` (plugins/backup/restore-test.ts). */
const DBFLOW_SCRATCH_PREFIX = 'dbflow_verify_';

const chainMs = (r: DbflowRun): number => Math.max(...CHAIN.map((s) => r.stepMs[s] ?? 0));
const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const message = (err: unknown): string =>
  err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
const strip = (r: object): Record<string, unknown> => ({ ...r, stdout: undefined, stderr: undefined });

function describe(d: DbflowRun): string {
  return `${sec(d.wallMs)} (snapshot ${sec(d.stepMs.snapshot ?? 0)}, dump chain ${sec(chainMs(d))}), peak RSS ${(d.maxRssKiB / 1024).toFixed(0)} MiB`;
}

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
      {
        env: { ...process.env, GNUPGHOME: o.gnupgHome },
      },
    );
    const pipeline = (name: string, db: SourceDatabase, checksums: boolean, restore: boolean): string =>
      writePipeline(path.join(work, `${name}.yaml`), pgBenchYaml({ name, url: db.url, passFile: o.passFile, outDir, checksums, restore }));
    const chain = pipeline('bench_pg_chain', src, true, false);
    const state = path.join(work, 'state');

    // Without the driver (or with a broken one) the shell figures are still worth having.
    let dbflowOk = true;
    const v = await run(process.execPath, [CLI, 'validate', chain]);
    if (v.code !== 0) {
      dbflowOk = false;
      broken.push(
        `dbflow cannot run the postgres pipeline (dbflow validate exited ${v.code}):\n${`${v.stderr}\n${v.stdout}`.trim().slice(-1500)}`,
      );
      log(`  dbflow validate failed: dbflow runs skipped (${v.stderr.trim().split('\n')[0] ?? ''})`);
    }
    const dbflow = async (what: string, fn: () => Promise<DbflowRun>): Promise<DbflowRun | undefined> => {
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
    const shells: PgShellRun[] = [];
    const dbflows: DbflowRun[] = [];
    const shellEnv = { PGURL: src.url, OUT: shellOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome };
    for (let i = 0; i < RUNS; i++) {
      for (const side of i % 2 === 0 ? ['shell', 'dbflow'] : ['dbflow', 'shell']) {
        if (side === 'shell') {
          const s = await pgShellRun(shellEnv);
          shells.push(s);
          log(`  shell  #${i + 1}: ${sec(s.wallMs)}, peak RSS ${(s.maxRssKiB / 1024).toFixed(0)} MiB, ${mib(s.outBytes)}`);
        } else {
          const d = await dbflow(`chain run #${i + 1}`, () => dbflowRun(chain, state, outDir));
          if (d) dbflows.push(d);
          if (d) log(`  dbflow #${i + 1}: ${describe(d)}, ${mib(d.outBytes)}`);
        }
      }
    }

    // Once more without checksums: what they cost (they are computed alongside the dump).
    const noSums = await dbflow('run with checksums: false', () =>
      dbflowRun(pipeline('bench_pg_nochecksums', src, false, false), state, outDir),
    );
    if (noSums) log(`  dbflow checksums: false: ${describe(noSums)}`);

    // Restore test: dbflow's restore-test step, then stock tools on the artifact dbflow stored
    // (the shell's, when dbflow could not run). Scratch databases left by dbflow are a driver bug.
    const before = dbflowOk ? await databasesStartingWith(DBFLOW_SCRATCH_PREFIX) : [];
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
  const { src, shells, dbflows } = r;
  const rows = Object.values(src.rows).reduce((a, b) => a + b, 0);
  const shWall = median(shells.map((s) => s.wallMs));
  const shOut = shells.at(-1)!.outBytes;
  const figures: Figure[] = [
    figure(S, 'source database (pg_database_size)', src.bytes / MiB, 'MiB', {
      note: `${rows} rows in ${PG_TABLES.length} tables; ${src.name}, ${src.builtMs ? `built in ${sec(src.builtMs)}` : `cached, built ${src.builtAt}`}`,
    }),
    figure(S, `shell pg_dump|zstd|gpg wall (median of ${shells.length})`, shWall / 1000, 's', {
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
      bounded(S, 'dbflow/shell wall time', ratio, '×', 1.15, true, `dbflow runs at ${(100 / ratio).toFixed(0)}% of the shell's speed`),
      bounded(
        S,
        `dbflow peak RSS (max of ${dbflows.length})`,
        rssMiB,
        'MiB',
        RSS_LIMIT_MIB,
        true,
        'GNU time %M: largest of node, pg_dump, zstd',
      ),
      figure(S, 'shell peak RSS', Math.max(...shells.map((s) => s.maxRssKiB)) / 1024, 'MiB', { note: 'largest of pg_dump, zstd, gpg' }),
      figure(S, 'dbflow snapshot step', snap / 1000, 's', {
        note: 'REPEATABLE READ snapshot exported and tables locked; its row counts and checksums run alongside the dump chain',
      }),
      figure(S, 'dbflow dump chain / shell wall', chain / shWall, '×', {
        note: `${sec(chain)} vs ${sec(shWall)}: dump → compress → encrypt → upload alone${dumpBytes ? `, ${(dumpBytes / MiB / (chain / 1000)).toFixed(0)} MiB/s of dump` : ''}`,
      }),
      figure(S, 'CPU user+sys: dbflow / shell', cpu(dbflows) / cpu(shells), '×', {
        note: `${round(cpu(dbflows), 1)} s vs ${round(cpu(shells), 1)} s (children included; the server's backends are not)`,
      }),
      figure(S, 'artifact size: dbflow / shell', dbOut / shOut, '×', {
        note: `${mib(dbOut)} vs ${mib(shOut)}${dumpBytes ? `; pg_dump -Fc -Z0 ${mib(dumpBytes)}, zstd -3 ratio ${(dumpBytes / dbOut).toFixed(2)}×` : ''}`,
      }),
    );
    if (r.noSums) {
      const nsSnap = r.noSums.stepMs.snapshot ?? 0;
      figures.push(
        figure(S, 'dbflow wall with checksums: false (1 run)', r.noSums.wallMs / 1000, 's', {
          note: `${(r.noSums.wallMs / shWall).toFixed(2)}× the shell (snapshot ${sec(nsSnap)}); checksums cost ${sec(dbWall - r.noSums.wallMs)} of wall time (one run each way: noisy)`,
        }),
      );
    }
  } else {
    figures.push(figure(S, `shell artifact`, shOut / MiB, 'MiB', { note: 'dbflow could not run: see BROKEN' }));
  }
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
