// Decryption through openpgp.js and web streams: armored input, and every message the native reader does not handle.
import { TextDecoderStream, type ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Duplex } from 'node:stream';
import type { PrivateKey, SessionKey } from 'openpgp';
import type { ArtifactLayer } from '../../src/plugin-api.js';
import { decryptError } from './decrypt-error.js';
import { openpgp } from './openpgp-lib.js';
import { decryptConfig } from './pgp-settings.js';
import { webDuplex } from './web-duplex.js';

/** What opens a message: passphrases and/or an unlocked private key, or its session key once known. */
export interface Unlock {
  passwords?: string[];
  decryptionKeys?: PrivateKey;
  sessionKeys?: SessionKey;
}

// A duplex that decrypts a whole message (armored or binary) with openpgp.js; failures error it as decryptError.
export function legacyDecoder(unlock: Unlock, layer: ArtifactLayer, armored: boolean): Duplex {
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
}
