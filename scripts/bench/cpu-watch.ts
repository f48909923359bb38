// CPU and peak RSS of each process of a run, sampled from /proc, and the database server's CPU.
//
// Why sampling: the totals come exactly from the wrapper's rusage (GNU time reports what wait4 gives
// for the process it ran, which includes every descendant that was waited for: pg_dump, zstd, gpg
// under bash or node), but rusage cannot say which process spent what. So every ~100 ms the process
// tree under the wrapper is walked (/proc/<pid>/task/*/children) and each process's utime + stime and
// VmHWM are kept, the last value per process winning: a process loses at most its last ~100 ms, and
// one that lives less than that may be missed; the breakdown shows what the samples miss of the exact
// total as "unattributed". The server: its whole CPU is read before and after (exact, see
// server-cpu.ts), and its sessions on the bench database are sampled the same way as the tree.
import { childrenOf, peakRssKiB, readStat, writtenBytes } from './proc.js';
import type { ServerCpu } from './server-cpu.js';

/** One process of the tree: its CPU and peak RSS at the last sample that saw it. */
export interface ProcUsage {
  pid: number;
  comm: string;
  /** 0 for the wrapper, 1 for the program it ran, 2 for that program's children … */
  depth: number;
  cpuS: number;
  peakRssKiB: number;
  /** The first sample (epoch ms) that saw it having written at least OUTPUT_BYTES: more than its queries to a server. */
  firstOutputAt?: number;
}

const OUTPUT_BYTES = 64 * 1024;

/** The server's CPU over a run. */
export interface ServerUsage {
  label: string;
  /** The whole server's CPU between just before the run started and just after it ended. */
  totalS: number;
  /** Sampled: the sessions on the bench database (PostgreSQL backends), when the server has a process per session. */
  sessionsS?: number;
  sessions?: number;
}

export interface TreeUsage {
  procs: ProcUsage[];
  samples: number;
  server?: ServerUsage;
}

/** Samples a run: created before it starts, `attach`ed to the wrapper's pid, `stop`ped after it ended. */
export interface Watcher {
  attach(pid: number): void;
  stop(): TreeUsage;
}

const INTERVAL_MS = 100;

export function watchRun(server?: ServerCpu): Watcher {
  const serverAtStart = server?.totalS();
  const procs = new Map<string, ProcUsage>();
  // Sessions: CPU at first sight (those already there when the run starts count from then on) and last.
  const sessions = new Map<string, { first: number; last: number }>();
  let samples = 0;
  let root: number | undefined;
  let first = true;

  const walk = (pid: number, depth: number): void => {
    const st = readStat(pid);
    if (!st) return;
    const key = `${pid}@${st.startS}`; // a pid reused during the run is another process
    const prev = procs.get(key);
    const firstOutputAt = prev?.firstOutputAt ?? ((writtenBytes(pid) ?? 0) >= OUTPUT_BYTES ? Date.now() : undefined);
    procs.set(key, {
      pid,
      comm: st.comm,
      depth,
      cpuS: st.cpuS,
      peakRssKiB: peakRssKiB(pid) ?? prev?.peakRssKiB ?? 0,
      ...(firstOutputAt !== undefined && { firstOutputAt }),
    });
    for (const c of childrenOf(pid)) walk(c, depth + 1);
  };
  const sample = (): void => {
    samples++;
    if (root !== undefined) walk(root, 0);
    for (const pid of server?.sessionPids?.() ?? []) {
      const st = readStat(pid);
      if (!st) continue;
      const key = `${pid}@${st.startS}`;
      const s = sessions.get(key);
      sessions.set(key, { first: s?.first ?? (first ? st.cpuS : 0), last: st.cpuS });
    }
    first = false;
  };
  sample(); // the sessions already open
  const timer = setInterval(sample, INTERVAL_MS);
  return {
    attach(pid) {
      root = pid;
      sample();
    },
    stop() {
      clearInterval(timer);
      const s = [...sessions.values()].filter((x) => x.last > x.first);
      return {
        procs: [...procs.values()],
        samples,
        ...(server && {
          server: {
            label: server.label,
            totalS: server.totalS() - serverAtStart!,
            ...(server.sessionPids && { sessionsS: s.reduce((a, x) => a + x.last - x.first, 0), sessions: s.length }),
          },
        }),
      };
    },
  };
}

/** CPU seconds of the processes whose name is `comm` (all of them when undefined), at `depth` or below. */
export function cpuOf(t: TreeUsage, comm?: string, minDepth = 0): number {
  return t.procs.filter((p) => (comm === undefined || p.comm === comm) && p.depth >= minDepth).reduce((a, p) => a + p.cpuS, 0);
}
