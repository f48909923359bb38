// A Node duplex around an async web-stream transform (openpgp's API takes and returns web streams).
import { Duplex, PassThrough, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CHUNK_BYTES } from './pgp-settings.js';
import { rechunk } from './rechunk.js';
import { toWeb } from './to-web.js';

/** Turns the written bytes (as a web stream) into the bytes to read. */
export type WebTransform = (input: WebReadableStream<Uint8Array>) => Promise<WebReadableStream<Uint8Array>>;

// Writes go to `transform`'s input, reads come from its result; any failure errors the duplex as `mapError(error)`.
export function webDuplex(transform: WebTransform, mapError: (error: unknown) => Error): Duplex {
  const input = rechunk(CHUNK_BYTES);
  const output = new PassThrough({ highWaterMark: CHUNK_BYTES });
  const duplex = Duplex.from({ writable: input, readable: output });
  let result: Readable | undefined;
  const fail = (error: unknown): void => {
    if (!output.destroyed) output.destroy(mapError(error));
  };
  output.on('close', () => {
    result?.destroy();
    input.destroy();
  });
  transform(toWeb(input)).then((web) => {
    if (output.destroyed) return void web.cancel().catch(() => undefined);
    result = Readable.fromWeb(web, { highWaterMark: CHUNK_BYTES });
    result.on('error', fail);
    result.pipe(output);
  }, fail);
  return duplex;
}
