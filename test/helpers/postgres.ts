// The PostgreSQL servers integration tests run against: the shared one, scratch databases on it, private clusters.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { requireTool } from './step-context.js';
import {
  asServerUser,
  instanceDir,
  serverBinDir,
  startInstance,
  writeServerFile,
  type Instance,
  type InstanceDir,
} from '../../plugins/postgres/instance.js';

/** The server under test: `DBFLOW_TEST_PG_URL`, else the local default. */
export const PG_URL = process.env.DBFLOW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** What a test needs of `t`: skip and cleanup. */
export type PgTest = Pick<TestContext, 'skip' | 'after'>;

// Under CI=true a missing prerequisite fails the test; elsewhere it skips it.
function unavailable(t: Pick<TestContext, 'skip'>, message: string): false {
  if (process.env.CI === 'true') throw new Error(message);
  t.skip(message);
  return false;
}

/** Without the password, for messages. */
function displayUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/?#@]*):[^@/?#]*@/, '$1:***@');
}

let reachable: Promise<string | undefined> | undefined;

// Whether the shared server answers (checked once per process): undefined, or why not.
function probe(): Promise<string | undefined> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      return (err as Error).message || String(err);
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/** True when the shared server is reachable; otherwise fails (CI=true) or skips the test. */
export async function requirePostgres(t: Pick<TestContext, 'skip'>): Promise<boolean> {
  const why = await probe();
  if (why === undefined) return true;
  return unavailable(
    t,
    `PostgreSQL is not reachable at ${displayUrl(PG_URL)} (${why}): install it (apt-get install postgresql) and start it, or set DBFLOW_TEST_PG_URL`,
  );
}

const PACKAGES: Record<string, string> = {
  pg_dump: 'postgresql-client',
  pg_restore: 'postgresql-client',
  psql: 'postgresql-client',
  pgbench: 'postgresql-client',
  pg_basebackup: 'postgresql-client',
  pg_receivewal: 'postgresql-client',
  gpg: 'gnupg',
  zstd: 'zstd',
  tar: 'tar',
};

/** True when every program is installed; otherwise fails (CI=true) or skips, naming the Debian package. */
export async function requireTools(t: Pick<TestContext, 'skip'>, ...programs: string[]): Promise<boolean> {
  for (const program of programs) {
    if (!(await requireTool(t, program, PACKAGES[program] ?? program))) return false;
  }
  return true;
}

/** The shared server and every tool a backup through the CLI uses. */
export async function requireBackupTools(t: Pick<TestContext, 'skip'>, ...more: string[]): Promise<boolean> {
  return (await requirePostgres(t)) && (await requireTools(t, 'pg_dump', 'pg_restore', ...more));
}

/** `url` with its database (path) replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** `url` with `password` in it, for `pg` (whose connection string wins over a separate `password`). */
export function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Runs `fn` with a fresh connection to `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>, password?: string): Promise<T> {
  const client = new pg.Client({ connectionString: withPassword(url, password), connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A database made for one test. */
export interface ScratchDatabase {
  name: string;
  url: string;
  /** A small pool on it (closed before the database is dropped). */
  pool: pg.Pool;
}

/** A new, uniquely named database `dbflow_test_<hex>` on the server at `serverUrl`; dropped WITH (FORCE) after the test. */
export async function scratchDatabase(t: Pick<TestContext, 'after'>, serverUrl = PG_URL, password?: string): Promise<ScratchDatabase> {
  const name = `dbflow_test_${randomBytes(6).toString('hex')}`;
  await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`), password);
  const url = withDatabase(serverUrl, name);
  const pool = new pg.Pool({ connectionString: withPassword(url, password), max: 4, allowExitOnIdle: true });
  pool.on('error', () => undefined); // a connection terminated by the drop below
  t.after(async () => {
    await pool.end().catch(() => undefined);
    await withClient(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`), password);
  });
  return { name, url, pool };
}

/** Names of the databases on the server whose name starts with `prefix`. */
export async function databasesStartingWith(prefix: string, serverUrl = PG_URL, password?: string): Promise<string[]> {
  const { rows } = await withClient(
    serverUrl,
    (c) => c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1', [prefix]),
    password,
  );
  return rows.map((r) => r.datname);
}

/** The folder of initdb and pg_ctl (the product's: a throwaway instance starts from the same binaries). */
export { serverBinDir };

/** A private cluster with password authentication. */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, without the password. */
  url: string;
  password: string;
  port: number;
  /** Where its Unix socket is. */
  socketDir: string;
  /** Its data directory. */
  data: string;
  /** The server binaries it runs. */
  bin: string;
  /** Stops the server (`immediate`: like a crash, no checkpoint) and starts it again with the same settings and port. */
  restart: (mode?: 'fast' | 'immediate') => Promise<void>;
}

/** Starts a private cluster (scram-sha-256, superuser `postgres` with `password`) on a free loopback port; stopped and removed after the test. */
export async function throwawayPostgres(
  t: PgTest,
  options: { password?: string; settings?: readonly string[] } = {},
): Promise<ThrowawayPostgres | undefined> {
  const bin = await serverBinDir();
  if (!bin) {
    unavailable(t, 'initdb and pg_ctl are not installed; install the Debian package "postgresql" (apt-get install postgresql)');
    return undefined;
  }
  const password = options.password ?? `dbflow-pw-${randomBytes(8).toString('hex')}`;
  let dir: InstanceDir;
  try {
    dir = await instanceDir();
  } catch (err) {
    unavailable(t, (err as Error).message);
    return undefined;
  }
  const started: Instance[] = [];
  t.after(async () => {
    for (const instance of started) await instance.stop();
    dir.remove();
  });
  const pwfile = path.join(dir.root, 'pwfile');
  writeServerFile(dir, pwfile, `${password}\n`);
  await asServerUser(path.join(bin, 'initdb'), [
    '-D',
    dir.data,
    '-U',
    'postgres',
    '--auth=scram-sha-256',
    `--pwfile=${pwfile}`,
    '-E',
    'UTF8',
    '--locale=C',
    '-N',
  ]);
  const settings = [
    'fsync=off',
    'synchronous_commit=off',
    'full_page_writes=off',
    'shared_buffers=16MB',
    'max_connections=30',
    ...(options.settings ?? []),
  ];
  const instance = await startInstance({ bin, dir, timeoutS: 30, settings });
  started.push(instance);
  const ctl = path.join(bin, 'pg_ctl');
  const restart = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await asServerUser(ctl, ['stop', '-D', dir.data, '-m', mode, '-w']);
    const again = [`port=${instance.port}`, 'listen_addresses=127.0.0.1', `unix_socket_directories=${dir.socketDir}`, ...settings];
    await asServerUser(ctl, [
      'start',
      '-D',
      dir.data,
      '-l',
      path.join(dir.root, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      again.map((s) => `-c ${s}`).join(' '),
    ]);
  };
  return {
    url: instance.url('postgres', 'postgres'),
    password,
    port: instance.port,
    socketDir: instance.socketDir,
    data: dir.data,
    bin,
    restart,
  };
}
