// What the database sections share: dbflow's chain against a shell pipeline, timed runs and figures.
import path from 'node:path';
import type { DbflowRun } from './chain-runs.js';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, CLI, median, MiB, round, run, runOk, type Timed } from './util.js';

export const RUNS = 2;
export const RSS_LIMIT_MIB = 200;
export const WALL_RATIO = 1.15;
const CHAIN = ['dump', 'compress', 'encrypt', 'upload'];

/** A dbflow run, with the commit barrier its snapshot recorded where the driver has one. */
export type ChainRun = DbflowRun & { barrierMs?: number };

export const chainMs = (r: DbflowRun): number => Math.max(...CHAIN.map((s) => r.stepMs[s] ?? 0));
export const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
export const message = (err: unknown): string =>
  err instanceof BenchError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
export const strip = (r: object): Record<string, unknown> => ({ ...r, stdout: undefined, stderr: undefined });

export function describe(d: ChainRun): string {
  return `${sec(d.wallMs)} (snapshot ${sec(d.stepMs.snapshot ?? 0)}, dump chain ${sec(chainMs(d))}), peak RSS ${(d.maxRssKiB / 1024).toFixed(0)} MiB${d.barrierMs !== undefined ? `, commits blocked ${d.barrierMs.toFixed(1)} ms` : ''}`;
}

/** gpg starts its agent and creates its keybox on first use: not part of a backup. */
export async function warmGpg(passFile: string, gnupgHome: string, dir: string): Promise<void> {
  await runOk(
    'gpg',
    ['--batch', '--yes', '--symmetric', '--pinentry-mode', 'loopback', '--passphrase-file', passFile, '-o', path.join(dir, 'warm.gpg')],
    {
      env: { ...process.env, GNUPGHOME: gnupgHome },
    },
  );
}

/**
 * Runs of dbflow that stop at the first failure (recorded in `broken`), once `dbflow validate`
 * accepts `chain`: without the driver (or with a broken one) the shell figures are still worth having.
 */
export async function dbflowRunner<R>(
  chain: string,
  driver: string,
  broken: string[],
  log: (s: string) => void,
): Promise<{ attempt: (what: string, fn: () => Promise<R>) => Promise<R | undefined>; ok: () => boolean }> {
  let ok = true;
  const v = await run(process.execPath, [CLI, 'validate', chain]);
  if (v.code !== 0) {
    ok = false;
    broken.push(
      `dbflow cannot run the ${driver} pipeline (dbflow validate exited ${v.code}):\n${`${v.stderr}\n${v.stdout}`.trim().slice(-1500)}`,
    );
    log(`  dbflow validate failed: dbflow runs skipped (${v.stderr.trim().split('\n')[0] ?? ''})`);
  }
  const attempt = async (what: string, fn: () => Promise<R>): Promise<R | undefined> => {
    if (!ok) return undefined;
    try {
      return await fn();
    } catch (err) {
      ok = false;
      broken.push(`dbflow ${what}: ${message(err)}`);
      log(`  dbflow ${what} FAILED: ${message(err).split('\n')[0]}`);
      return undefined;
    }
  };
  return { attempt, ok: () => ok };
}

/** The timed runs, alternating which side goes first. */
export async function alternateRuns<S extends Timed & { outBytes: number }, D extends ChainRun>(
  shell: () => Promise<S>,
  dbflow: (i: number) => Promise<D | undefined>,
  log: (s: string) => void,
): Promise<{ shells: S[]; dbflows: D[] }> {
  const shells: S[] = [];
  const dbflows: D[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const side of i % 2 === 0 ? ['shell', 'dbflow'] : ['dbflow', 'shell']) {
      if (side === 'shell') {
        const s = await shell();
        shells.push(s);
        log(`  shell  #${i + 1}: ${sec(s.wallMs)}, peak RSS ${(s.maxRssKiB / 1024).toFixed(0)} MiB, ${mib(s.outBytes)}`);
      } else {
        const d = await dbflow(i);
        if (d) dbflows.push(d);
        if (d) log(`  dbflow #${i + 1}: ${describe(d)}, ${mib(d.outBytes)}`);
      }
    }
  }
  return { shells, dbflows };
}

