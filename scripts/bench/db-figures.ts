// The figures of a database section: dbflow's chain against the shell (wall, CPU, CPU with the
// server, first byte, peak RSS), the restore test against the stock restore, RSS flatness.
// The letters (a)…(g) are those of the bench's acceptance list (README, "Benchmark").
import { clientCpuS, chainMs, mib, sec, type ChainRounds, type ChainRun, type ShellRun } from './db-chain.js';
import { bounded, figure, notAvailable, type Figure } from './report.js';
import { DUMP_PROGRAMS } from './chain-runs.js';
import { median, MiB, type Timed } from './util.js';

export const TARGETS = {
  /** (a) wall time, dbflow / shell, checksums on. */
  wall: 1.15,
  /** (b) CPU of the client processes, dbflow / shell. */
  cpu: 1.15,
  /** (c) wall time, dbflow with checksums off / shell. */
  wallNoChecksums: 1.1,
  /** (d) CPU of the client processes and the server, dbflow / shell, checksums on. */
  cpuWithServer: 1.25,
  /** (e) seconds from the run's start to the first byte on the dump edge. */
  firstByteS: 0.2,
  /** (f) peak RSS of dbflow's node process, MiB, and its growth 1× → 3×. */
  rssMiB: 200,
  rssFlat: 1.1,
  /** (g) restore-test / stock restore, wall time. */
  restore: 1.1,
} as const;

/** Words that differ between the database sections. */
export interface ChainWords {
  /** e.g. `pg_dump|zstd|gpg`. */
  shellName: string;
  /** The programs each side's client CPU covers. */
  dbflowTools: string;
  shellTools: string;
  snapshotNote: string;
  /** The raw dump, e.g. `pg_dump -Fc -Z0`. */
  dumpName: string;
}

const values = (xs: readonly number[], f: (x: number) => string): string => xs.map(f).join(', ');
/** dbflow's node process: the program GNU time ran. */
export const nodeOf = (t: Timed) => t.tree?.procs.find((p) => p.depth === 1);
const nodePeakMiB = (t: Timed): number => (nodeOf(t)?.peakRssKiB ?? 0) / 1024;

