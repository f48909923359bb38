// A throwaway MariaDB instance: a private mariadbd on its own data directory, loopback port, socket and temporary folder.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import type { RowDataPacket } from 'mysql2/promise';
import { DbflowError, freePort, HELD_PROCESS_FILE, programEnv } from '../../src/plugin-api.js';

const INSTALL = 'install the MariaDB server (apt-get install mariadb-server)';
const SERVERS = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld', '/usr/libexec/mariadbd'];

/** `DatabaseDriver.throwawayMissing`: what is not installed for a throwaway server (mariadbd, mariadb-install-db), if anything. */
export function throwawayMissing(): Promise<string | undefined> {
  const onPath = (tool: string): boolean =>
    (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && existsSync(path.join(dir, tool)));
  const ok = SERVERS.some((f) => existsSync(f)) && onPath('mariadb-install-db');
  return Promise.resolve(ok ? undefined : `mariadbd and mariadb-install-db are not installed (${INSTALL})`);
}

/** The installed server binary, or an error naming the package to install. */
export function requireMariadbd(): string {
  const found = SERVERS.find((f) => existsSync(f));
  if (!found) throw new DbflowError(`a throwaway MariaDB instance needs mariadbd, and it is not installed: ${INSTALL}.`);
  return found;
}

/** The folder of one instance: `data` (not yet made), its own `tmp`, socket, pid file and error log. */
export interface InstanceDir {
  root: string;
  data: string;
  tmp: string;
  socket: string;
  pidFile: string;
  errorLog: string;
  /** Removes the folder and everything in it. */
  remove(): void;
}

/** Makes the folder of a throwaway instance in the temporary folder. */
export function instanceDir(): InstanceDir {
  // Named like a command's temporary folder: when dbflow is killed, the next command stops the server (its held-process
  // file) and removes the folder.
  const root = mkdtempSync(path.join(os.tmpdir(), `dbflow-instance-pid${process.pid}-`));
  const tmp = path.join(root, 'tmp');
  mkdirSync(tmp, { mode: 0o700 });
  return {
    root,
    data: path.join(root, 'data'),
    tmp,
    socket: path.join(root, 'sock'),
    pidFile: path.join(root, 'mariadbd.pid'),
    errorLog: path.join(root, 'error.log'),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A running throwaway instance. */
export interface Instance {
  port: number;
  /** A URL to `database` over its loopback port (any user: it runs without grant tables). */
  url(user: string, database: string): string;
  /** Stops it: at once (SIGKILL) for a throwaway copy, cleanly (SIGTERM, waiting for the shutdown) for one to keep. */
  stop(how: 'kill' | 'clean'): Promise<void>;
}

// Every running instance: a process that exits leaves no server behind.
const running = new Set<ResultPromise>();
process.once('exit', () => {
  for (const server of running) server.kill('SIGKILL');
});

/**
 * Starts the installed mariadbd on `data` with `dir`'s socket, pid file and error log, on a free loopback port.
 * Without defaults files (never the production server's settings), with the InnoDB settings the backup recorded
 * (`backup-my.cnf`), its own --tmpdir (a server deletes the #sql* files in its tmpdir at start: in a shared /tmp
 * they are the live temporary tables of another server), no binary log, no replica threads, no grant tables (the
 * counts connect as the backup's user, whose password the restore need not know; only loopback and the socket in a
 * private folder listen). Waits until it accepts connections; a failure quotes the server's error log.
 */
export async function startInstance(
  dir: InstanceDir,
  data: string,
  signal?: AbortSignal,
  onPort?: number,
  grants = false,
): Promise<Instance> {
  const mariadbd = requireMariadbd();
  holdServer(dir, data);
  for (let attempt = 1; ; attempt++) {
    // A restart keeps its port (`onPort`): the URLs handed out stay valid.
    const port = onPort ?? (await freePort());
    const defaults = path.join(data, 'backup-my.cnf');
    const args = [
      existsSync(defaults) ? `--defaults-file=${defaults}` : '--no-defaults',
      `--datadir=${data}`,
      `--tmpdir=${dir.tmp}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${dir.socket}`,
      `--pid-file=${dir.pidFile}`,
      `--log-error=${dir.errorLog}`,
      // With grant tables (a dump's restore: its events need them, and they stay off), else without.
      ...(grants ? ['--event-scheduler=OFF'] : ['--skip-grant-tables']),
      '--skip-slave-start',
      '--innodb-buffer-pool-size=64M',
      // A replayed binlog carries a large transaction's rows in one statement.
      '--max-allowed-packet=1073741824',
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
    ];
    const server = execa(mariadbd, args, { env: programEnv(), extendEnv: false, reject: false, stdio: 'ignore' });
    running.add(server);
    const stop = async (how: 'kill' | 'clean'): Promise<void> => {
      if (!running.delete(server)) return;
      server.kill(how === 'kill' ? 'SIGKILL' : 'SIGTERM');
      await Promise.race([server, sleep(how === 'kill' ? 10_000 : 120_000)]);
      server.kill('SIGKILL');
      await server;
    };
    const url = (user: string, database: string): string =>
      `mysql://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
    try {
      await untilAccepting(port, data, server, signal);
      return { port, url, stop };
    } catch (err) {
      await stop('kill');
      const log = existsSync(dir.errorLog) ? readFileSync(dir.errorLog, 'utf8') : '';
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      if (/Address already in use/.test(log) && attempt < 3) {
        if (onPort !== undefined) await sleep(500);
        continue;
      }
      throw new DbflowError(`the throwaway MariaDB instance did not start: ${lastLines(log) || (err as Error).message}`, { cause: err });
    }
  }
}

// The server outlives a dbflow that is killed: its folder names it (before it starts), so that the next command that
// reaps the folder stops it.
function holdServer(dir: InstanceDir, data: string): void {
  const held = { pid_file: dir.pidFile, cmdline: `--datadir=${data}`, signal: 'SIGKILL' };
  writeFileSync(path.join(dir.root, HELD_PROCESS_FILE), JSON.stringify(held));
}

// Crash recovery of the prepared files runs before the server listens: wait for a connection, or for it to stop.
// The one answering must be this instance (its data directory): another server may hold the port it could not bind.
async function untilAccepting(port: number, data: string, server: ResultPromise, signal?: AbortSignal): Promise<void> {
  const mysql = await import('mysql2/promise');
  const deadline = Date.now() + 600_000;
  let exited = false;
  void server.then(() => (exited = true));
  for (;;) {
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 2000 });
      try {
        const [rows] = await c.query<RowDataPacket[]>('SELECT @@datadir AS d');
        if (path.resolve(String(rows[0]!.d)) !== path.resolve(data)) throw new Error(`another server answers on port ${port}`);
      } finally {
        await c.end().catch(() => c.destroy());
      }
      return;
    } catch (err) {
      if (exited) throw new DbflowError('the server stopped while starting');
      if (signal?.aborted || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/** The error log's lines that say what went wrong ([ERROR]), else its last lines. */
export function lastLines(log: string, n = 6): string {
  const lines = log.trim().split('\n');
  const bad = lines.filter((l) => /\[ERROR\]/.test(l));
  return (bad.length ? bad : lines).slice(-n).join('\n');
}
