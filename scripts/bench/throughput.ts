// 3. Quickstart chain throughput on a large SQLite database: dbflow CLI vs the equivalent shell pipeline.
import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { benchYaml, dbflowRun, GPG_ENCRYPT, shellRestore, shellRun, writePipeline, type DbflowRun, type ShellRun } from './chain-runs.js';
import { warmGpg } from './db-chain.js';
import { bounded, figure, type Figure } from './report.js';
import { sourceDatabase } from './seed.js';
import { stageCeilings } from './stages.js';
import { DATA, MiB, round, scratchDir } from './util.js';

export interface ThroughputOptions {
  sizeMiB: number;
  passFile: string;
  gnupgHome: string;
  rssFlat: boolean;
  log: (s: string) => void;
}

const CHAIN = ['dump', 'compress', 'encrypt', 'upload'];

/** Reads a file once so every timed run starts with it in the page cache. */
async function warm(file: string): Promise<void> {
  for await (const _ of createReadStream(file, { highWaterMark: 4 * MiB })) void _;
}

const best = <T extends { wallMs: number }>(xs: T[]): T => xs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
const chainMs = (r: DbflowRun): number => Math.max(...CHAIN.map((s) => r.stepMs[s] ?? 0));

export async function throughput(o: ThroughputOptions): Promise<{ figures: Figure[]; details: unknown }> {
  const { log } = o;
  const src = await sourceDatabase(o.sizeMiB, log);
  const srcMiB = src.bytes / MiB;
  const outDir = path.join(DATA, 'out');
  mkdirSync(outDir, { recursive: true });
  const work = scratchDir('chain', DATA);
  const shellTmp = scratchDir('shell'); // next to where dbflow stages its snapshot (os.tmpdir())
  const shellEnv = {
    SRC: src.file,
    TMP: path.join(shellTmp, 'tmp.db'),
    OUT: path.join(outDir, 'shell.sqlite3.zst.gpg'),
    PASS: o.passFile,
    GNUPGHOME: o.gnupgHome,
  };
  try {
    const chain = writePipeline(
      path.join(work, 'bench-chain.yaml'),
      benchYaml({ db: src.file, passFile: o.passFile, outDir, restore: false }),
    );
    await warm(src.file);
    await warmGpg(o.passFile, o.gnupgHome, shellTmp); // ~1.5 s here on first use
    const shells: ShellRun[] = [];
    const dbflows: DbflowRun[] = [];
    for (let i = 0; i < 2; i++) {
      const s = await shellRun(shellEnv);
      shells.push(s);
      log(
        `  shell  #${i + 1}: ${(s.wallMs / 1000).toFixed(2)} s (backup ${(s.backupMs / 1000).toFixed(2)} s, zstd|gpg ${(s.streamMs / 1000).toFixed(2)} s), peak RSS ${(s.maxRssKiB / 1024).toFixed(0)} MiB`,
      );
      const d = await dbflowRun(chain, path.join(work, 'state'), outDir);
      dbflows.push(d);
      log(
        `  dbflow #${i + 1}: ${(d.wallMs / 1000).toFixed(2)} s (snapshot ${((d.stepMs.snapshot ?? 0) / 1000).toFixed(2)} s, chain ${(chainMs(d) / 1000).toFixed(2)} s), peak RSS ${(d.maxRssKiB / 1024).toFixed(0)} MiB`,
      );
    }
    const sh = best(shells);
    const db = best(dbflows);
    const rssMiB = Math.max(...dbflows.map((d) => d.maxRssKiB)) / 1024;

    // Restore: one dbflow run with restore-test + rowcount-check, and the stock-tools restore of the shell's output.
    const restorePipeline = writePipeline(
      path.join(work, 'bench-restore.yaml'),
      benchYaml({ db: src.file, passFile: o.passFile, outDir, restore: true }),
    );
    const dr = await dbflowRun(restorePipeline, path.join(work, 'state'), outDir);
    const sr = await shellRestore({
      OUT: shellEnv.OUT,
      RESTORED: path.join(shellTmp, 'restored.db'),
      PASS: o.passFile,
      GNUPGHOME: o.gnupgHome,
    });
    log(
      `  restore: dbflow restore_test ${((dr.stepMs.restore_test ?? 0) / 1000).toFixed(2)} s + rowcount_check ${dr.stepMs.rowcount_check ?? 0} ms; shell ${(sr.wallMs / 1000).toFixed(2)} s`,
    );

    const stages = await stageCeilings({
      db: src.file,
      work,
      passFile: o.passFile,
      gnupgHome: o.gnupgHome,
      snapshotMiBs: srcMiB / ((db.stepMs.snapshot ?? 1) / 1000),
      log,
    });

    let flat: { bytes: number; run: DbflowRun } | undefined;
    if (o.rssFlat) {
      const big = await sourceDatabase(o.sizeMiB * 2, log);
      await warm(big.file);
      const bigChain = writePipeline(
        path.join(work, 'bench-chain-2x.yaml'),
        benchYaml({ db: big.file, passFile: o.passFile, outDir, restore: false }),
      );
      const run = await dbflowRun(bigChain, path.join(work, 'state'), outDir);
      log(
        `  dbflow 2× (${(big.bytes / MiB).toFixed(0)} MiB): ${(run.wallMs / 1000).toFixed(2)} s, peak RSS ${(run.maxRssKiB / 1024).toFixed(0)} MiB`,
      );
      flat = { bytes: big.bytes, run };
    }

    const S = '3 throughput';
    const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
    const ratio = db.wallMs / sh.wallMs;
    const figures: Figure[] = [
      figure(S, `source database`, srcMiB, 'MiB', {
        note: `${src.orders ? `${src.orders} orders, ` : ''}${path.relative(process.cwd(), src.file)}`,
      }),
      figure(S, 'shell throughput (best of 2)', srcMiB / (sh.wallMs / 1000), 'MiB/s', {
        note: `${s(sh.wallMs)} wall: .backup ${s(sh.backupMs)}, zstd|gpg ${s(sh.streamMs)}`,
      }),
      figure(S, 'dbflow throughput (best of 2)', srcMiB / (db.wallMs / 1000), 'MiB/s', {
        note: `${s(db.wallMs)} wall: snapshot ${s(db.stepMs.snapshot ?? 0)}, chain ${s(chainMs(db))}, rest ${s(db.wallMs - (db.stepMs.snapshot ?? 0) - chainMs(db))}`,
      }),
      bounded(S, 'dbflow/shell wall time', ratio, '×', 1.2, true, `dbflow runs at ${(100 / ratio).toFixed(0)}% of the shell's speed`),
      bounded(S, 'dbflow peak RSS (max of 2 runs)', rssMiB, 'MiB', 200, true, 'GNU time %M: largest of node and its zstd child'),
      figure(S, 'shell peak RSS', sh.maxRssKiB / 1024, 'MiB', { note: 'largest of sqlite3, zstd, gpg' }),
      figure(S, 'snapshot phase: dbflow / shell .backup', (db.stepMs.snapshot ?? 0) / sh.backupMs, '×', {
        note: `${s(db.stepMs.snapshot ?? 0)} vs ${s(sh.backupMs)}; dbflow also counts the rows of every table in its copy`,
      }),
      figure(S, 'stream phase: dbflow chain / shell zstd|gpg', chainMs(db) / sh.streamMs, '×', {
        note: `${s(chainMs(db))} vs ${s(sh.streamMs)}`,
      }),
      figure(S, 'CPU user+sys: dbflow / shell', (db.userS + db.sysS) / (sh.userS + sh.sysS), '×', {
        note: `${round(db.userS + db.sysS, 1)} s vs ${round(sh.userS + sh.sysS, 1)} s (children included)`,
      }),
      figure(S, 'artifact size: dbflow / shell', db.outBytes / sh.outBytes, '×', {
        note: `${(db.outBytes / MiB).toFixed(1)} MiB vs ${(sh.outBytes / MiB).toFixed(1)} MiB`,
      }),
      figure(S, 'restore: dbflow restore_test step', (dr.stepMs.restore_test ?? 0) / 1000, 's', {
        note: `+ rowcount_check ${dr.stepMs.rowcount_check ?? 0} ms; whole run ${s(dr.wallMs)} (reported, no target)`,
      }),
      figure(S, 'restore: shell gpg -d | zstd -d + counts', sr.wallMs / 1000, 's', {
        note: 'stock tools + PRAGMA integrity_check + count(*) per table',
      }),
    ];
    if (flat) {
      const flatMiB = flat.run.maxRssKiB / 1024;
      figures.push(
        bounded(
          S,
          `dbflow peak RSS at 2× size (${(flat.bytes / MiB).toFixed(0)} MiB)`,
          flatMiB,
          'MiB',
          200,
          true,
          `${(flatMiB / rssMiB).toFixed(2)}× the RSS at 1× size`,
        ),
        figure(S, 'dbflow throughput at 2× size', flat.bytes / MiB / (flat.run.wallMs / 1000), 'MiB/s', {
          note: `${s(flat.run.wallMs)} wall`,
        }),
      );
    }
    figures.push(...stages.figures);
    const strip = (r: ShellRun | DbflowRun): Record<string, unknown> => ({ ...r, stdout: undefined, stderr: undefined });
    return {
      figures,
      details: {
        source: { file: src.file, bytes: src.bytes, orders: src.orders, seededMs: src.seededMs },
        gpgCommand: GPG_ENCRYPT,
        shell: shells.map(strip),
        dbflow: dbflows.map(strip),
        stages: stages.details,
        restore: { dbflow: strip(dr), shell: { wallMs: sr.wallMs, maxRssKiB: sr.maxRssKiB } },
        ...(flat && { rssFlat: { bytes: flat.bytes, run: strip(flat.run) } }),
      },
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(shellTmp, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}
