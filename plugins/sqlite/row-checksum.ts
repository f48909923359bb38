// The canonical encoding of a row and its 64-bit hash, the summands of a table checksum.
import { hash } from 'node:crypto';

const TAG_NULL = 0;
const TAG_INTEGER = 1;
const TAG_REAL = 2;
const TAG_TEXT = 3;
const TAG_BLOB = 4;

/**
 * Encodes rows as: per column in declared order, one tag byte, then
 * NULL: nothing; INTEGER: 8-byte big-endian two's complement; REAL: 8-byte big-endian IEEE 754;
 * TEXT: 4-byte big-endian length + UTF-8 bytes; BLOB: 4-byte big-endian length + bytes.
 */
export class RowEncoder {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private len = 0;

  /** The first 8 bytes of sha256(encoding of the row), as [high, low] 32-bit halves. */
  hashRow(row: readonly unknown[]): [number, number] {
    this.len = 0;
    for (const value of row) this.value(value);
    const digest = hash('sha256', this.buf.subarray(0, this.len), 'buffer') as unknown as Buffer;
    return [digest.readUInt32BE(0), digest.readUInt32BE(4)];
  }

  private value(v: unknown): void {
    if (v === null || v === undefined) {
      this.reserve(1);
      this.buf[this.len++] = TAG_NULL;
    } else if (typeof v === 'bigint') {
      this.reserve(9);
      this.buf[this.len++] = TAG_INTEGER;
      this.buf.writeBigInt64BE(v, this.len);
      this.len += 8;
    } else if (typeof v === 'number') {
      this.reserve(9);
      this.buf[this.len++] = TAG_REAL;
      this.buf.writeDoubleBE(v, this.len);
      this.len += 8;
    } else if (typeof v === 'string') {
      const n = Buffer.byteLength(v, 'utf8');
      this.reserve(5 + n);
      this.buf[this.len++] = TAG_TEXT;
      this.buf.writeUInt32BE(n, this.len);
      this.len += 4 + this.buf.write(v, this.len + 4, 'utf8');
    } else if (Buffer.isBuffer(v)) {
      this.reserve(5 + v.length);
      this.buf[this.len++] = TAG_BLOB;
      this.buf.writeUInt32BE(v.length, this.len);
      this.len += 4 + v.copy(this.buf, this.len + 4);
    } else {
      throw new TypeError(`unexpected SQLite value of type ${typeof v}`);
    }
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

/** A sum modulo 2^64 of 64-bit row hashes: independent of row order, and counts duplicate rows. */
export class Sum64 {
  private hi = 0;
  private lo = 0;

  add([hi, lo]: [number, number]): void {
    this.lo += lo;
    if (this.lo >= 0x1_0000_0000) {
      this.lo -= 0x1_0000_0000;
      this.hi += 1;
    }
    this.hi = (this.hi + hi) % 0x1_0000_0000;
  }

  /** 16 lowercase hex digits. */
  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}
