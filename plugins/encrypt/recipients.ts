// Recipients of public-key encryption: armored keys or key files, checked to be usable by gpg.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Key, PublicKey } from 'openpgp';
import { openpgp } from './openpgp-lib.js';
import { DbflowError } from '../../src/plugin-api.js';
import { firstLine } from './first-line.js';

/** A recipient's public key and the fingerprint recorded in the manifest. */
export interface Recipient {
  key: PublicKey;
  fingerprint: string;
}

const ARMOR = '-----BEGIN PGP';

// Read every entry (armored text or a path) into public keys that can encrypt.
export async function loadRecipients(
  entries: readonly string[],
  step: string,
  baseDir: string,
  warn: (message: string) => void,
): Promise<Recipient[]> {
  const out: Recipient[] = [];
  for (const [index, entry] of entries.entries()) {
    const where = `step "${step}": recipients[${index}] ${preview(entry)}`;
    for (const key of await readEntry(entry, baseDir, where)) {
      out.push(await checkKey(key, where, warn));
    }
  }
  return out;
}

async function readEntry(entry: string, baseDir: string, where: string): Promise<Key[]> {
  if (entry.includes(ARMOR)) return parse(async () => (await openpgp()).readKeys({ armoredKeys: entry }), where);
  let data: Buffer;
  try {
    data = await readFile(path.resolve(baseDir, entry));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new DbflowError(
      `${where} is neither an armored public key nor a readable key file (${code}); pass the output of "gpg --export --armor <key id>" or a path to it.`,
    );
  }
  const text = data.toString('latin1');
  return text.includes(ARMOR)
    ? parse(async () => (await openpgp()).readKeys({ armoredKeys: text }), where)
    : parse(async () => (await openpgp()).readKeys({ binaryKeys: new Uint8Array(data) }), where);
}

async function parse(read: () => Promise<Key[]>, where: string): Promise<Key[]> {
  try {
    return await read();
  } catch (err) {
    throw new DbflowError(
      `${where} is not a valid OpenPGP public key (${firstLine(err)}); export it with "gpg --export --armor <key id>".`,
    );
  }
}

async function checkKey(key: Key, where: string, warn: (message: string) => void): Promise<Recipient> {
  const fingerprint = key.getFingerprint().toUpperCase();
  const name = `${where}: key ${fingerprint}`;
  if (key.isPrivate()) warn(`${name} is a private key; only its public part is used. Pass the public key instead.`);
  if (key.keyPacket.version !== 4) {
    throw new DbflowError(
      `${name} is an OpenPGP v${key.keyPacket.version} key, which stock gpg 2.x cannot use; use a v4 key (gpg --full-generate-key).`,
    );
  }
  try {
    await key.getEncryptionKey();
  } catch (err) {
    throw new DbflowError(`${name} has no usable encryption subkey (${firstLine(err)}); is it expired or revoked?`);
  }
  return { key: key.toPublic(), fingerprint };
}

function preview(entry: string): string {
  if (entry.includes(ARMOR)) return '(an armored key)';
  return JSON.stringify(entry.length > 80 ? `${entry.slice(0, 77)}...` : entry);
}
