// The PostgreSQL servers integration tests run against: the shared one, scratch databases on it, private clusters.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import pg from 'pg';
import { requireTool } from './step-context.js';
import { freePort } from './processes.js';

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

/** The folder of initdb and pg_ctl: `pg_config --bindir`, else the newest /usr/lib/postgresql/<n>/bin. */
export async function serverBinDir(): Promise<string | undefined> {
  try {
    const { stdout } = await execa('pg_config', ['--bindir']);
    const dir = stdout.trim();
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  } catch {
    // no pg_config: look in the Debian layout
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => path.join(root, v, 'bin')).find((dir) => existsSync(path.join(dir, 'initdb')));
}

/** A private cluster with password authentication. */
export interface ThrowawayPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, without the password. */
  url: string;
  password: string;
  port: number;
  /** Where its Unix socket is. */
  socketDir: string;
  /** Its data folder (pg_wal is in it). */
  dataDir: string;
  /** Stops the server (`immediate`: like a crash, no checkpoint) and starts it again with the same settings. */
  restart: (mode?: 'fast' | 'immediate') => Promise<void>;
}

const asRoot = process.getuid?.() === 0;
const clusters = new Set<string>();

// A test process that dies leaves no server behind.
process.once('exit', () => {
  for (const data of clusters) {
    try {
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
});

// initdb and pg_ctl refuse to run as root: as root they run as the postgres user.
function asPostgres(file: string, args: string[]): ReturnType<typeof execa> {
  return asRoot ? execa('runuser', ['-u', 'postgres', '--', file, ...args]) : execa(file, args);
}

/** Starts a private cluster (scram-sha-256, superuser `postgres` with `password`) on a free loopback port; stopped and removed after the test. */
export async function throwawayPostgres(
  t: PgTest,
  options: { password?: string; settings?: string[] } = {},
): Promise<ThrowawayPostgres | undefined> {
  const bin = await serverBinDir();
  if (!bin) {
    unavailable(t, 'initdb and pg_ctl are not installed; install the Debian package "postgresql" (apt-get install postgresql)');
    return undefined;
  }
  const password = options.password ?? `dbflow-pw-${randomBytes(8).toString('hex')}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-pg-'));
  chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const socketDir = path.join(dir, 'sock');
  const pwfile = path.join(dir, 'pwfile');
  mkdirSync(socketDir);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  let started = false;
  t.after(async () => {
    if (started) await asPostgres(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
    clusters.delete(data);
    rmSync(dir, { recursive: true, force: true });
  });
  if (asRoot) {
    const ids = await Promise.all([execa('id', ['-u', 'postgres']), execa('id', ['-g', 'postgres'])]).catch(() => undefined);
    if (!ids) {
      unavailable(
        t,
        'as root, a throwaway cluster runs as the "postgres" user, and there is none; install the Debian package "postgresql" (apt-get install postgresql)',
      );
      return undefined;
    }
    for (const p of [dir, socketDir, pwfile]) chownSync(p, Number(ids[0].stdout), Number(ids[1].stdout));
  }
  await asPostgres(path.join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=scram-sha-256',
    `--pwfile=${pwfile}`,
    '-E',
    'UTF8',
    '--locale=C',
    '-N',
  ]);
  // The port may be taken between freePort() and the start: try again with another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const settings = [
      `-c port=${port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${socketDir}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c shared_buffers=16MB',
      '-c max_connections=30',
      ...(options.settings ?? []).map((setting) => `-c ${setting}`),
    ].join(' ');
    try {
      clusters.add(data);
      await asPostgres(path.join(bin, 'pg_ctl'), [
        'start',
        '-D',
        data,
        '-l',
        path.join(dir, 'server.log'),
        '-w',
        '-t',
        '30',
        '-o',
        settings,
      ]);
      started = true;
      const ctl = path.join(bin, 'pg_ctl');
      const restart = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
        await asPostgres(ctl, ['stop', '-D', data, '-m', mode, '-w']);
        await asPostgres(ctl, ['start', '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', '-o', settings]);
      };
      return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, password, port, socketDir, dataDir: data, restart };
    } catch (err) {
      if (attempt >= 3) {
        const log = existsSync(path.join(dir, 'server.log')) ? readFileSync(path.join(dir, 'server.log'), 'utf8') : '';
        throw new Error(`could not start a throwaway PostgreSQL: ${(err as Error).message}\n${log}`, { cause: err });
      }
    }
  }
}
