// The `openpgp` codec: decrypts an encrypt-step layer with a passphrase or a private key, streaming.
import type { PrivateKey } from 'openpgp';
import { openpgp } from './openpgp-lib.js';
import { DbflowError, KeyError, type ArtifactLayer, type Codec, type DecodeKeys, type DecodeOptions } from '../../src/plugin-api.js';
import { firstLine } from './first-line.js';
import { legacyDecoder, type Unlock } from './legacy-decoder.js';
import { NativeDecoder } from './native-decoder.js';

// The reverse of the encrypt step; wrong keys, tampering and truncation error the stream.
export const openpgpCodec: Codec = {
  name: 'openpgp',
  async decode({ keys, layer }: DecodeOptions) {
    const unlock = await unlockWith(keys, layer);
    return layer.armor === true ? legacyDecoder(unlock, layer, true) : new NativeDecoder(unlock, layer);
  },
};

// The passphrase and/or the unlocked private key; a missing or unusable key is a clear error now.
async function unlockWith(keys: DecodeKeys, layer: ArtifactLayer): Promise<Unlock> {
  const { passphrase, privateKey } = keys;
  if (privateKey === undefined) {
    if (passphrase === undefined || layer.mode === 'public-key')
      throw new KeyError(missingKey(layer), layer.mode === 'public-key' ? 'private_key' : 'passphrase', 'missing');
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
    throw new KeyError(
      `openpgp: the private key ${key.getFingerprint().toUpperCase()} is protected by a passphrase; pass it as "passphrase" too.`,
      'passphrase',
      'missing',
    );
  }
  try {
    return { decryptionKeys: await (await openpgp()).decryptKey({ privateKey: key, passphrase }) };
  } catch {
    throw new KeyError(
      `openpgp: wrong passphrase for the private key ${key.getFingerprint().toUpperCase()}; check the "passphrase" secret.`,
      'passphrase',
      'wrong',
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
