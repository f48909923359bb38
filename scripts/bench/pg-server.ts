// The PostgreSQL server of the benchmark: its URL, the prerequisite check, and the scratch databases
// the bench creates (every one dropped at the end, on failure and on SIGINT too).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { BenchError } from './util.js';

/** The maintenance connection: `DBFLOW_BENCH_PG_URL`, else the local default (trust auth). */
export const PG_ADMIN_URL = process.env.DBFLOW_BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/** Without the password, for messages. */
export function displayUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/?#@]*):[^@/?#]*@/, '$1:***@');
}

/** The server's URL with its database (path) replaced. */
export function databaseUrl(database: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** A double-quoted SQL identifier. */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** Runs `fn` with a fresh connection to `url` (default: the maintenance database), closed afterwards. */
export async function withClient<T>(fn: (client: pg.Client) => Promise<T>, url = PG_ADMIN_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // a connection terminated by a DROP … WITH (FORCE)
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const TOOLS: Record<string, string> = { pg_dump: 'postgresql-client', pg_restore: 'postgresql-client', psql: 'postgresql-client' };

function toolVersion(program: string): string | undefined {
  const r = spawnSync(program, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export interface PgServer {
  serverVersion: string;
  serverMajor: number;
  pgDump: string;
}

/**
 * Checks the prerequisites of the PostgreSQL section: pg_dump, pg_restore and psql on PATH, the
 * server reachable, pg_dump not older than the server. Throws a BenchError naming what to install.
 */
export async function probeServer(): Promise<PgServer> {
  const versions: Record<string, string> = {};
  for (const [program, pkg] of Object.entries(TOOLS)) {
    const v = toolVersion(program);
    if (!v)
      throw new BenchError(`${program} is not on PATH: install it (apt-get install ${pkg}, the major version of the server or newer)`);
    versions[program] = v;
  }
  let serverVersion: string;
  let serverMajor: number;
  try {
    ({ serverVersion, serverMajor } = await withClient(async (c) => {
      const { rows } = await c.query<{ v: string; n: string }>(
        "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
      );
      return { serverVersion: rows[0]!.v, serverMajor: Math.floor(Number(rows[0]!.n) / 10000) };
    }));
  } catch (err) {
    throw new BenchError(
      `PostgreSQL is not reachable at ${displayUrl(PG_ADMIN_URL)} (${(err as Error).message || String(err)}): install it (apt-get install postgresql) and start it, or set DBFLOW_BENCH_PG_URL`,
    );
  }
  const dumpMajor = Number(/(\d+)(?:\.\d+)+/.exec(versions.pg_dump!)?.[1] ?? 0);
  if (dumpMajor < serverMajor)
    throw new BenchError(`${versions.pg_dump} cannot dump a PostgreSQL ${serverVersion} server: install postgresql-client-${serverMajor}`);
  return { serverVersion, serverMajor, pgDump: versions.pg_dump! };
}

// Scratch databases created by the bench and not yet dropped.
const scratch = new Set<string>();

/** A fresh name for a scratch database, registered for the drop at exit (the caller creates it). */
export function scratchName(purpose: string): string {
  const name = `dbflow_bench_scratch_${purpose}_${randomBytes(4).toString('hex')}`;
  scratch.add(name);
  return name;
}

/** Registers a database the bench is about to create, so that it is dropped on SIGINT or failure. */
export function registerScratch(name: string): void {
  scratch.add(name);
}

/** Drops a scratch database (connections to it are terminated) and forgets it. */
export async function dropScratch(name: string): Promise<void> {
  await withClient((c) => c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
  scratch.delete(name);
}

/** Forgets a registered database without dropping it (it became the cached bench database). */
export function keepScratch(name: string): void {
  scratch.delete(name);
}

/** Drops every scratch database still registered; synchronous, for the SIGINT handler. */
export function dropScratchDatabasesSync(): void {
  for (const name of scratch) {
    spawnSync('psql', ['-X', '-q', '-d', PG_ADMIN_URL, '-c', `DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`], {
      stdio: 'ignore',
      timeout: 30_000,
    });
    scratch.delete(name);
  }
}

/** Databases on the server whose names start with `prefix`. */
export async function databasesStartingWith(prefix: string): Promise<string[]> {
  const { rows } = await withClient((c) =>
    c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1', [prefix]),
  );
  return rows.map((r) => r.datname);
}

/**
 * Row counts of the given tables by sequential scan (index-only scans off): also reads every heap
 * page, so a following dump starts with the database in the page cache.
 */
export async function countRows(url: string, tables: readonly string[]): Promise<Record<string, number>> {
  return withClient(async (c) => {
    await c.query('SET enable_indexonlyscan = off; SET enable_indexscan = off; SET enable_bitmapscan = off');
    const counts: Record<string, number> = {};
    for (const t of tables) {
      const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(t)}`);
      counts[t] = Number(rows[0]!.n);
    }
    return counts;
  }, url);
}

/** A BenchError when `pg` failed (the message of a server error is enough). */
export function pgError(what: string, err: unknown): BenchError {
  return err instanceof BenchError ? err : new BenchError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}
