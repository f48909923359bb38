// Encryption through openpgp.js and web streams: the armored output, and the format every older artifact has.
import { pipeline, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { openpgp } from './openpgp-lib.js';
import { CHUNK_BYTES, encryptConfig, sessionKey, type EncryptKeys } from './pgp-settings.js';
import { rechunk } from './rechunk.js';
import { toWeb } from './to-web.js';

type WebStream = WebReadableStream<Uint8Array | string>;

// The input, in large chunks, through openpgp.js; errors of the input surface on the output.
// Rejects when openpgp.js cannot start (its error as is).
export async function openpgpEncrypt(input: Readable, keys: EncryptKeys, armor: boolean): Promise<Readable> {
  const chunks = rechunk(CHUNK_BYTES);
  pipeline(input, chunks, () => undefined); // errors reach the output through `chunks`
  const plain = toWeb(chunks);
  try {
    const pgp = await openpgp();
    const message = await pgp.createMessage({ binary: plain, format: 'binary' });
    const options = { message, ...keys, sessionKey: sessionKey(), config: encryptConfig(pgp) };
    // openpgp's stream types name a package it does not ship; the value is a web ReadableStream.
    const encrypted = (armor
      ? await pgp.encrypt({ ...options, format: 'armored' })
      : await pgp.encrypt({ ...options, format: 'binary' })) as unknown as WebStream;
    return Readable.fromWeb(encrypted, { highWaterMark: CHUNK_BYTES });
  } catch (err) {
    chunks.destroy();
    throw err;
  }
}