/** (a)–(f) and the rest of the chain comparison. */
export function chainFigures(
  S: string,
  sourceMiB: number,
  r: ChainRounds<ShellRun>,
  w: ChainWords,
  serverNa: string | undefined,
): Figure[] {
  const { shells, dbflows, noSums } = r;
  const shWall = median(shells.map((s) => s.wallMs));
  const shOut = shells.at(-1)!.outBytes;
  const figures: Figure[] = [
    figure(S, `shell ${w.shellName} wall (median of ${shells.length})`, shWall / 1000, 's', {
      note: `${values(
        shells.map((s) => s.wallMs),
        sec,
      )}; ${(sourceMiB / (shWall / 1000)).toFixed(0)} MiB/s of the database`,
    }),
  ];
  if (!dbflows.length) return [...figures, figure(S, 'shell artifact', shOut / MiB, 'MiB', { note: 'dbflow could not run: see BROKEN' })];
  const dbWall = median(dbflows.map((d) => d.wallMs));
  const snap = median(dbflows.map((d) => d.stepMs.snapshot ?? 0));
  const chain = median(dbflows.map(chainMs));
  figures.push(
    figure(S, `dbflow wall (median of ${dbflows.length})`, dbWall / 1000, 's', {
      note: `${values(
        dbflows.map((d) => d.wallMs),
        sec,
      )}; snapshot ${sec(snap)}, dump chain ${sec(chain)}, rest ${sec(dbWall - snap - chain)}`,
    }),
    bounded(
      S,
      '(a) wall dbflow / shell',
      dbWall / shWall,
      '×',
      TARGETS.wall,
      true,
      `dbflow runs at ${((100 * shWall) / dbWall).toFixed(0)}% of the shell's speed`,
    ),
  );
  if (noSums.length) {
    const nsWall = median(noSums.map((d) => d.wallMs));
    figures.push(
      figure(S, `dbflow wall, checksums: false (median of ${noSums.length})`, nsWall / 1000, 's', {
        note: `${values(
          noSums.map((d) => d.wallMs),
          sec,
        )}; snapshot ${sec(median(noSums.map((d) => d.stepMs.snapshot ?? 0)))}; checksums cost ${sec(dbWall - nsWall)}`,
      }),
      bounded(S, '(c) wall dbflow checksums off / shell', nsWall / shWall, '×', TARGETS.wallNoChecksums, true),
    );
  }
  const dbCpu = median(dbflows.map(clientCpuS));
  const shCpu = median(shells.map(clientCpuS));
  figures.push(
    bounded(
      S,
      '(b) client CPU dbflow / shell',
      dbCpu / shCpu,
      '×',
      TARGETS.cpu,
      true,
      `${dbCpu.toFixed(1)} s vs ${shCpu.toFixed(1)} s user+sys (medians): ${w.dbflowTools} vs ${w.shellTools}, from rusage`,
    ),
  );
  figures.push(withServer(S, shells, dbflows, serverNa));
  figures.push(...firstByte(S, dbflows, shells));
  const rss = Math.max(...[...dbflows, ...noSums].map(nodePeakMiB));
  figures.push(
    bounded(
      S,
      `(f) dbflow node peak RSS (max of ${dbflows.length + noSums.length})`,
      rss,
      'MiB',
      TARGETS.rssMiB,
      true,
      `VmHWM of the node process, sampled; largest single process of its tree (GNU time) ${(Math.max(...dbflows.map((d) => d.maxRssKiB)) / 1024).toFixed(0)} MiB`,
    ),
    figure(S, 'shell peak RSS', Math.max(...shells.map((s) => s.maxRssKiB)) / 1024, 'MiB', {
      note: `largest single process of ${w.shellTools}`,
    }),
    figure(S, 'dbflow snapshot step', snap / 1000, 's', { note: w.snapshotNote }),
    figure(S, 'dbflow dump chain / shell wall', chain / shWall, '×', {
      note: `${sec(chain)} vs ${sec(shWall)}: dump → compress → encrypt → upload alone`,
    }),
  );
  const dumpBytes = dbflows.at(-1)!.stepBytes.dump ?? 0;
  const dbOut = dbflows.at(-1)!.outBytes;
  figures.push(
    figure(S, 'artifact size dbflow / shell', dbOut / shOut, '×', {
      note: `${mib(dbOut)} vs ${mib(shOut)}${dumpBytes ? `; ${w.dumpName} ${mib(dumpBytes)}, zstd -3 ratio ${(dumpBytes / dbOut).toFixed(2)}×` : ''}`,
    }),
  );
  return figures;
}

/** (d): client + server CPU, medians of the per-run sums. */
function withServer(S: string, shells: readonly Timed[], dbflows: readonly Timed[], serverNa: string | undefined): Figure {
  const name = '(d) CPU with the server dbflow / shell';
  const all = [...shells, ...dbflows];
  if (serverNa || !all.every((t) => t.tree?.server))
    return notAvailable(S, name, '×', `≤ ${TARGETS.cpuWithServer}`, serverNa ?? 'the server CPU was not read on every run');
  const srv = (t: Timed): number => t.tree!.server!.totalS;
  const db = median(dbflows.map((t) => clientCpuS(t) + srv(t)));
  const sh = median(shells.map((t) => clientCpuS(t) + srv(t)));
  // The whole server includes other clients' work; where the server has a process per session, the
  // bench database's sessions alone give the same ratio without them.
  const own = (t: Timed): number | undefined => t.tree!.server!.sessionsS;
  const sessions = all.every((t) => own(t) !== undefined)
    ? `; with the server's sessions on the bench database only: ${(median(dbflows.map((t) => clientCpuS(t) + own(t)!)) / median(shells.map((t) => clientCpuS(t) + own(t)!))).toFixed(2)}×`
    : '';
  return bounded(
    S,
    name,
    db / sh,
    '×',
    TARGETS.cpuWithServer,
    true,
    `${db.toFixed(1)} s vs ${sh.toFixed(1)} s, of which the server ${median(dbflows.map(srv)).toFixed(1)} s vs ${median(shells.map(srv)).toFixed(1)} s (${dbflows[0]!.tree!.server!.label}, /proc before/after)${sessions}`,
  );
}

/**
 * (e): the first byte on the dump edge, after the run's start and after the process's start; and what
 * dbflow adds before it: that delay less the shell's (its dump program's first 64 KiB after the
 * pipeline starts, sampled the same way), since the dump program's own queries come first in both.
 */
