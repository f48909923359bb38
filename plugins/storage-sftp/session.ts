// SFTP sessions: one connection per storage operation, the server's host key checked, always closed.
import type { ServerHostKeyAlgorithm, SFTPWrapper } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { DbflowError, type StorageCallOptions } from '../../src/plugin-api.js';
import { loginFor } from './credentials.js';
import { connectError } from './errors.js';
import { hostKeyError, hostTrust } from './host-trust.js';
import { type HostKeyVerdict, hostKeyAlgorithms, verdictFor } from './known-hosts.js';
import { sshLibrary } from './library.js';
import { remotePath, type SftpLocation } from './url.js';

/** An open connection to an SFTP server. */
export interface Session {
  readonly client: SftpClient;
  readonly sftp: SFTPWrapper;
  /** The remote path of a URL's path (`/~/…` under the server's starting folder). */
  path(written: string): Promise<string>;
  /** `listener` is called with the error when the connection fails or ends before `close()`. */
  onLost(listener: ((err: Error) => void) | undefined): void;
  /** Ends the connection (forcibly after a few seconds without an answer). Safe to call more than once. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_S = 20;
const KEEPALIVE_MS = 15_000;
const CLOSE_WAIT_MS = 5_000;

/** The settings of sftp:// storage (the pipeline's `storage.sftp:`); each wins over its environment variable. */
export interface SftpConfig {
  key?: string;
  known_hosts?: string;
  connect_timeout?: number;
}

/** The JSON Schema of `storage.sftp:`. */
export const SFTP_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    key: {
      type: 'string',
      format: 'path',
      minLength: 1,
      description: 'Private key file to log in with (else DBFLOW_SFTP_KEY, ssh-agent, ~/.ssh/id_*).',
    },
    known_hosts: {
      type: 'string',
      format: 'path',
      minLength: 1,
      description: 'known_hosts file with the server keys to trust (else DBFLOW_SFTP_KNOWN_HOSTS, ~/.ssh/known_hosts).',
    },
    connect_timeout: {
      type: 'number',
      exclusiveMinimum: 0,
      description: 'Seconds for connect, handshake and login (else DBFLOW_SFTP_CONNECT_TIMEOUT, default 20).',
    },
  },
} as const;

/** What a session is opened with: the storage call's settings and its signal, which aborts the attempt. */
export interface SessionOptions extends StorageCallOptions {
  signal?: AbortSignal | undefined;
}

/** Connects and logs in. The session must be closed by the caller. */
export async function openSession(loc: SftpLocation, options: SessionOptions = {}): Promise<Session> {
  const { signal } = options;
  // Checked against SFTP_CONFIG_SCHEMA before any call.
  const config = (options.config ?? {}) as SftpConfig;
  const lib = await sshLibrary();
  const [login, trust] = await Promise.all([loginFor(loc.username, lib.parseKey, config), hostTrust(loc, config)]);
  const timeoutMs = connectTimeoutMs(config);
  let refused: { verdict: Exclude<HostKeyVerdict, { status: 'known' }>; key: Buffer } | undefined;
  let lost: ((err: Error) => void) | undefined;
  let closing = false;
  const report = (err: Error): void => void (closing || lost?.(err));
  const client = new lib.SftpClient('dbflow', {
    error: (err) => report(err instanceof Error ? err : new Error(String(err))),
    end: () => report(new Error('the server ended the connection')),
    close: () => report(new Error('the connection closed')),
  });
  const serverHostKey = hostKeyAlgorithms(trust.keys) as ServerHostKeyAlgorithm[] | undefined;
  const onAbort = (): void => destroy(client);
  signal?.addEventListener('abort', onAbort, { once: true });
  let sftp: SFTPWrapper;
  try {
    sftp = await client.connect({
      host: loc.host,
      port: loc.port,
      username: loc.username,
      authHandler: login.methods,
      hostVerifier: (key: Buffer): boolean => {
        const verdict = verdictFor(trust.keys, key);
        if (verdict.status !== 'known') refused = { verdict, key };
        return verdict.status === 'known';
      },
      readyTimeout: timeoutMs,
      keepaliveInterval: KEEPALIVE_MS,
      ...(serverHostKey && { algorithms: { serverHostKey } }),
    });
  } catch (err) {
    destroy(client);
    if (signal?.aborted)
      throw signal.reason instanceof Error ? signal.reason : new DbflowError(`connecting to "${loc.origin}" was aborted.`);
    if (refused) throw hostKeyError(trust, loc, refused.verdict, refused.key);
    throw connectError(err, loc, login, timeoutMs);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  let home: Promise<string> | undefined;
  return {
    client,
    sftp,
    path: async (written) => remotePath(written, () => (home ??= client.cwd())),
    onLost: (listener) => void (lost = listener),
    async close() {
      if (closing) return;
      closing = true;
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
      await Promise.race([client.end().catch(() => undefined), forced]);
      clearTimeout(timer);
      destroy(client);
    },
  };
}

/** Runs `fn` in a new session that is closed when it settles. */
export async function withSession<T>(loc: SftpLocation, fn: (session: Session) => Promise<T>, options: SessionOptions): Promise<T> {
  const session = await openSession(loc, options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

// storage.sftp.connect_timeout, DBFLOW_SFTP_CONNECT_TIMEOUT (seconds) or the default: the limit for TCP connect, handshake and login.
function connectTimeoutMs(config: SftpConfig): number {
  if (config.connect_timeout !== undefined) return Math.round(config.connect_timeout * 1000);
  const raw = process.env.DBFLOW_SFTP_CONNECT_TIMEOUT;
  if (raw === undefined || raw === '') return DEFAULT_TIMEOUT_S * 1000;
  const seconds = Number(raw);
  if (!(seconds > 0))
    throw new DbflowError(`DBFLOW_SFTP_CONNECT_TIMEOUT="${raw}" is not a number of seconds; write e.g. DBFLOW_SFTP_CONNECT_TIMEOUT=20.`);
  return Math.round(seconds * 1000);
}

// Closes the socket at once; ssh2-sftp-client's end() only does so for a fully open session.
function destroy(client: SftpClient): void {
  (client as unknown as { client?: { destroy?(): void } }).client?.destroy?.();
}
