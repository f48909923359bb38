// A throwaway PostgreSQL instance: a private server on its own data directory, loopback port and socket folder.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { DbflowError, freePort, HELD_PROCESS_FILE, programEnv } from '../../src/plugin-api.js';

const INSTALL = 'install the PostgreSQL server binaries (apt-get install postgresql)';

/** The folder of the server binaries (initdb, pg_ctl, postgres): `pg_config --bindir`, else the newest /usr/lib/postgresql/<n>/bin. */
export async function serverBinDir(): Promise<string | undefined> {
  try {
    const { stdout } = await execa('pg_config', ['--bindir'], { env: programEnv(), extendEnv: false });
    const dir = stdout.trim();
    if (existsSync(path.join(dir, 'pg_ctl'))) return dir;
  } catch {
    // no pg_config: look in the Debian layout
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => path.join(root, v, 'bin')).find((dir) => existsSync(path.join(dir, 'pg_ctl')));
}

/** `DatabaseDriver.throwawayMissing`: what is not installed for a throwaway server, if anything. */
export async function throwawayMissing(): Promise<string | undefined> {
  return (await serverBinDir()) ? undefined : `initdb and pg_ctl are not installed (${INSTALL})`;
}

/** The server binaries, or an error naming the package to install. */
export async function requireServerBinDir(): Promise<string> {
  const bin = await serverBinDir();
  if (!bin) throw new DbflowError(`a throwaway PostgreSQL instance needs pg_ctl, and it is not installed: ${INSTALL}.`);
  return bin;
}

const asRoot = process.getuid?.() === 0;

/** A folder for one instance: `data` (empty, not yet created), `sock`; as root, owned by the postgres user. */
export interface InstanceDir {
  root: string;
  data: string;
  socketDir: string;
  /** Who owns the files (the postgres user as root, else the current user). */
  owner: { uid: number; gid: number };
  /** Removes the folder and everything in it. */
  remove(): void;
}

/** Makes the folder of a throwaway instance below `parent` (default: the temporary folder). */
export async function instanceDir(parent = os.tmpdir()): Promise<InstanceDir> {
  const owner = await instanceOwner();
  // Named like a command's temporary folder: when dbflow is killed, the next command removes it (and the server,
  // whose lock file is gone, shuts itself down).
  const root = mkdtempSync(path.join(parent, `dbflow-instance-pid${process.pid}-`));
  chmodSync(root, 0o755);
  const socketDir = path.join(root, 'sock');
  mkdirSync(socketDir, { mode: 0o700 });
  for (const p of [root, socketDir]) chownSync(p, owner.uid, owner.gid);
  return { root, data: path.join(root, 'data'), socketDir, owner, remove: () => rmSync(root, { recursive: true, force: true }) };
}

// PostgreSQL refuses to run as root: as root, its files belong to the postgres user.
async function instanceOwner(): Promise<{ uid: number; gid: number }> {
  if (!asRoot) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  try {
    const env = programEnv();
    const [u, g] = await Promise.all([
      execa('id', ['-u', 'postgres'], { env, extendEnv: false }),
      execa('id', ['-g', 'postgres'], { env, extendEnv: false }),
    ]);
    return { uid: Number(u.stdout), gid: Number(g.stdout) };
  } catch {
    throw new DbflowError(`as root, a throwaway PostgreSQL instance runs as the "postgres" user, and there is none: ${INSTALL}.`);
  }
}

/** Runs a server binary, as the postgres user when dbflow runs as root (PostgreSQL refuses root). */
export function asServerUser(file: string, args: readonly string[], options: { signal?: AbortSignal } = {}): ReturnType<typeof execa> {
  const run = asRoot
    ? execa('runuser', ['-u', 'postgres', '--', file, ...args], {
        env: programEnv(),
        extendEnv: false,
        ...(options.signal && { cancelSignal: options.signal }),
      })
    : execa(file, args, { env: programEnv(), extendEnv: false, ...(options.signal && { cancelSignal: options.signal }) });
  return run;
}

/** A running throwaway instance. */
export interface Instance {
  port: number;
  socketDir: string;
  data: string;
  /** A connection URL to `database` as `user` over the loopback port. */
  url(user: string, database: string): string;
  /** The server's log so far (for error messages). */
  log(): string;
  /** Stops the server at once (`pg_ctl stop -m immediate`) and removes its folder. Safe more than once. */
  stop(): Promise<void>;
}

