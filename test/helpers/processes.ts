// Processes and ports of the machine, for tests that watch what the CLI starts.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** A process seen below the CLI. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** argv joined by spaces. */
  cmdline: string;
  /** The executable (when readable). */
  exe: string;
  /** Its environment, `NAME=value` joined by newlines (empty when unreadable). */
  environ: string;
}

// The parent and name of a process, from /proc/<pid>/stat (undefined once it is gone).
function readStat(pid: number): { pid: number; ppid: number; comm: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    return { pid, comm: stat.slice(stat.indexOf('(') + 1, close), ppid: Number(stat.slice(close + 2).split(' ')[1]) };
  } catch {
    return undefined;
  }
}

// Argv, executable and environment of a process seen in `stat`; undefined when it is gone, or when it ran
// another program (exec) while being read, so that name, argv and environment all belong to one program.
function readProcess(stat: { pid: number; ppid: number; comm: string }): ProcessInfo | undefined {
  const { pid } = stat;
  const exeOf = (): string => {
    try {
      return readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return ''; // another user's process, or gone
    }
  };
  try {
    const exe = exeOf();
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    let environ = '';
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').join('\n');
    } catch {
      // gone
    }
    if (exeOf() !== exe || readStat(pid)?.comm !== stat.comm) return undefined;
    return { ...stat, cmdline, exe, environ };
  } catch {
    return undefined;
  }
}

/** Every process below `root` (children, grandchildren, …) right now. */
export function descendants(root: number): ProcessInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readStat(Number(d)))
    .filter((p) => p !== undefined);
  const below: { pid: number; ppid: number; comm: string }[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        below.push(p);
        grew = true;
      }
    }
  }
  return below.map(readProcess).filter((p): p is ProcessInfo => p !== undefined);
}

/** Bytes a process has written so far (`wchar` of /proc/<pid>/io), or 0. */
export function bytesWritten(pid: number): number {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Bytes a process's own threads have read so far (`rchar` of each /proc/<pid>/task/<tid>/io), or undefined once
 * it is gone: its /proc/<pid>/io also counts what its children read once they have ended.
 */
export function bytesReadByThreads(pid: number): number | undefined {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.reduce(
      (sum, tid) => sum + Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/io`, 'utf8'))?.[1] ?? 0),
      0,
    );
  } catch {
    return undefined; // gone, or a thread ended between the two reads
  }
}

/** For waitFor's `stop`: false while `sub` runs, then how it ended (its exit code and output). */
export function endOf(sub: PromiseLike<{ exitCode?: number; stdout?: unknown; stderr?: unknown }>): () => string | false {
  let ended: string | false = false;
  sub.then(
    (r) => (ended = `exit code ${r.exitCode}:\n${String(r.stdout)}\n${String(r.stderr)}`),
    (e: unknown) => (ended = String(e)),
  );
  return () => ended;
}

/** Polls `probe` every 20 ms until it returns a value; fails after `timeoutMs` with `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  stop?: () => boolean | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    const ended = stop?.();
    if (ended) throw new Error(`gave up waiting for ${what}: the process ended${typeof ended === 'string' ? `, ${ended}` : ''}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export { freePort } from '../../src/plugins/free-port.js';
