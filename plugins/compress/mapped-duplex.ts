// A duplex that forwards to another one, replacing its errors and running a hook when destroyed.
import { Duplex } from 'node:stream';

/** What to do with the inner stream's errors and with a destroy from outside. */
export interface MappedDuplexOptions {
  mapError(error: unknown): Error;
  onDestroy?(): void;
}

// Wrap `inner` so that its errors surface as `mapError(error)`, with back-pressure both ways.
export function mappedDuplex(inner: Duplex, options: MappedDuplexOptions): Duplex {
  const outer = new Duplex({
    readableHighWaterMark: inner.readableHighWaterMark,
    writableHighWaterMark: inner.writableHighWaterMark,
    write(chunk: Buffer, _encoding, done) {
      if (inner.write(chunk)) done();
      else inner.once('drain', () => done());
    },
    final(done) {
      inner.end();
      done();
    },
    read() {
      inner.resume();
    },
    destroy(error, done) {
      options.onDestroy?.();
      if (!inner.destroyed) inner.destroy();
      done(error);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    if (!outer.push(chunk)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (error) => outer.destroy(options.mapError(error)));
  return outer;
}
