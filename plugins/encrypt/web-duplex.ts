// A Node duplex around an async web-stream transform (openpgp's API takes and returns web streams).
import { Duplex, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CHUNK_BYTES } from './pgp-settings.js';
import { rechunk } from './rechunk.js';
import { toWeb } from './to-web.js';

/** Turns the written bytes (as a web stream) into the bytes to read. */
export type WebTransform = (input: WebReadableStream<Uint8Array>) => Promise<WebReadableStream<Uint8Array>>;

// Writes feed `transform`, reads come from its result, with back-pressure both ways; any failure
// errors the duplex as `mapError(error)`, and destroying the duplex cancels the transform.
export function webDuplex(transform: WebTransform, mapError: (error: unknown) => Error): Duplex {
  const input = rechunk(CHUNK_BYTES);
  let result: Readable | undefined;
  const duplex = new Duplex({
    readableHighWaterMark: CHUNK_BYTES,
    writableHighWaterMark: CHUNK_BYTES,
    write(chunk: Buffer, _encoding, done) {
      if (input.write(chunk)) done();
      else input.once('drain', () => done());
    },
    final(done) {
      input.end();
      done();
    },
    read() {
      result?.resume();
    },
    destroy(error, done) {
      input.destroy();
      result?.destroy();
      done(error);
    },
  });
  const fail = (error: unknown): void => {
    if (!duplex.destroyed) duplex.destroy(mapError(error));
  };
  transform(toWeb(input)).then((web) => {
    if (duplex.destroyed) return void web.cancel().catch(() => undefined);
    result = Readable.fromWeb(web, { highWaterMark: CHUNK_BYTES });
    result.on('data', (chunk: Buffer) => {
      if (!duplex.push(chunk)) result?.pause();
    });
    result.on('end', () => duplex.push(null));
    result.on('error', fail);
  }, fail);
  return duplex;
}
