// Database sessions of a dbflow process on the test servers, found by its TCP ports (and PostgreSQL's application_name), and short probe writes.
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { connectionOptions, MY_URL, withConnection } from './mysql.js';
import { PG_URL, withClient, withDatabase } from './postgres.js';
import { descendants } from './processes.js';
import { tcpClientPorts } from './sockets.js';

const portOf = (url: string, fallback: number): number => Number(new URL(url).port || fallback);
export const PG_PORT = portOf(PG_URL, 5432);
export const MY_PORT = portOf(MY_URL, 3306);

/** The local ports a process (and what it started) has connected to the two servers with, gathered until `stop()`. */
export interface PortSampler {
  pg: Set<number>;
  my: Set<number>;
  stop(): void;
}

/** Samples the TCP connections of `pid` and its descendants every 20 ms. */
export function samplePorts(pid: number): PortSampler {
  const out = { pg: new Set<number>(), my: new Set<number>() };
  const sample = (): void => {
    const pids = [pid, ...descendants(pid).map((p) => p.pid)];
    for (const p of tcpClientPorts(pids, PG_PORT)) out.pg.add(p);
    for (const p of tcpClientPorts(pids, MY_PORT)) out.my.add(p);
  };
  sample();
  const timer = setInterval(sample, 20);
  return { ...out, stop: () => clearInterval(timer) };
}

/** A PostgreSQL session, as pg_stat_activity shows it. */
export interface PgSession {
  pid: number;
  datname: string | null;
  application_name: string;
  client_port: number | null;
  state: string | null;
  wait_event: string | null;
  query: string;
  /** Table locks it holds (granted), e.g. `audit.events ShareLock`. */
  holds: string[];
}

/** Sessions on `databases` whose application_name starts with `dbflow`, and sessions from any of `ports`; with the table locks each holds. */
export async function pgSessions(databases: readonly string[], ports: Iterable<number> = []): Promise<PgSession[]> {
  const { rows } = await withClient(PG_URL, (c) =>
    c.query<Omit<PgSession, 'holds'>>(
      `SELECT pid, datname, application_name, client_port, state, wait_event, left(query, 120) AS query FROM pg_stat_activity
        WHERE pid <> pg_backend_pid()
          AND ((datname = ANY($1::text[]) AND application_name LIKE 'dbflow%') OR client_port = ANY($2::int[]))`,
      [[...databases], [...ports]],
    ),
  );
  // Relation names resolve only inside the session's database.
  const holds = (r: Omit<PgSession, 'holds'>): Promise<string[]> =>
    r.datname === null
      ? Promise.resolve([])
      : withClient(withDatabase(PG_URL, r.datname), (c) =>
          c.query<{ lock: string }>(
            `SELECT l.relation::regclass::text || ' ' || l.mode AS lock FROM pg_locks l JOIN pg_class k ON k.oid = l.relation
              WHERE l.pid = $1 AND l.granted AND l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND k.relkind IN ('r', 'p') ORDER BY 1`,
            [r.pid],
          ),
        ).then(
          (x) => x.rows.map((y) => y.lock),
          () => [],
        );
  return Promise.all(rows.map(async (r) => ({ ...r, holds: await holds(r) })));
}

/** A MariaDB session, as information_schema.PROCESSLIST shows it. */
export interface MySession {
  id: number;
  host: string;
  db: string | null;
  command: string;
  state: string | null;
  info: string | null;
}

/** Sessions from any of `ports`, and sessions on `database` running BACKUP STAGE. */
export async function mySessions(database: string, ports: Iterable<number>): Promise<MySession[]> {
  const [rows] = await withConnection(MY_URL, (c) =>
    c.query<mysql.RowDataPacket[]>(
      `SELECT ID AS id, HOST AS host, DB AS db, COMMAND AS command, STATE AS state, LEFT(INFO, 120) AS info
         FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()`,
    ),
  );
  const from = new Set(ports);
  return (rows as MySession[]).filter((r) => {
    const port = Number(/:(\d+)$/.exec(r.host)?.[1]);
    return from.has(port) || (r.db === database && /^BACKUP STAGE/i.test(r.info ?? ''));
  });
}

