// Reading processes from /proc (Linux): CPU times, parent, children, peak RSS, age.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (getconf CLK_TCK; 100 nearly everywhere). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** Whether /proc is there to read (Linux). */
export const HAVE_PROC = existsSync('/proc/self/stat');

/** The fields of /proc/<pid>/stat the bench uses; times in seconds. */
export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime of the process (all its threads, live and exited). */
  cpuS: number;
  /** cutime + cstime: the CPU of its children that it has waited for. */
  childrenCpuS: number;
  /** When it started, in seconds since boot. */
  startS: number;
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // gone, or not ours to read
  }
};

/** /proc/<pid>/stat, or undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return undefined;
  // comm is in parentheses and may hold spaces or parentheses: the fields start after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' '); // f[0] is field 3 (state)
  const n = (field: number): number => Number(f[field - 3]);
  return {
    pid,
    ppid: n(4),
    comm,
    cpuS: (n(14) + n(15)) / CLK_TCK,
    childrenCpuS: (n(16) + n(17)) / CLK_TCK,
    startS: n(22) / CLK_TCK,
  };
}

/** The direct children of a process (of every one of its threads), zombies included. */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    for (const c of (read(`/proc/${pid}/task/${tid}/children`) ?? '').split(' ')) if (c.trim()) out.push(Number(c));
  }
  return out;
}

/** The peak resident set size (VmHWM) in KiB, or undefined when the process is gone. */
export function peakRssKiB(pid: number): number | undefined {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Bytes the process has written so far (`wchar` of /proc/<pid>/io: files, pipes and sockets), or undefined when gone. */
export function writtenBytes(pid: number): number | undefined {
  const m = /^wchar:\s+(\d+)/m.exec(read(`/proc/${pid}/io`) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The command line, arguments joined with spaces ('' when gone or a zombie). */
export function cmdline(pid: number): string {
  return (read(`/proc/${pid}/cmdline`) ?? '').replace(/\0/g, ' ').trim();
}

/** Seconds since boot (/proc/uptime). */
export function uptimeS(): number {
  return Number((read('/proc/uptime') ?? '0').split(' ')[0]);
}
