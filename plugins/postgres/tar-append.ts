// A tar stream passed on without its end-of-archive marker, so that more members can follow it in the same archive.
import { createReadStream, statSync } from 'node:fs';
import { Transform, type PassThrough, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DbflowError } from '../../src/plugin-api.js';

const BLOCK = 512;

/**
 * Passes a ustar/pax/GNU tar through, member by member (a header, then its data rounded up to 512-byte
 * blocks), and stops at the first all-zero header: the end-of-archive marker and whatever follows it are
 * dropped. `ended` resolves once the marker was seen; an archive cut short fails the stream.
 */
export class TarBody extends Transform {
  #pending = Buffer.alloc(0);
  /** Bytes of the current member's data (with padding) still to pass on. */
  #data = 0;
  #ended = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    while (buf.length && !this.#ended) {
      if (this.#data > 0) {
        const n = Math.min(this.#data, buf.length);
        this.push(buf.subarray(0, n));
        this.#data -= n;
        buf = buf.subarray(n);
        continue;
      }
      if (buf.length < BLOCK) {
        this.#pending = Buffer.from(buf);
        break;
      }
      const header = buf.subarray(0, BLOCK);
      if (header.every((b) => b === 0)) {
        this.#ended = true;
        break;
      }
      const size = memberSize(header);
      this.push(header);
      this.#data = Math.ceil(size / BLOCK) * BLOCK;
      buf = buf.subarray(BLOCK);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (!this.#ended) done(new DbflowError('the base backup is not a complete tar archive (it ends without its end-of-archive marker).'));
    else done();
  }
}

// The size field of a tar header: octal text, or GNU base-256 for large sizes.
function memberSize(header: Buffer): number {
  const field = header.subarray(124, 136);
  if (field[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('ascii').replace(/\0.*$/s, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new DbflowError(`the base backup is not a tar archive (a member header has size "${text}").`);
  return text ? parseInt(text, 8) : 0;
}

/** A ustar header for a regular file `name` (at most 100 bytes) of `size` bytes, mode 0600. */
export function fileHeader(name: string, size: number, mtime: Date): Buffer {
  const h = Buffer.alloc(BLOCK);
  if (Buffer.byteLength(name) > 100) throw new DbflowError(`internal: tar member name "${name}" is too long.`);
  h.write(name, 0, 'utf8');
  const octal = (n: number, width: number): string => n.toString(8).padStart(width - 1, '0') + '\0';
  h.write(octal(0o600, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtime.getTime() / 1000), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Writes `files` (name in the archive → path on disk) as tar members, then the end-of-archive marker, to `out`. */
export async function writeMembers(out: PassThrough, files: readonly { name: string; path: string }[]): Promise<void> {
  const write = (b: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      out.write(b, (err) => (err ? reject(err) : resolve()));
    });
  for (const f of files) {
    const { size, mtime } = statSync(f.path);
    await write(fileHeader(f.name, size, mtime));
    await pipeline(createReadStream(f.path), out, { end: false });
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await write(Buffer.alloc(pad));
  }
  await write(Buffer.alloc(2 * BLOCK));
}

/** Passes `body` (through a TarBody) into `out` without ending it. */
export async function passBody(tar: Readable, out: PassThrough): Promise<void> {
  await pipeline(tar, new TarBody(), out, { end: false });
}
