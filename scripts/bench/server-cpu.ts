// The database server's CPU, read from /proc when the server runs on this machine: PostgreSQL's
// postmaster and every process of its cluster, MariaDB's mariadbd.
import { readFileSync } from 'node:fs';
import { childrenOf, cmdline, HAVE_PROC, readStat, uptimeS } from './proc.js';
import { withClient } from './pg-server.js';
import { queryRow, withMy } from './mysql-server.js';

/** A server whose CPU the bench can read. */
export interface ServerCpu {
  /** e.g. `PostgreSQL postmaster 2196`. */
  label: string;
  /** CPU seconds the whole server has used since it started (exact, cumulative). */
  totalS(): number;
  /** The live processes serving sessions on the bench database (one per session), sampled while a run lasts. */
  sessionPids?(): number[];
}

/** A server's CPU, or why it cannot be read (`na`). */
export type ServerCpuProbe = { cpu: ServerCpu; na?: undefined } | { cpu?: undefined; na: string };

/** How far the process's age may be from the server's own uptime for the two to be the same server. */
const AGE_SLACK_S = 5;

/** The process of this machine `pid` names, when it is the server: its program and its age match. */
function localServer(pid: number, programs: readonly string[], serverAgeS: number): string | undefined {
  const st = readStat(pid);
  if (!st) return `no process ${pid} on this machine: the server runs elsewhere`;
  if (!programs.includes(st.comm)) return `process ${pid} here is ${st.comm}, not the server: the server runs elsewhere`;
  const age = uptimeS() - st.startS;
  if (Math.abs(age - serverAgeS) > AGE_SLACK_S)
    return `process ${pid} here started ${age.toFixed(0)} s ago, the server ${serverAgeS.toFixed(0)} s ago: another server`;
  return undefined;
}

/**
 * PostgreSQL: the postmaster is the parent of this session's backend. The cluster's CPU is the
 * postmaster's own and its reaped children's (cutime/cstime: backends that have ended), plus every
 * live child's own and reaped children's; the sessions on `database` are its backends whose process
 * title names that database.
 */
export async function pgServerCpu(database: string): Promise<ServerCpuProbe> {
  if (!HAVE_PROC) return { na: 'no /proc on this machine' };
  // The backend is read while its session is open: it ends with the session.
  const { pid, age, backend } = await withClient(async (c) => {
    const { rows } = await c.query<{ pid: number; age: number }>(
      'SELECT pg_backend_pid() AS pid, extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS age',
    );
    return { ...rows[0]!, backend: readStat(rows[0]!.pid) };
  });
  if (!backend || backend.comm !== 'postgres')
    return { na: `the server's backend ${pid} is not on this machine: the server runs elsewhere` };
  const pm = backend.ppid;
  const why = localServer(pm, ['postgres', 'postmaster'], age);
  if (why) return { na: why };
  const own = (p: number): number => {
    const st = readStat(p);
    return st ? st.cpuS + st.childrenCpuS : 0;
  };
  return {
    cpu: {
      label: `PostgreSQL postmaster ${pm}`,
      // The children first: one that ends in between is then counted twice rather than missed (both rare, both ≤ 1 tick).
      totalS: () => {
        const kids = childrenOf(pm).reduce((a, c) => a + own(c), 0);
        return kids + own(pm);
      },
      sessionPids: () => childrenOf(pm).filter((c) => cmdline(c).split(' ').includes(database)),
    },
  };
}

/** MariaDB: mariadbd is one process (a thread per session); its utime + stime cover every thread, live or ended. */
export async function myServerCpu(): Promise<ServerCpuProbe> {
  if (!HAVE_PROC) return { na: 'no /proc on this machine' };
  const row = await withMy((c) =>
    queryRow<{ f: string; up: string }>(
      c,
      "SELECT @@pid_file AS f, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME') AS up",
    ),
  );
  let pid: number;
  try {
    pid = Number(readFileSync(row.f, 'utf8').trim());
  } catch {
    return { na: `the server's pid file ${row.f} is not readable here: the server runs elsewhere (or as another user)` };
  }
  const why = localServer(pid, ['mariadbd', 'mysqld'], Number(row.up));
  if (why) return { na: why };
  return { cpu: { label: `mariadbd ${pid}`, totalS: () => readStat(pid)?.cpuS ?? 0 } };
}
