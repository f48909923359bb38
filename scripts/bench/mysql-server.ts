// The MariaDB server of the benchmark: its URL, the prerequisite check, the client option file of the
// stock tools, and the scratch databases the bench creates (every one dropped at the end, on failure
// and on SIGINT too).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { BenchError, DATA } from './util.js';

/** The server: `DBFLOW_BENCH_MYSQL_URL`, else the local default (root, no password). */
export const MY_ADMIN_URL = process.env.DBFLOW_BENCH_MYSQL_URL || 'mysql://root@127.0.0.1:3306/';

/** Without the password, for messages. */
export function myDisplayUrl(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/?#@]*):[^@/?#]*@/, '$1:***@');
}

/** The server's URL with its database (path) replaced. */
export function myDatabaseUrl(database: string): string {
  const u = new URL(MY_ADMIN_URL);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** A back-quoted SQL identifier. */
export const myIdent = (name: string): string => `\`${name.replace(/`/g, '``')}\``;

/** mysql2 options for a mysql:// URL (its database, if any). */
export function connectionOptions(url: string): mysql.ConnectionOptions {
  const u = new URL(url);
  const socket = u.searchParams.get('socket');
  return {
    ...(socket ? { socketPath: socket } : { host: u.hostname || '127.0.0.1', port: Number(u.port || 3306) }),
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    ...(u.pathname.length > 1 && { database: decodeURIComponent(u.pathname.slice(1)) }),
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectTimeout: 10_000,
  };
}

/** A fresh connection to `url` (default: the server, no database). */
export async function myConnect(url = MY_ADMIN_URL): Promise<mysql.Connection> {
  const c = await mysql.createConnection(connectionOptions(url));
  c.on('error', () => undefined); // a session killed by a DROP DATABASE
  return c;
}

/** Runs `fn` with a fresh connection to `url`, closed afterwards. */
export async function withMy<T>(fn: (c: mysql.Connection) => Promise<T>, url = MY_ADMIN_URL): Promise<T> {
  const c = await myConnect(url);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/** One row of a query. */
export async function queryRow<T>(c: mysql.Connection, sql: string, values: unknown[] = []): Promise<T> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(sql, values);
  return rows[0] as T;
}

const TOOLS: Record<string, string> = { 'mariadb-dump': 'mariadb-client', mariadb: 'mariadb-client', zstd: 'zstd', gpg: 'gnupg' };

function toolVersion(program: string): string | undefined {
  const r = spawnSync(program, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : undefined;
}

export interface MyServer {
  serverVersion: string;
  binlog: boolean;
  bufferPoolMiB: number;
  flushLogAtTrxCommit: number;
  mariadbDump: string;
}

/**
 * Checks the prerequisites of the MariaDB section: mariadb-dump, mariadb, zstd and gpg on PATH, the
 * server reachable and MariaDB. Throws a BenchError naming what to install.
 */
export async function probeMyServer(): Promise<MyServer> {
  const versions: Record<string, string> = {};
  for (const [program, pkg] of Object.entries(TOOLS)) {
    const v = toolVersion(program);
    if (!v) throw new BenchError(`${program} is not on PATH: install it (apt-get install ${pkg})`);
    versions[program] = v;
  }
  let row: { v: string; b: string | number; bp: string | number; f: string | number };
  try {
    row = await withMy((c) =>
      queryRow(c, 'SELECT VERSION() AS v, @@log_bin AS b, @@innodb_buffer_pool_size AS bp, @@innodb_flush_log_at_trx_commit AS f'),
    );
  } catch (err) {
    throw new BenchError(
      `MariaDB is not reachable at ${myDisplayUrl(MY_ADMIN_URL)} (${(err as Error).message || String(err)}): install it (apt-get install mariadb-server mariadb-client) and start it, or set DBFLOW_BENCH_MYSQL_URL`,
    );
  }
  if (!/mariadb/i.test(row.v))
    throw new BenchError(
      `the server at ${myDisplayUrl(MY_ADMIN_URL)} is ${row.v}, not MariaDB: the section needs MariaDB (apt-get install mariadb-server)`,
    );
  return {
    serverVersion: row.v,
    binlog: Number(row.b) === 1,
    bufferPoolMiB: Number(row.bp) / 2 ** 20,
    flushLogAtTrxCommit: Number(row.f),
    mariadbDump: versions['mariadb-dump']!,
  };
}

let cnfFile: string | undefined;

/**
 * The stock tools' connection (user, host/port or socket, password) in a 0600 option file, written
 * once per run under bench-data/ and removed by `myCleanupSync`; their first argument is
 * `--defaults-extra-file=<it>`.
 */
export function clientCnf(): string {
  if (cnfFile) return cnfFile;
  const o = connectionOptions(MY_ADMIN_URL);
  const lines = ['[client]', `user=${o.user}`, ...(o.socketPath ? [`socket=${o.socketPath}`] : [`host=${o.host}`, `port=${o.port}`])];
  if (o.password) lines.push(`password="${o.password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  cnfFile = path.join(DATA, `bench-${process.pid}.my.cnf`);
  writeFileSync(cnfFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  return cnfFile;
}

// Databases created by the bench and not yet dropped (or kept).
const scratch = new Set<string>();

/** A fresh name for a scratch database, registered for the drop at exit (the caller creates it). */
export function myScratchName(purpose: string): string {
  const name = `dbflow_bench_scratch_${purpose}_${randomBytes(4).toString('hex')}`;
  scratch.add(name);
  return name;
}

/** Registers a database the bench is about to create, so that it is dropped on SIGINT or failure. */
export function myRegisterScratch(name: string): void {
  scratch.add(name);
}

/** Forgets a registered database without dropping it (it became the cached bench database). */
export function myKeepScratch(name: string): void {
  scratch.delete(name);
}

/** Drops a scratch database and forgets it. */
export async function myDropScratch(name: string): Promise<void> {
  await withMy((c) => c.query(`DROP DATABASE IF EXISTS ${myIdent(name)}`));
  scratch.delete(name);
}

// Scratch folders of the section (removed by `myCleanupSync` when a run is interrupted).
const dirs = new Set<string>();

/** Registers a folder to remove on SIGINT; `myForgetDir` when the section removed it itself. */
export function myRegisterDir(dir: string): void {
  dirs.add(dir);
}

export function myForgetDir(dir: string): void {
  dirs.delete(dir);
}

/**
 * Drops every scratch database still registered (first killing the sessions on it, which this
 * process may still hold open, e.g. the writer's transaction, whose metadata locks a DROP would wait
 * for), removes registered folders and the option file; synchronous, for the SIGINT handler.
 */
export function myCleanupSync(): void {
  if (scratch.size) {
    const cnf = clientCnf();
    const sql = (q: string): string =>
      spawnSync('mariadb', [`--defaults-extra-file=${cnf}`, '-N', '-B', '-e', q], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
    for (const name of scratch) {
      const lit = `'${name.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
      const ids = sql(`SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ${lit} AND ID <> CONNECTION_ID()`)
        .split('\n')
        .filter((x) => /^\d+$/.test(x.trim()));
      if (ids.length) sql(ids.map((id) => `KILL CONNECTION ${id.trim()};`).join(' '));
      sql(`SET SESSION lock_wait_timeout = 20; DROP DATABASE IF EXISTS ${myIdent(name)}`);
      scratch.delete(name);
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
  if (cnfFile) rmSync(cnfFile, { force: true });
  cnfFile = undefined;
}

/** A BenchError when mysql2 failed (the server's message is enough). */
export function myError(what: string, err: unknown): BenchError {
  return err instanceof BenchError ? err : new BenchError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}
