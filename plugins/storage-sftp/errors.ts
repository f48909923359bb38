// Connection and SFTP failures, said in the user's terms: which server, what went wrong, what to do.
import { DbflowError } from '../../src/plugin-api.js';
import type { Login } from './credentials.js';
import { describeServer, type SftpLocation } from './url.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02) that the messages tell apart. */
export const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

/** The error of a connection that could not be opened (the host key was fine, or not checked yet). */
export function connectError(err: unknown, loc: SftpLocation, login: Login, timeoutMs: number): DbflowError {
  const { code, message } = describe(err);
  const at = `${loc.host}:${loc.port}`;
  const server = `the SFTP server ${describeServer(loc)}`;
  const cause = { cause: err };
  if (code === 'ECONNREFUSED') {
    return new DbflowError(
      `cannot connect to ${at}: connection refused; check the host and port of "${loc.origin}", and that an SSH server listens there.`,
      cause,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new DbflowError(`the host "${loc.host}" of "${loc.origin}" was not found (DNS lookup failed); check its spelling.`, cause);
  }
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT') {
    return new DbflowError(`cannot reach ${at} (${code}); check the network path to "${loc.origin}".`, cause);
  }
  if (/timed out while waiting for handshake/i.test(message)) {
    return new DbflowError(
      `no SSH handshake with ${at} within ${timeoutMs / 1000} s; check that "${loc.origin}" names an SSH server that answers from here (storage.sftp.connect_timeout or DBFLOW_SFTP_CONNECT_TIMEOUT sets the limit, in seconds).`,
      cause,
    );
  }
  if (/all configured authentication methods failed/i.test(message)) {
    return new DbflowError(
      `${server} refused the login of "${loc.username}" with ${login.tried}; add the public key to ~${loc.username}/.ssh/authorized_keys on the server, or set DBFLOW_SFTP_KEY to a key that it accepts.`,
      cause,
    );
  }
  if (/subsystem/i.test(message)) {
    return new DbflowError(
      `${server} does not offer SFTP (${message}); enable it with "Subsystem sftp internal-sftp" in its sshd_config.`,
      cause,
    );
  }
  return new DbflowError(`cannot open an SFTP session with ${server}: ${message}.`, cause);
}

/** The error of an SFTP operation (`what`, e.g. `reading "sftp://…"`) that the server refused or that the connection broke. */
export function operationError(what: string, err: unknown): DbflowError {
  if (err instanceof DbflowError) return err;
  const { code, message } = describe(err);
  const cause = { cause: err };
  if (/no response from server|not connected|unexpected (end|close)/i.test(message)) {
    return new DbflowError(`${what} failed: the connection to the SFTP server was lost (${message}).`, cause);
  }
  if (code === PERMISSION_DENIED || code === 'EACCES') {
    return new DbflowError(
      `${what} failed: permission denied on the SFTP server (${message}); check the login's rights on that folder.`,
      cause,
    );
  }
  return new DbflowError(`${what} failed: ${message}.`, cause);
}

/** The code (an SFTP status number or a socket error name) and message of an error, without the library's prefixes. */
export function describe(err: unknown): { code: unknown; message: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const message = String(e?.message ?? err)
    .replace(/^(?:\w+(?:->|: ))+/, '')
    .replace(/\.$/, '');
  return { code: e?.code, message };
}