/** What `startInstance` gets. */
export interface StartOptions {
  bin: string;
  dir: InstanceDir;
  /** `-c name=value` settings besides port, listen_addresses and unix_socket_directories. */
  settings?: readonly string[];
  /** Aborting it stops the instance. */
  signal?: AbortSignal;
  /** How long `pg_ctl start -w` waits (seconds), recovery included. */
  timeoutS?: number;
}

// Every instance's data directory: a process that exits leaves no server behind.
const running = new Set<string>();
process.once('exit', () => {
  for (const data of running) {
    try {
      const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
});

/**
 * Starts the server on `dir.data` (initialised or restored already) on a free loopback port, listening on
 * 127.0.0.1 and its own socket folder only; waits until it accepts connections (after recovery). On
 * failure it is stopped, and the error quotes the end of the server's log. The caller removes `dir`
 * (`stop()` does).
 */
export async function startInstance(options: StartOptions): Promise<Instance> {
  const { bin, dir } = options;
  const logFile = path.join(dir.root, 'server.log');
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    options.signal?.removeEventListener('abort', onAbort);
    if (existsSync(path.join(dir.data, 'postmaster.pid')))
      await asServerUser(path.join(bin, 'pg_ctl'), ['stop', '-D', dir.data, '-m', 'immediate', '-w', '-t', '30']).catch(() => undefined);
    running.delete(dir.data);
    dir.remove();
  };
  const onAbort = (): void => void stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  holdServer(dir);
  // The port may be taken between freePort() and the start: try again with another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const settings = [
      `port=${port}`,
      'listen_addresses=127.0.0.1',
      `unix_socket_directories=${dir.socketDir}`,
      ...(options.settings ?? []),
    ];
    try {
      if (options.signal?.aborted) throw options.signal.reason;
      running.add(dir.data);
      await asServerUser(path.join(bin, 'pg_ctl'), [
        'start',
        '-D',
        dir.data,
        '-l',
        logFile,
        '-w',
        '-t',
        String(options.timeoutS ?? 600),
        '-o',
        settings.map((s) => `-c ${s}`).join(' '),
      ]);
      await untilAccepting(bin, dir.socketDir, port, options);
      return {
        port,
        socketDir: dir.socketDir,
        data: dir.data,
        url: (user, database) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
        log,
        stop,
      };
    } catch (err) {
      const text = log();
      const portTaken = /could not bind|address already in use/i.test(text) && !/database system is ready/.test(text);
      if (options.signal?.aborted || !portTaken || attempt >= 3) {
        await stop();
        if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : err;
        throw new DbflowError(`the throwaway PostgreSQL instance did not start: ${lastLines(text) || (err as Error).message}`, {
          cause: err,
        });
      }
      rmSync(logFile, { force: true });
    }
  }
}

// The server outlives a dbflow that is killed: its folder names it (before it starts), so that the next command that
// reaps the folder stops it (SIGQUIT: immediate shutdown) rather than waiting for it to notice its lock file is gone.
function holdServer(dir: InstanceDir): void {
  const held = { pid_file: path.join(dir.data, 'postmaster.pid'), cmdline: dir.data, signal: 'SIGQUIT' };
  writeFileSync(path.join(dir.root, HELD_PROCESS_FILE), JSON.stringify(held));
}

// pg_ctl -w returns once recovery has reached a consistent state; the server takes connections only after recovery ends.
async function untilAccepting(bin: string, socketDir: string, port: number, options: StartOptions): Promise<void> {
  const deadline = Date.now() + (options.timeoutS ?? 600) * 1000;
  for (;;) {
    const r = await execa(path.join(bin, 'pg_isready'), ['-q', '-h', socketDir, '-p', String(port), '-t', '5'], {
      env: programEnv(),
      extendEnv: false,
      reject: false,
    });
    if (r.exitCode === 0) return;
    // 1: starting or recovering; 2: no answer (the server stopped: its log says why).
    if (r.exitCode !== 1 || Date.now() > deadline || options.signal?.aborted)
      throw new DbflowError(r.exitCode === 2 ? 'the server stopped while starting' : 'the server did not finish starting in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The server log's lines that say what went wrong (FATAL, PANIC, ERROR), else its last lines. */
export function lastLines(log: string, n = 6): string {
  const lines = log.trim().split('\n');
  const bad = lines.filter((l) => /\b(FATAL|PANIC|ERROR):/.test(l));
  return (bad.length ? bad : lines).slice(-n).join('\n');
}

/** Writes a file the server reads, owned by the server's user. */
export function writeServerFile(dir: InstanceDir, file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chownSync(file, dir.owner.uid, dir.owner.gid);
}
