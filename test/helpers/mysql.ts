// The MariaDB/MySQL servers integration tests run against: the shared one, scratch databases and users on it, private servers.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import mysql from 'mysql2/promise';

import { requireTool } from './step-context.js';
import { freePort } from './processes.js';
import { tmpDir } from './tmp.js';

/** The server under test: `DBFLOW_TEST_MYSQL_URL`, else the local default. */
export const MY_URL = process.env.DBFLOW_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';

const INSTALL = 'install it (apt-get install mariadb-server mariadb-client) and start it, or set DBFLOW_TEST_MYSQL_URL';

// Under CI=true a missing prerequisite fails the test; elsewhere it skips it.
function unavailable(t: Pick<TestContext, 'skip'>, message: string): false {
  if (process.env.CI === 'true') throw new Error(message);
  t.skip(message);
  return false;
}

const displayUrl = (url: string): string => url.replace(/^(\w+:\/\/[^:/?#@]*):[^@/?#]*@/, '$1:***@');

/** mysql2 options for a mysql:// URL (database optional). */
export function connectionOptions(url: string, password?: string): mysql.ConnectionOptions {
  const u = new URL(url);
  const socket = u.searchParams.get('socket');
  return {
    ...(socket ? { socketPath: socket } : { host: u.hostname || '127.0.0.1', port: Number(u.port || 3306) }),
    user: decodeURIComponent(u.username) || 'root',
    password: password ?? decodeURIComponent(u.password),
    ...(u.pathname.length > 1 && { database: decodeURIComponent(u.pathname.slice(1)) }),
    multipleStatements: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectTimeout: 5000,
  };
}

let reachable: Promise<string | undefined> | undefined;

// Whether the shared server answers (checked once per process): undefined, or why not.
function probe(): Promise<string | undefined> {
  reachable ??= withConnection(MY_URL, (c) => c.query('SELECT 1')).then(
    () => undefined,
    (err: Error) => err.message || String(err),
  );
  return reachable;
}

/** True when the shared server is reachable; otherwise fails (CI=true) or skips the test. */
export async function requireMysql(t: Pick<TestContext, 'skip'>): Promise<boolean> {
  const why = await probe();
  return why === undefined || unavailable(t, `MariaDB/MySQL is not reachable at ${displayUrl(MY_URL)} (${why}): ${INSTALL}`);
}

const PACKAGES: Record<string, string> = {
  'mariadb-dump': 'mariadb-client',
  // mbstream (no --version) comes with it.
  'mariadb-backup': 'mariadb-backup',
  mariadb: 'mariadb-client',
  gpg: 'gnupg',
  zstd: 'zstd',
};

/** The shared server and every tool a backup through the CLI uses. */
export async function requireMyBackupTools(t: Pick<TestContext, 'skip'>, ...more: string[]): Promise<boolean> {
  if (!(await requireMysql(t))) return false;
  for (const program of ['mariadb-dump', 'mariadb', ...more]) {
    if (!(await requireTool(t, program, PACKAGES[program] ?? program))) return false;
  }
  return true;
}

/** Runs `fn` with a fresh connection to `url`, closed afterwards. */
export async function withConnection<T>(url: string, fn: (c: mysql.Connection) => Promise<T>, password?: string): Promise<T> {
  const c = await mysql.createConnection(connectionOptions(url, password));
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/** `url` with its database (path) replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** A database made for one test. */
export interface ScratchDatabase {
  name: string;
  url: string;
  /** A small pool on it (closed before the database is dropped). */
  pool: mysql.Pool;
}

/** A new, uniquely named database `dbflow_test_<hex>` on the server at `serverUrl`; dropped after the test. */
export async function scratchDatabase(t: Pick<TestContext, 'after'>, serverUrl = MY_URL): Promise<ScratchDatabase> {
  const name = `dbflow_test_${randomBytes(6).toString('hex')}`;
  await withConnection(serverUrl, (c) => c.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`));
  const url = withDatabase(serverUrl, name);
  const pool = mysql.createPool({ ...connectionOptions(url), connectionLimit: 4 });
  t.after(async () => {
    await pool.end().catch(() => undefined);
    await dropOn(serverUrl, `DROP DATABASE IF EXISTS ${name}`);
  });
  return { name, url, pool };
}

// Runs a DROP on the server; a throwaway server stopped before (its hook ran first) took everything with it.
async function dropOn(serverUrl: string, sql: string): Promise<void> {
  try {
    await withConnection(serverUrl, (c) => c.query(sql));
  } catch (err) {
    if (serverUrl === MY_URL || (err as { code?: string }).code !== 'ECONNREFUSED') throw err;
  }
}

/** Names of the databases on the server whose name starts with `prefix`. */
export async function databasesStartingWith(prefix: string, serverUrl = MY_URL): Promise<string[]> {
  const [rows] = await withConnection(serverUrl, (c) =>
    c.query<mysql.RowDataPacket[]>(
      'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ? ORDER BY 1',
      [prefix.length, prefix],
    ),
  );
  return rows.map((r) => String(r.name));
}

/** A user `dbflow_test_<hex>` with a password and every privilege, dropped after the test. */
export async function throwawayUser(
  t: Pick<TestContext, 'after'>,
  serverUrl = MY_URL,
  options: { requireSsl?: boolean } = {},
): Promise<{ user: string; password: string }> {
  const user = `dbflow_test_${randomBytes(4).toString('hex')}`;
  const password = `pw"#\\'${randomBytes(6).toString('hex')}`;
  await withConnection(serverUrl, async (c) => {
    await c.query(`CREATE USER ?@? IDENTIFIED BY ?${options.requireSsl ? ' REQUIRE SSL' : ''}`, [user, '%', password]);
    await c.query('GRANT ALL PRIVILEGES ON *.* TO ?@?', [user, '%']);
  });
  t.after(() => dropOn(serverUrl, `DROP USER IF EXISTS '${user}'@'%'`));
  return { user, password };
}

/** A private server: its URL (root, no password) and data folder. */
export interface ThrowawayMariadb {
  url: string;
  port: number;
  dir: string;
  /** The data directory (the binary logs are `binlog.NNNNNN` in it). */
  data: string;
  /** Stops the server (cleanly, or SIGKILL for a crash) and starts it again on the same port and data. */
  restart(how: 'clean' | 'crash'): Promise<void>;
  /** With `tls`: the CA that signed the server's certificate (for 127.0.0.1). */
  ca?: string;
}

// A CA and a server certificate for 127.0.0.1, signed by it, in `dir`.
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string): string => path.join(dir, name);
  const ssl = (...args: string[]): Promise<unknown> => execa('openssl', args);
  await ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=dbflow test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n');
  await ssl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.pem'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    f('ext.cnf'),
    '-out',
    f('server.pem'),
  );
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

const servers = new Set<string>();
// A test process that dies leaves no server behind.
process.once('exit', () => {
  for (const pidFile of servers) {
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Starts a private MariaDB (binary log and GTIDs on, TLS with `tls`, more server options in `args`) on a free loopback port; stopped and removed after the test. */
export async function throwawayMariadb(
  t: Pick<TestContext, 'skip' | 'after'>,
  options: { tls?: boolean; args?: readonly string[] } = {},
): Promise<ThrowawayMariadb | undefined> {
  const mariadbd = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((f) => existsSync(f));
  if (!mariadbd) {
    unavailable(
      t,
      'mariadbd is not installed; install the Debian package "mariadb-server" (apt-get install mariadb-server mariadb-client)',
    );
    return undefined;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-mariadb-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  // Its own temporary folder, from the bootstrap on: at start, a server deletes every #sql* file in its tmpdir,
  // which in the shared /tmp are the live temporary tables of the machine's other MariaDB server (its queries then fail).
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp);
  await execa('mariadb-install-db', [
    '--no-defaults',
    `--datadir=${data}`,
    `--tmpdir=${tmp}`, // handed to the bootstrap server, which would otherwise clean /tmp as well
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    ...asRoot,
  ]);
  const certs = options.tls ? await makeCertificates(dir) : undefined;
  let port = await freePort();
  const pidFile = path.join(dir, 'mariadbd.pid');
  const argsFor = (port: number): string[] => [
    '--no-defaults',
    `--datadir=${data}`,
    `--tmpdir=${tmp}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${path.join(dir, 'sock')}`,
    `--pid-file=${pidFile}`,
    `--log-bin=${path.join(data, 'binlog')}`,
    '--server-id=7',
    '--innodb-buffer-pool-size=32M',
    '--innodb-log-file-size=32M',
    '--innodb-flush-log-at-trx-commit=0',
    '--sync-binlog=0',
    '--skip-name-resolve',
    `--log-error=${path.join(dir, 'error.log')}`,
    ...(certs ? [`--ssl-ca=${certs.ca}`, `--ssl-cert=${certs.cert}`, `--ssl-key=${certs.key}`] : []),
    ...(options.args ?? []),
    ...asRoot,
  ];
  let args = argsFor(port);
  let server = execa(mariadbd, args, { reject: false, stdio: 'ignore' });
  servers.add(pidFile);
  const stop = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    server.kill(signal);
    await Promise.race([server, sleep(10_000)]);
    server.kill('SIGKILL');
    await server;
  };
  t.after(async () => {
    await stop('SIGTERM');
    servers.delete(pidFile);
    rmSync(dir, { recursive: true, force: true });
  });
  let url = `mysql://root@127.0.0.1:${port}/`;
  // Ready when this server answers: another test's server may hold the port it could not bind (it then exits).
  const ready = async (): Promise<void> => {
    for (let i = 0; ; i++) {
      try {
        const [rows] = await withConnection(url, (c) => c.query<mysql.RowDataPacket[]>('SELECT @@datadir AS d'));
        if (path.resolve(String(rows[0]!.d)) === path.resolve(data)) return;
        throw new Error(`another server answers on port ${port}`);
      } catch (err) {
        if (i > 100 || server.exitCode !== null) {
          const log = existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
          throw new Error(`could not start a throwaway MariaDB: ${(err as Error).message}\n${log}`, { cause: err });
        }
        await sleep(100);
      }
    }
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await ready();
      break;
    } catch (err) {
      const log = existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : '';
      if (attempt >= 3 || !/Address already in use|Can't start server: Bind/.test(log)) throw err;
      await server;
      port = await freePort();
      args = argsFor(port);
      url = `mysql://root@127.0.0.1:${port}/`;
      server = execa(mariadbd, args, { reject: false, stdio: 'ignore' });
    }
  }
  return {
    url,
    port,
    dir,
    data,
    ...(certs && { ca: certs.ca }),
    restart: async (how) => {
      await stop(how === 'crash' ? 'SIGKILL' : 'SIGTERM');
      server = execa(mariadbd, args, { reject: false, stdio: 'ignore' });
      await ready();
    },
  };
}

// Starts the installed mariadbd on `datadir` (as a DBA would), runs `fn` with a URL to it, stops it.
export async function startedOn<T>(t: Pick<TestContext, 'after'>, datadir: string, fn: (url: string) => Promise<T>): Promise<T> {
  const run = tmpDir(t, 'dbflow-mariadbd-');
  mkdirSync(path.join(run, 'tmp'));
  const port = await freePort();
  const args = [
    '--no-defaults',
    `--datadir=${datadir}`,
    `--tmpdir=${path.join(run, 'tmp')}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${path.join(run, 'sock')}`,
    `--pid-file=${path.join(run, 'pid')}`,
    `--log-error=${path.join(run, 'error.log')}`,
    ...(process.getuid?.() === 0 ? ['--user=root'] : []),
  ];
  const mariadbd = execa('/usr/sbin/mariadbd', args, { reject: false, stdio: 'ignore' });
  try {
    const url = `mysql://root@127.0.0.1:${port}/`;
    for (let i = 0; ; i++) {
      try {
        await withConnection(url, (cl) => cl.query('SELECT 1'));
        break;
      } catch (err) {
        if (i > 300 || mariadbd.exitCode !== null)
          throw new Error(`the restored data directory did not start: ${readFileSync(path.join(run, 'error.log'), 'utf8')}`, {
            cause: err,
          });
        await sleep(100);
      }
    }
    return await fn(url);
  } finally {
    mariadbd.kill('SIGTERM');
    await mariadbd;
    rmSync(run, { recursive: true, force: true });
  }
}
