// How dbflow logs in to an SFTP server: storage.sftp.key or DBFLOW_SFTP_KEY, else ssh-agent, else the default keys in ~/.ssh.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentAuthMethod, ParsedKey, PublicKeyAuthMethod } from 'ssh2';
import { DbflowError } from '../../src/plugin-api.js';
import type { SshLibrary } from './library.js';

/** The authentication methods to try in order, and what they are, in words, for an error message. */
export interface Login {
  methods: (PublicKeyAuthMethod | AgentAuthMethod)[];
  tried: string;
}

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** The login of `username`, from the settings and the environment; a named key that cannot be used is an error here, before connecting. */
export async function loginFor(
  username: string,
  parseKey: SshLibrary['parseKey'],
  config: { key?: string },
  env = process.env,
): Promise<Login> {
  const passphrase = env.DBFLOW_SFTP_KEY_PASSPHRASE || undefined;
  const named = config.key ?? env.DBFLOW_SFTP_KEY;
  const by = config.key !== undefined ? 'storage.sftp.key' : 'DBFLOW_SFTP_KEY';
  if (named) {
    const data = await readFile(named).catch((err: NodeJS.ErrnoException) => {
      throw new DbflowError(
        `cannot read the SSH key "${named}" named by ${by} (${err.code ?? err.message}); set it to the path of a private key file.`,
      );
    });
    const key = parsePrivateKey(data, passphrase, parseKey);
    if (typeof key === 'string') throw new DbflowError(`the SSH key "${named}" named by ${by} ${key}`);
    return { methods: [{ type: 'publickey', username, key }], tried: `the key ${named} (${by})` };
  }

  const methods: Login['methods'] = [];
  const tried: string[] = [];
  const skipped: string[] = [];
  const agent = env.SSH_AUTH_SOCK;
  if (agent && isSocket(agent)) {
    methods.push({ type: 'agent', username, agent });
    tried.push('the keys of ssh-agent (SSH_AUTH_SOCK)');
  }
  const sshDir = path.join(os.homedir(), '.ssh');
  for (const name of DEFAULT_KEYS) {
    const file = path.join(sshDir, name);
    const data = await readFile(file).catch(() => undefined);
    if (!data) continue;
    const key = parsePrivateKey(data, passphrase, parseKey);
    if (typeof key === 'string') {
      skipped.push(`${file} ${key.replace(/\.$/, '')}`);
      continue;
    }
    methods.push({ type: 'publickey', username, key });
    tried.push(file);
  }
  if (!methods.length) {
    const why = skipped.length ? ` (skipped: ${skipped.join('; ')})` : '';
    throw new DbflowError(
      `no SSH key to log in as "${username}" with${why}: set DBFLOW_SFTP_KEY to a private key file, start ssh-agent with the key added (SSH_AUTH_SOCK), or create ${path.join(sshDir, 'id_ed25519')}.`,
    );
  }
  return { methods, tried: tried.join(', then ') + (skipped.length ? ` (skipped: ${skipped.join('; ')})` : '') };
}

// The parsed private key, or why it cannot be used (a sentence that continues "the key X …"); never quotes the passphrase.
function parsePrivateKey(data: Buffer, passphrase: string | undefined, parseKey: SshLibrary['parseKey']): ParsedKey | string {
  const parsed = parseKey(data, passphrase);
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) return 'is encrypted; set DBFLOW_SFTP_KEY_PASSPHRASE to its passphrase.';
    const hint = passphrase
      ? 'check DBFLOW_SFTP_KEY_PASSPHRASE, or that it is an OpenSSH or PEM private key'
      : 'it must be an OpenSSH or PEM private key';
    return `cannot be used (${parsed.message}); ${hint}.`;
  }
  // OpenSSH's key format holds a list (of one key); the typings do not say so.
  const key: ParsedKey | undefined = Array.isArray(parsed) ? (parsed as ParsedKey[])[0] : parsed;
  if (!key?.isPrivateKey()) return 'is a public key; name the private key file (without .pub).';
  return key;
}

function isSocket(file: string): boolean {
  try {
    return statSync(file).isSocket();
  } catch {
    return false;
  }
}
