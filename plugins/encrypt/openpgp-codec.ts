// The `openpgp` codec: decrypts an encrypt-step layer with a passphrase or a private key, streaming.
import { TextDecoderStream, type ReadableStream as WebReadableStream } from 'node:stream/web';
import type { PrivateKey } from 'openpgp';
import { openpgp } from './openpgp-lib.js';
import { DbflowError, IntegrityError, type ArtifactLayer, type Codec, type DecodeKeys } from '../../src/index.js';
import { decryptConfig } from './pgp-settings.js';
import { webDuplex } from './web-duplex.js';
import { firstLine } from './first-line.js';

interface Unlock {
  passwords?: string[];
  decryptionKeys?: PrivateKey;
}

// The reverse of the encrypt step; wrong keys, tampering and truncation error the stream.
export const openpgpCodec: Codec = {
  name: 'openpgp',
  async decode(keys: DecodeKeys, layer: ArtifactLayer) {
    const unlock = await unlockWith(keys, layer);
    const armored = layer.armor === true;
    return webDuplex(
      async (cipher) => {
        const { decrypt, readMessage } = await openpgp();
        const message = armored
          ? await readMessage({ armoredMessage: cipher.pipeThrough<string>(new TextDecoderStream()) })
          : await readMessage({ binaryMessage: cipher });
        // openpgp's stream types name a package it does not ship; the data is a web ReadableStream.
        const result = (await decrypt({ message, ...unlock, format: 'binary', config: decryptConfig })) as unknown as {
          data: WebReadableStream<Uint8Array>;
        };
        return result.data;
      },
      (error) => decryptError(error, layer),
    );
  },
};

// The passphrase and/or the unlocked private key; a missing or unusable key is a clear error now.
async function unlockWith(keys: DecodeKeys, layer: ArtifactLayer): Promise<Unlock> {
  const { passphrase, privateKey } = keys;
  if (privateKey === undefined) {
    if (passphrase === undefined || layer.mode === 'public-key') throw new DbflowError(missingKey(layer));
    return { passwords: [passphrase] };
  }
  let key: PrivateKey;
  try {
    key = await (await openpgp()).readPrivateKey({ armoredKey: privateKey });
  } catch (err) {
    throw new DbflowError(
      `openpgp: the private key is not an armored OpenPGP private key (${firstLine(err)}); export it with "gpg --export-secret-keys --armor <key id>".`,
    );
  }
  if (key.isDecrypted()) return { decryptionKeys: key, ...(passphrase !== undefined && { passwords: [passphrase] }) };
  if (passphrase === undefined) {
    throw new DbflowError(
      `openpgp: the private key ${key.getFingerprint().toUpperCase()} is protected by a passphrase; pass it as "passphrase" too.`,
    );
  }
  try {
    return { decryptionKeys: await (await openpgp()).decryptKey({ privateKey: key, passphrase }) };
  } catch {
    throw new DbflowError(
      `openpgp: wrong passphrase for the private key ${key.getFingerprint().toUpperCase()}; check the "passphrase" secret.`,
    );
  }
}

function missingKey(layer: ArtifactLayer): string {
  if (layer.mode === 'public-key') {
    const fps = Array.isArray(layer.recipients) ? ` (one of ${layer.recipients.join(', ')})` : '';
    return `openpgp: this artifact is encrypted to public keys; pass the recipient's armored private key${fps} as "private_key".`;
  }
  return 'openpgp: this artifact is encrypted with a passphrase; pass it as "passphrase" (e.g. "{{ secrets.passphrase }}").';
}

const WRONG_KEY = /session key|decryption key|no matching|key packet/i;

// openpgp's failures as messages a user can act on; data problems are IntegrityErrors.
function decryptError(error: unknown, layer: ArtifactLayer): Error {
  if (error instanceof DbflowError) return error;
  const reason = firstLine(error);
  if (WRONG_KEY.test(reason)) {
    const fix = layer.mode === 'public-key' ? 'pass the private key of a recipient' : 'check the passphrase secret';
    return new DbflowError(`openpgp: cannot decrypt: wrong passphrase or not encrypted for this key; ${fix}.`, { cause: error });
  }
  if (/modification detected/i.test(reason)) {
    return new IntegrityError(
      'openpgp: integrity check (MDC) failed: the encrypted data was modified or corrupted, or this is the wrong passphrase or key; discard everything read from it.',
      { cause: error },
    );
  }
  return new IntegrityError(
    `openpgp: cannot decrypt (${reason}): the data is corrupt, truncated or not OpenPGP, or this is the wrong passphrase or key.`,
    { cause: error },
  );
}