/** Words that differ between the database sections. */
export interface ChainWords {
  /** e.g. `pg_dump|zstd|gpg`. */
  shellName: string;
  /** The programs whose RSS each side's figure takes the largest of. */
  dbflowTools: string;
  shellTools: string;
  snapshotNote: string;
  /** What the server runs queries in: `backends`, `threads`. */
  serverWorkers: string;
  /** The raw dump, e.g. `pg_dump -Fc -Z0`. */
  dumpName: string;
  /** What the checksums-off figure adds after the snapshot time, e.g. `, peak RSS 133 MiB`. */
  noSumsExtra?: (r: ChainRun) => string;
  noSumsNoise: string;
}

/** The shell's wall time, dbflow's wall time and ratio, RSS, phases, CPU, artifact size and the checksums-off run. */
export function chainFigures(
  S: string,
  sourceMiB: number,
  r: { shells: (Timed & { outBytes: number })[]; dbflows: ChainRun[]; noSums: ChainRun | undefined },
  w: ChainWords,
): Figure[] {
  const { shells, dbflows } = r;
  const shWall = median(shells.map((s) => s.wallMs));
  const shOut = shells.at(-1)!.outBytes;
  const figures: Figure[] = [
    figure(S, `shell ${w.shellName} wall (median of ${shells.length})`, shWall / 1000, 's', {
      note: `${shells.map((s) => sec(s.wallMs)).join(', ')}; ${(sourceMiB / (shWall / 1000)).toFixed(0)} MiB/s of the database`,
    }),
  ];
  if (!dbflows.length) return [...figures, figure(S, 'shell artifact', shOut / MiB, 'MiB', { note: 'dbflow could not run: see BROKEN' })];
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
    bounded(S, 'dbflow/shell wall time', ratio, '×', WALL_RATIO, true, `dbflow runs at ${(100 / ratio).toFixed(0)}% of the shell's speed`),
    bounded(
      S,
      `dbflow peak RSS (max of ${dbflows.length})`,
      rssMiB,
      'MiB',
      RSS_LIMIT_MIB,
      true,
      `GNU time %M: largest of ${w.dbflowTools}`,
    ),
    figure(S, 'shell peak RSS', Math.max(...shells.map((s) => s.maxRssKiB)) / 1024, 'MiB', { note: `largest of ${w.shellTools}` }),
    figure(S, 'dbflow snapshot step', snap / 1000, 's', { note: w.snapshotNote }),
    figure(S, 'dbflow dump chain / shell wall', chain / shWall, '×', {
      note: `${sec(chain)} vs ${sec(shWall)}: dump → compress → encrypt → upload alone${dumpBytes ? `, ${(dumpBytes / MiB / (chain / 1000)).toFixed(0)} MiB/s of dump` : ''}`,
    }),
    figure(S, 'CPU user+sys: dbflow / shell', cpu(dbflows) / cpu(shells), '×', {
      note: `${round(cpu(dbflows), 1)} s vs ${round(cpu(shells), 1)} s (children included; the server's ${w.serverWorkers} are not)`,
    }),
    figure(S, 'artifact size: dbflow / shell', dbOut / shOut, '×', {
      note: `${mib(dbOut)} vs ${mib(shOut)}${dumpBytes ? `; ${w.dumpName} ${mib(dumpBytes)}, zstd -3 ratio ${(dumpBytes / dbOut).toFixed(2)}×` : ''}`,
    }),
  );
  if (r.noSums) {
    const ns = r.noSums;
    figures.push(
      figure(S, 'dbflow wall with checksums: false (1 run)', ns.wallMs / 1000, 's', {
        note: `${(ns.wallMs / shWall).toFixed(2)}× the shell (snapshot ${sec(ns.stepMs.snapshot ?? 0)}${w.noSumsExtra?.(ns) ?? ''}); checksums cost ${sec(dbWall - ns.wallMs)} of wall time (${w.noSumsNoise})`,
      }),
    );
  }
  return figures;
}
