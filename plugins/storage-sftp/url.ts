// sftp: URLs of the SFTP storage and the remote paths they name.
import os from 'node:os';
import path from 'node:path';
import { DbflowError } from '../../src/plugin-api.js';

/** A parsed `sftp://` URL. */
export interface SftpLocation {
  /** `sftp://user@host:port` as written (URLs of listed objects start with it). */
  origin: string;
  username: string;
  /** Host name or address, without IPv6 brackets. */
  host: string;
  port: number;
  /** The path as written after the host: absolute, or `/~/…` under the login's starting folder. */
  written: string;
}

const FORM = 'write sftp://user@host[:port]/absolute/path, or sftp://user@host/~/path under the login folder';
const URL_RE = /^(sftp:\/\/(?:([^@/:[\]]+)@)?(\[[0-9a-f:.]+\]|[^@/:[\]]+)(?::(\d{1,5}))?)(\/.*)$/is;

/**
 * Parse `sftp://[user@]host[:port]/path`. The path is taken literally (no percent-decoding); it is
 * absolute, except that a leading `/~/` means the SFTP server's starting folder (the login's home
 * on OpenSSH). Without `user@`, the local user name is used. A password in the URL is refused.
 */
export function parseSftpUrl(url: string): SftpLocation {
  // A password must not be echoed back, not even in the message that refuses it.
  const withPassword = /^sftp:\/\/[^/@]*:[^/@]*@/is.exec(url);
  if (withPassword) {
    const shown = url.replace(/^(sftp:\/\/[^/@:]*):[^/@]*@/is, '$1:***@');
    throw new DbflowError(
      `"${shown}" holds a password; dbflow logs in to SFTP servers with keys only: remove it and set DBFLOW_SFTP_KEY (or use ssh-agent).`,
    );
  }
  const m = URL_RE.exec(url);
  const port = Number(m?.[4] ?? 22);
  if (!m || m[5]!.includes('\0') || !(port >= 1 && port <= 65535)) {
    throw new DbflowError(`"${url}" is not an SFTP storage URL; ${FORM}.`);
  }
  return {
    origin: m[1]!,
    username: m[2] ?? os.userInfo().username,
    host: m[3]!.replace(/^\[(.*)\]$/, '$1').toLowerCase(),
    port,
    written: m[5]!,
  };
}

/** Parse the URL of one object: it must name a file, not a folder. */
export function parseObjectUrl(url: string): SftpLocation {
  const loc = parseSftpUrl(url);
  if (loc.written.endsWith('/') || ['.', '..', '~', ''].includes(path.posix.basename(loc.written))) {
    throw new DbflowError(`"${url}" names a folder, not an object; add a file name, e.g. ${url.replace(/\/*$/, '')}/backup.dump.`);
  }
  return loc;
}

/** The remote path of a written path, given the server's starting folder for `/~/…`. */
export function remotePath(written: string, home: () => Promise<string>): Promise<string> | string {
  if (written !== '/~' && !written.startsWith('/~/')) return written;
  return home().then((h) => `${h.replace(/\/+$/, '')}${written.slice(2)}`);
}

/** `user@host:port`, for messages. */
export function describeServer(loc: SftpLocation): string {
  return `${loc.username}@${loc.host.includes(':') ? `[${loc.host}]` : loc.host}:${loc.port}`;
}