function firstByte(S: string, dbflows: readonly ChainRun[], shells: readonly Timed[]): Figure[] {
  const name = '(e) first dump byte after the run starts (median)';
  const runs = dbflows.filter((d) => d.firstDumpByteAt !== undefined && d.runStartAt !== undefined);
  if (!runs.length)
    return [
      notAvailable(
        S,
        name,
        's',
        `≤ ${TARGETS.firstByteS}`,
        "neither a step:progress of the dump step nor a sample of the dump program's output",
      ),
    ];
  const fromRun = runs.map((d) => (d.firstDumpByteAt! - d.runStartAt!) / 1000);
  const fromProcess = runs.map((d) => (d.firstDumpByteAt! - d.startedAt) / 1000);
  const shellFirst = shells.flatMap((s) => {
    const at = s.tree?.procs.find((p) => DUMP_PROGRAMS.has(p.comm) && p.firstOutputAt !== undefined)?.firstOutputAt;
    return at === undefined ? [] : [(at - s.startedAt) / 1000];
  });
  const figures = [
    bounded(
      S,
      name,
      median(fromRun),
      's',
      TARGETS.firstByteS,
      true,
      `${values(fromRun, (x) => x.toFixed(3))} (run:start → ${
        runs.every((d) => d.firstDumpByteBy === 'event')
          ? 'first step:progress of dump, event times'
          : "the first ~100 ms sample of /proc/<pid>/io that saw the dump program's 64 KiB written (its stdout goes to zstd, not through dbflow): at most ~0.1 s late"
      })`,
    ),
    figure(S, '(e) first dump byte after the process starts (median)', median(fromProcess), 's', {
      note: `${values(fromProcess, (x) => x.toFixed(3))}; node's start-up and loading the pipeline included`,
    }),
  ];
  if (!shellFirst.length) return figures;
  const shell = median(shellFirst);
  return [
    ...figures,
    figure(S, '(e) shell: first dump byte after the pipeline starts (median)', shell, 's', {
      note: `${values(shellFirst, (x) => x.toFixed(3))}; the dump program's 64 KiB, sampled the same way: its own start and queries`,
    }),
    bounded(
      S,
      '(e) delay dbflow adds before the first dump byte',
      median(fromProcess) - shell,
      's',
      TARGETS.firstByteS,
      true,
      "dbflow's first byte after its process starts, less the shell's after the pipeline starts (medians): node's start-up, loading, the snapshot",
    ),
  ];
}

/** (g): dbflow's restore_test step against the stock restore (both create, restore, count, drop). */
export function restoreFigures(S: string, r: { dbflows: ChainRun[]; shells: Timed[] }, shellName: string, shellNote: string): Figure[] {
  const sh = median(r.shells.map((s) => s.wallMs));
  const figures: Figure[] = [
    figure(S, `restore: shell ${shellName} (median of ${r.shells.length})`, sh / 1000, 's', {
      note: `${values(
        r.shells.map((s) => s.wallMs),
        sec,
      )}; ${shellNote}`,
    }),
  ];
  if (!r.dbflows.length) return figures;
  const rt = r.dbflows.map((d) => d.stepMs.restore_test ?? 0);
  figures.push(
    figure(S, `restore: dbflow restore_test step (median of ${rt.length})`, median(rt) / 1000, 's', {
      note: `${values(rt, sec)}; scratch database, read|decrypt|decompress|restore, counts and checksums, drop; rowcount_check ${median(r.dbflows.map((d) => d.stepMs.rowcount_check ?? 0)).toFixed(0)} ms`,
    }),
    bounded(S, '(g) restore dbflow / shell', median(rt) / sh, '×', TARGETS.restore, true),
  );
  return figures;
}

/** (f) at 3× the size: node's peak RSS and its ratio to the 1× runs. */
export function flatFigures(S: string, small: readonly ChainRun[], big: ChainRun, bigMiB: number): Figure[] {
  const a = Math.max(...small.map(nodePeakMiB));
  const b = nodePeakMiB(big);
  return [
    bounded(S, `(f) dbflow node peak RSS at 3× (${bigMiB.toFixed(0)} MiB)`, b, 'MiB', TARGETS.rssMiB, true, `wall ${sec(big.wallMs)}`),
    bounded(S, '(f) node peak RSS 3× / 1×', b / a, '×', TARGETS.rssFlat, true, `${a.toFixed(0)} → ${b.toFixed(0)} MiB`),
  ];
}
