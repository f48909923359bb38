// A throwaway OpenSSH server for the SFTP tests: own host key, user key, config and loopback port, removed after the test.
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { descendants, freePort, waitFor } from './processes.js';

const SSHD = '/usr/sbin/sshd';

/** A running sshd and what a client needs to reach it. */
export interface Sshd {
  port: number;
  pid: number;
  /** The login name (the user running the tests). */
  user: string;
  /** The SFTP server's starting folder: what `sftp://…/~/x` resolves under. */
  home: string;
  /** A private key that the server accepts (no passphrase) and its public half. */
  userKey: string;
  userPub: string;
  /** The server's host key, `ssh-ed25519 AAAA…`. */
  hostKey: string;
  /** A known_hosts file holding `[127.0.0.1]:port ssh-ed25519 …`. */
  knownHosts: string;
  /** The folder with config, keys and logs. */
  dir: string;
  /** `sftp://user@127.0.0.1:port` followed by `remotePath`. */
  url(remotePath: string): string;
  /** The environment that makes dbflow use this server's key and known_hosts. */
  env: { DBFLOW_SFTP_KEY: string; DBFLOW_SFTP_KNOWN_HOSTS: string };
  /** sshd's log so far. */
  log(): string;
  /** The number of client sessions sshd is serving right now (one process each). */
  sessions(): number;
}

/** Fails (CI=true) or skips the test when OpenSSH's server or ssh-keygen is missing; true when both are there. */
export function requireOpenssh(t: Pick<TestContext, 'skip'>): boolean {
  const missing = [SSHD, 'ssh-keygen'].filter((p) => !findProgram(p));
  if (!missing.length) return true;
  const message = `${missing.join(' and ')} not installed; install the Debian package "openssh-server" (apt-get install openssh-server).`;
  if (process.env.CI === 'true') throw new Error(message);
  t.skip(message);
  return false;
}

/** Starts sshd on a free 127.0.0.1 port; stopped and removed when the test ends. Undefined when skipped. */
export async function startSshd(t: Pick<TestContext, 'after' | 'skip'>): Promise<Sshd | undefined> {
  if (!requireOpenssh(t)) return undefined;
  // Removed after sshd has stopped (the hook below runs before those registered later).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-sshd-'));
  let stop = (): Promise<void> => Promise.resolve();
  t.after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const home = path.join(dir, 'home');
  mkdirSync(home);
  const hostKeyFile = await keygen(path.join(dir, 'host_ed25519'), 'dbflow-test-host');
  const userKey = await keygen(path.join(dir, 'user_ed25519'), 'dbflow-test-user');
  const userPub = readFileSync(`${userKey}.pub`, 'utf8').trim();
  writeFileSync(path.join(dir, 'authorized_keys'), `${userPub}\n`);
  const hostKey = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  // sshd's privilege separation needs this folder (the system sshd would make it).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  let started: { port: number; proc: ResultPromise; log: () => string } | undefined;
  for (let attempt = 0; !started; attempt++) {
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${hostKeyFile}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        'UseDNS no',
        'PrintMotd no',
        'MaxStartups 50',
        'LogLevel VERBOSE',
        `Subsystem sftp internal-sftp -d ${home}`,
        '',
      ].join('\n'),
    );
    let log = '';
    // sshd re-executes itself, so it must be started by its absolute path.
    const proc = execa(SSHD, ['-D', '-e', '-f', config], { reject: false, stdin: 'ignore' });
    proc.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    let exited = false;
    void proc.finally(() => (exited = true));
    stop = async () => {
      proc.kill('SIGTERM');
      await proc;
    };
    const listening = `Server listening on 127.0.0.1 port ${port}`;
    await waitFor(`sshd to listen on port ${port}`, () => log.includes(listening) || exited, 15_000);
    if (!exited) {
      started = { port, proc, log: () => log };
    } else if (!/Address already in use/.test(log) || attempt >= 2) {
      throw new Error(`sshd did not start:\n${log}`);
    }
  }

  const { port, proc, log } = started;
  const pid = proc.pid!;
  stop = async () => {
    // Connections a failed test left open are sshd children: end them, then the listener.
    for (const child of descendants(pid)) process.kill(child.pid, 'SIGTERM');
    proc.kill('SIGTERM');
    await proc;
  };
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  const user = os.userInfo().username;
  return {
    port,
    pid,
    user,
    home,
    userKey,
    userPub,
    hostKey,
    knownHosts,
    dir,
    url: (remotePath) => `sftp://${user}@127.0.0.1:${port}${remotePath}`,
    env: { DBFLOW_SFTP_KEY: userKey, DBFLOW_SFTP_KNOWN_HOSTS: knownHosts },
    log,
    sessions: () => descendants(pid).length,
  };
}

/** Generates an ed25519 key pair at `file` (and `file.pub`); `passphrase` encrypts the private key. */
export async function keygen(file: string, comment: string, passphrase = ''): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', file]);
  return file;
}

/**
 * Sets `vars` in process.env for the rest of the test (undefined removes one), restoring the old
 * values after it. The SFTP storage reads its settings from the environment on every call.
 */
export function setEnv(t: Pick<TestContext, 'after'>, vars: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  t.after(() => apply(saved));
}

// The program's path when it is executable (an absolute path, or a name looked up on PATH).
function findProgram(program: string): string | undefined {
  const candidates = program.includes('/') ? [program] : (process.env.PATH ?? '').split(':').map((d) => path.join(d, program));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
