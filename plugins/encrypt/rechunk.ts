// A transform that gathers small chunks into large ones.
import { Transform, type TransformCallback } from 'node:stream';

// Emit chunks of at least `size` bytes (the last may be smaller); a large chunk passes uncopied.
export function rechunk(size: number): Transform {
  let parts: Buffer[] = [];
  let held = 0;
  return new Transform({
    readableHighWaterMark: size,
    writableHighWaterMark: size,
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      if (held === 0 && chunk.length >= size) return done(null, chunk);
      parts.push(chunk);
      held += chunk.length;
      if (held < size) return done();
      const out = Buffer.concat(parts, held);
      parts = [];
      held = 0;
      done(null, out);
    },
    flush(done: TransformCallback) {
      done(null, held ? Buffer.concat(parts, held) : undefined);
    },
  });
}
