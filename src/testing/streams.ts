// Byte streams for the conformance suites: random data made as it is read, digests, and whole reads.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/** A stream of random bytes and, once it has ended, the sha256 of what it produced. */
export interface RandomStream {
  stream: Readable;
  sha256: Promise<string>;
}

/** Chunk sizes a producer hands over: uneven, as a real encoder's are. */
const SIZES = [1, 7, 4096, 65_536, 100_003, 262_144];

/** `bytes` random bytes in uneven chunks, made as they are read (the test holds no copy). */
export function randomStream(bytes: number): RandomStream {
  const hash = createHash('sha256');
  let sent = 0;
  let turn = 0;
  let resolve!: (digest: string) => void;
  const sha256 = new Promise<string>((r) => (resolve = r));
  const stream = new Readable({
    highWaterMark: 256 * 1024,
    read() {
      if (sent >= bytes) {
        resolve(hash.digest('hex'));
        this.push(null);
        return;
      }
      const piece = randomBytes(Math.min(SIZES[turn++ % SIZES.length]!, bytes - sent));
      sent += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
  return { stream, sha256 };
}

/** `data` cut into uneven chunks. */
export function chunksOf(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = SIZES[i % SIZES.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The sha256 (hex) and byte count of everything a stream produces. */
export async function digest(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buf.length;
    hash.update(buf);
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Every byte of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(parts);
}