/** Ends what a failed test may have left: PostgreSQL sessions of `pgPorts`, MariaDB sessions of `myPorts` (so that the scratch databases can be dropped). */
export async function killSessions(pgPorts: Iterable<number>, myPorts: Iterable<number>, database: string): Promise<void> {
  await withClient(PG_URL, (c) =>
    c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1::int[])', [[...pgPorts]]),
  );
  for (const s of await mySessions(database, myPorts)) {
    await withConnection(MY_URL, (c) => c.query(`KILL CONNECTION ${Number(s.id)}`)).catch(() => undefined);
  }
}

/** The application_name of the sessions that hold a granted SHARE lock on a table of `database`, or undefined while there is none. */
export async function shareLockHolder(database: string): Promise<{ pid: number; application_name: string } | undefined> {
  const { rows } = await withClient(PG_URL, (c) =>
    c.query<{ pid: number; application_name: string }>(
      `SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.mode = 'ShareLock' AND l.granted AND a.datname = $1 AND a.application_name LIKE 'dbflow%'
        LIMIT 1`,
      [database],
    ),
  );
  return rows[0];
}

let nextProbeId = 1_000_000;

/** One INSERT + COMMIT into `items` of a PostgreSQL database on a fresh connection; resolves with its duration in ms. */
export async function pgProbeCommit(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'probe writer' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const t0 = performance.now();
    await c.query('BEGIN');
    await c.query('INSERT INTO items (id, note) VALUES ($1, $2)', [nextProbeId++, 'probe']);
    await c.query('COMMIT');
    return performance.now() - t0;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The same on a MariaDB database. */
export async function myProbeCommit(url: string): Promise<number> {
  const c = await mysql.createConnection({ ...connectionOptions(url), multipleStatements: false });
  c.on('error', () => undefined);
  try {
    const t0 = performance.now();
    await c.query('START TRANSACTION');
    await c.query('INSERT INTO items (id, note) VALUES (?, ?)', [nextProbeId++, 'probe']);
    await c.query('COMMIT');
    return performance.now() - t0;
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/** A loop of probe commits on one database: when each started and ended (performance.now()). */
export interface ProbeLoop {
  done: { start: number; end: number }[];
  /** Start of the transaction in flight, if one is. */
  inFlight(): number | undefined;
  /** Why the loop ended by itself, if it did. */
  failure(): Error | undefined;
  /** Stops it (cutting its connection if a transaction is still held up after 10 s). */
  stop(): Promise<void>;
}

/** Commits one item after another on its own connection until stopped. */
export async function probeLoop(kind: 'pg' | 'my', url: string): Promise<ProbeLoop> {
  const done: { start: number; end: number }[] = [];
  let current: number | undefined;
  let stopping = false;
  let failure: Error | undefined;
  let write: () => Promise<void>;
  let close: () => Promise<void>;
  let cut: () => void;
  if (kind === 'pg') {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'probe writer' });
    c.on('error', () => undefined);
    await c.connect();
    write = async () => {
      await c.query('BEGIN');
      await c.query('INSERT INTO items (id, note) VALUES ($1, $2)', [nextProbeId++, 'probe']);
      await c.query('COMMIT');
    };
    close = () => c.end().catch(() => undefined);
    cut = () => void c.end().catch(() => undefined);
  } else {
    const c = await mysql.createConnection({ ...connectionOptions(url), multipleStatements: false });
    c.on('error', () => undefined);
    write = async () => {
      await c.query('START TRANSACTION');
      await c.query('INSERT INTO items (id, note) VALUES (?, ?)', [nextProbeId++, 'probe']);
      await c.query('COMMIT');
    };
    close = () => c.end().catch(() => c.destroy());
    cut = () => c.destroy();
  }
  const loop = (async () => {
    try {
      while (!stopping) {
        current = performance.now();
        await write();
        done.push({ start: current, end: performance.now() });
        current = undefined;
        await sleep(10);
      }
    } catch (err) {
      if (!stopping) failure = err as Error;
    } finally {
      await close();
    }
  })();
  return {
    done,
    inFlight: () => current,
    failure: () => failure,
    stop: async () => {
      stopping = true;
      if (!(await Promise.race([loop.then(() => true), sleep(10_000, false, { ref: false })]))) {
        cut();
        await loop;
      }
    },
  };
}
