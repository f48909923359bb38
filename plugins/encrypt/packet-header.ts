// OpenPGP packet headers and body lengths (RFC 4880 §4.2): written in the new format, read in both.

/** Packet tags this plugin writes or reads natively. */
export const TAG = { pkesk: 1, skesk: 3, compressed: 8, literal: 11, seipd: 18, mdc: 19 } as const;

/** A body length: a definite one, a partial one (more chunks follow), or "until the end" (old format only). */
export interface BodyLength {
  length: number;
  kind: 'definite' | 'partial' | 'indeterminate';
  /** Bytes the length took. */
  size: number;
}

/** A packet header: the tag and the length of the body (or of its first chunk). */
export interface PacketHeader extends BodyLength {
  tag: number;
  /** Bytes the whole header took (tag byte included). */
  size: number;
}

/** The first byte of a new-format header. */
export function tagByte(tag: number): number {
  return 0xc0 | tag;
}

/** A definite new-format body length. */
export function definiteLength(length: number): Buffer {
  if (length < 192) return Buffer.from([length]);
  if (length < 8384) return Buffer.from([((length - 192) >> 8) + 192, (length - 192) & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xff;
  b.writeUInt32BE(length, 1);
  return b;
}

/** The one-byte partial body length of a chunk of 2^log2 bytes. */
export function partialLength(log2: number): number {
  return 0xe0 | log2;
}

/** The new-format body length at `at`, or undefined when `buf` ends first. */
export function readLength(buf: Uint8Array, at: number): BodyLength | undefined {
  if (at >= buf.length) return undefined;
  const o = buf[at]!;
  if (o < 192) return { length: o, kind: 'definite', size: 1 };
  if (o < 224) {
    if (at + 1 >= buf.length) return undefined;
    return { length: ((o - 192) << 8) + buf[at + 1]! + 192, kind: 'definite', size: 2 };
  }
  if (o < 255) return { length: 1 << (o & 0x1f), kind: 'partial', size: 1 };
  if (at + 4 >= buf.length) return undefined;
  return { length: readUint32(buf, at + 1), kind: 'definite', size: 5 };
}

/** The packet header at `at` (old or new format), undefined when `buf` ends first; throws when it is not a header. */
export function readHeader(buf: Uint8Array, at: number): PacketHeader | undefined {
  if (at >= buf.length) return undefined;
  const b = buf[at]!;
  if ((b & 0x80) === 0) throw new Error(`not an OpenPGP packet header (byte 0x${b.toString(16).padStart(2, '0')})`);
  if (b & 0x40) {
    const length = readLength(buf, at + 1);
    return length && { ...length, tag: b & 0x3f, size: length.size + 1 };
  }
  const tag = (b >> 2) & 0x0f;
  const type = b & 3;
  if (type === 3) return { tag, length: 0, kind: 'indeterminate', size: 1 };
  const n = 1 << type;
  if (at + n >= buf.length) return undefined;
  let length = 0;
  for (let i = 1; i <= n; i++) length = length * 256 + buf[at + i]!;
  return { tag, length, kind: 'definite', size: n + 1 };
}

function readUint32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) >>> 0) + (buf[at + 1]! << 16) + (buf[at + 2]! << 8) + buf[at + 3]!;
}
