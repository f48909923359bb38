// Which host keys dbflow trusts for a server (DBFLOW_SFTP_KNOWN_HOSTS or ~/.ssh/known_hosts), and what it says when one is refused.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DbflowError } from '../../src/plugin-api.js';
import { fingerprint, type HostKeyVerdict, keysFor, keyType, type KnownKey, knownHostsName } from './known-hosts.js';
import type { SftpLocation } from './url.js';

/** The keys recorded for one server, and where they were looked for. */
export interface HostTrust {
  /** The server's name in known_hosts: `host` or `[host]:port`. */
  name: string;
  keys: KnownKey[];
  /** The files read, and those of them that do not exist. */
  files: string[];
  missing: string[];
  /** The file a new key belongs in. */
  addTo: string;
}

/** Reads the known_hosts files: storage.sftp.known_hosts or DBFLOW_SFTP_KNOWN_HOSTS alone, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. */
export async function hostTrust(loc: SftpLocation, config: { known_hosts?: string }, env = process.env): Promise<HostTrust> {
  const own = config.known_hosts ?? env.DBFLOW_SFTP_KNOWN_HOSTS;
  const user = path.join(os.homedir(), '.ssh', 'known_hosts');
  const files = own ? [own] : [user, '/etc/ssh/ssh_known_hosts'];
  const name = knownHostsName(loc.host, loc.port);
  const keys: KnownKey[] = [];
  const missing: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        missing.push(file);
        continue;
      }
      throw new DbflowError(
        `cannot read the known_hosts file "${file}" (${code ?? String(err)}); dbflow checks SFTP servers' host keys against it.`,
      );
    }
    keys.push(...keysFor(text, file, name));
  }
  return { name, keys, files, missing, addTo: own ?? user };
}

/** The error for a host key that `verdict` refuses, saying how to trust the right key. */
export function hostKeyError(
  trust: HostTrust,
  loc: SftpLocation,
  verdict: Exclude<HostKeyVerdict, { status: 'known' }>,
  presented: Buffer,
): DbflowError {
  const shown = `${keyType(presented)} key ${fingerprint(presented)}`;
  const keyscan = `ssh-keyscan -p ${loc.port} ${shellWord(loc.host)} >> ${shellWord(trust.addTo)}`;
  if (verdict.status === 'revoked') {
    return new DbflowError(
      `the SSH host key of ${trust.name} (${shown}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}; refusing to connect.`,
    );
  }
  if (verdict.status === 'changed') {
    const at = verdict.entries.map((e) => `${e.file}:${e.line}`).join(', ');
    return new DbflowError(
      `the SSH host key of ${trust.name} has changed: the server presented the ${shown}, which does not match ${at}. ` +
        `Someone could be intercepting the connection, or the server's key was replaced. If the change is expected, ` +
        `remove the old key with ssh-keygen -R ${shellWord(trust.name)} -f ${shellWord(verdict.entries[0]!.file)} and add the new one with ${keyscan} (compare its fingerprint with ssh-keygen -lf on the server first).`,
    );
  }
  const where = trust.files.map((f) => (trust.missing.includes(f) ? `${f} (does not exist)` : f)).join(' or ');
  const others = verdict.otherTypes.length ? ` (only ${verdict.otherTypes.join(', ')} keys are recorded for it)` : '';
  return new DbflowError(
    `the SSH host key of ${trust.name} (${shown}) is not in ${where}${others}; dbflow does not connect to unknown servers. ` +
      `If this is the right server, add its key: ${keyscan} (compare the fingerprint with ssh-keygen -lf on the server), or point DBFLOW_SFTP_KNOWN_HOSTS at a known_hosts file that has it.`,
  );
}

// A word as a POSIX shell reads it back unchanged.
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
