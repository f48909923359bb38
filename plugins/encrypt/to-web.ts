// A Node Readable as a web ReadableStream, pulled chunk by chunk (openpgp's API takes web streams).
import type { Readable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';

// Back-pressured by pulls; a cancel destroys the source. (Node 20's Readable.toWeb can throw
// "Controller is already closed" when the web side is cancelled while the source still flows.)
export function toWeb(source: Readable): ReadableStream<Uint8Array> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer, undefined>;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      source.destroy();
      await chunks.return?.();
    },
  });
}
