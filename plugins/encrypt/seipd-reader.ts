// A SEIPD v1 packet decrypted natively: its literal packet's data streams out, its MDC is checked at the end.
import { createHash } from 'node:crypto';
import { alignedBuffer, CFB_SLICE, OpenpgpCfb } from './cfb.js';
import { MODIFIED, TRUNCATED } from './decrypt-error.js';
import { readHeader, readLength, TAG, type PacketHeader } from './packet-header.js';

/** Thrown before any output when the packet holds something else than one literal packet (e.g. a compressed one). */
export class NotLiteral extends Error {}

/** Thrown when the quick check fails: the key does not fit (or the first bytes are damaged). */
export class QuickCheckFailed extends Error {}

type Inner = 'prefix' | 'header' | 'fields' | 'data' | 'length' | 'mdc' | 'done';

/**
 * Fed the SEIPD packet from its first length on (the tag byte excluded), it strips the packet's
 * framing, decrypts, checks the prefix, strips the literal packet's framing and header fields and
 * hands the data to `emit` (slices of buffers it owns). `end()` throws when the packet is
 * incomplete or its MDC does not match.
 */
export class SeipdReader {
  private readonly cfb: OpenpgpCfb;
  private readonly hash = createHash('sha1');
  /** True once the first inner packet is known to be a literal packet: from then on, output flows. */
  committed = false;

  // Outer framing.
  private outerLeft = 0;
  private outerLast = false;
  private readonly outerHead: number[] = [];
  private versionSeen = false;
  /** Ciphertext gathered for the next native call; reused. */
  private readonly scratch = alignedBuffer(CFB_SLICE);
  private filled = 0;

  // Inner parsing.
  private inner: Inner = 'prefix';
  private readonly small: number[] = [];
  private innerLeft = 0;
  private innerPartial = false;
  private skip = 0;
  private hashing = true;

  constructor(
    algorithm: string,
    key: Uint8Array,
    private readonly emit: (data: Buffer) => void,
  ) {
    this.cfb = new OpenpgpCfb(algorithm, key, 'decrypt');
  }

  /** Bytes of the packet, in order. */
  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.outerLeft === 0) {
        if (this.outerLast) throw new Error('unexpected data after the encrypted packet');
        const length = this.collect(this.outerHead, chunk, at, readLength);
        at += length.used;
        if (!length.value) continue;
        this.outerLeft = length.value.length;
        this.outerLast = length.value.kind !== 'partial';
        continue;
      }
      let n = Math.min(this.outerLeft, chunk.length - at);
      this.outerLeft -= n;
      if (!this.versionSeen) {
        this.versionSeen = true; // checked to be 1 by the caller
        at++;
        n--;
      }
      if (n > 0) this.ciphertext(chunk, at, at + n);
      at += n;
    }
  }

  /** The end of the input: throws when the packet is incomplete or modified. */
  end(): void {
    if (!this.outerLast || this.outerLeft > 0 || this.outerHead.length > 0) throw new Error(TRUNCATED);
    const whole = this.filled - (this.filled % 16);
    this.parse(this.cfb.blocks(this.scratch.subarray(0, whole)));
    this.parse(this.cfb.tail(this.scratch.subarray(whole, this.filled)));
    this.filled = 0;
    if (this.inner !== 'done') throw new Error(TRUNCATED);
  }

  // Ciphertext, gathered and decrypted a slice at a time.
  private ciphertext(chunk: Buffer, from: number, to: number): void {
    while (from < to) {
      const n = Math.min(CFB_SLICE - this.filled, to - from);
      this.filled += chunk.copy(this.scratch, this.filled, from, from + n);
      from += n;
      if (this.filled === CFB_SLICE) {
        this.parse(this.cfb.blocks(this.scratch));
        this.filled = 0;
      }
    }
  }

  // The plaintext: prefix, literal packet, MDC packet.
  private parse(plain: Buffer): void {
    const hashing = this.hashing;
    let hashEnd = plain.length;
    let at = 0;
    while (at < plain.length) {
      switch (this.inner) {
        case 'prefix': {
          while (this.small.length < 18 && at < plain.length) this.small.push(plain[at++]!);
          if (this.small.length < 18) break;
          const s = this.small;
          if (s[14] !== s[16] || s[15] !== s[17]) throw new QuickCheckFailed('the quick check of the session key failed');
          s.length = 0;
          this.inner = 'header';
          break;
        }
        case 'header': {
          const header = this.collect(this.small, plain, at, readHeader);
          at += header.used;
          if (header.value) this.literalHeader(header.value);
          break;
        }
        case 'fields': {
          // Format, file name length, file name, date: 6 bytes and the name, inside the first chunk.
          if (this.skip === 0) {
            while (this.small.length < 2 && at < plain.length) this.small.push(plain[at++]!);
            if (this.small.length < 2) break;
            this.skip = this.small[1]! + 4;
            this.innerLeft -= 2;
            this.small.length = 0;
          }
          const n = Math.min(this.skip, plain.length - at);
          at += n;
          this.skip -= n;
          this.innerLeft -= n;
          if (this.skip > 0) break;
          if (this.innerLeft < 0) throw new Error('the literal packet is shorter than its header');
          this.skip = 0;
          this.inner = 'data';
          break;
        }
        case 'data': {
          const n = Math.min(this.innerLeft, plain.length - at);
          if (n > 0) this.emit(plain.subarray(at, at + n));
          at += n;
          this.innerLeft -= n;
          if (this.innerLeft === 0) this.inner = this.innerPartial ? 'length' : 'mdc';
          break;
        }
        case 'length': {
          const length = this.collect(this.small, plain, at, readLength);
          at += length.used;
          if (!length.value) break;
          this.innerLeft = length.value.length;
          this.innerPartial = length.value.kind === 'partial';
          this.inner = 'data';
          break;
        }
        case 'mdc': {
          while (this.small.length < 22 && at < plain.length) {
            if (this.small.length === 2) {
              if (this.small[0] !== 0xd3 || this.small[1] !== 0x14) throw new Error(MODIFIED);
              if (this.hashing) hashEnd = at;
              this.hashing = false;
            }
            this.small.push(plain[at++]!);
          }
          if (this.small.length === 22) this.checkMdc(hashing ? plain.subarray(0, hashEnd) : undefined);
          break;
        }
        case 'done':
          throw new Error('unexpected data after the integrity check');
      }
    }
    if (hashing && this.inner !== 'done') this.hash.update(plain.subarray(0, hashEnd));
  }

  private literalHeader(header: PacketHeader): void {
    if (!this.committed) {
      if (header.tag !== TAG.literal || header.kind === 'indeterminate') throw new NotLiteral(`packet ${header.tag} in the encrypted data`);
      this.committed = true;
    } else throw new Error(`unexpected packet ${header.tag} in the encrypted data`);
    this.innerLeft = header.length;
    this.innerPartial = header.kind === 'partial';
    if (this.innerPartial && header.length < 512) throw new Error('the first partial chunk is under 512 bytes');
    this.inner = 'fields';
  }

  private checkMdc(tail: Buffer | undefined): void {
    if (tail) this.hash.update(tail);
    const digest = this.hash.digest();
    if (!digest.equals(Buffer.from(this.small.slice(2)))) throw new Error(MODIFIED);
    this.inner = 'done';
  }

  // Gathers a header's bytes (a few, so one at a time) until `read` can decode it.
  private collect<T>(
    into: number[],
    from: Buffer,
    at: number,
    read: (buf: Uint8Array, at: number) => T | undefined,
  ): { used: number; value?: T } {
    let used = 0;
    for (;;) {
      const value = read(Uint8Array.from(into), 0);
      if (value !== undefined) {
        into.length = 0;
        return { used, value };
      }
      if (at + used >= from.length) return { used };
      if (into.length >= 6) throw new Error('a malformed packet header');
      into.push(from[at + used]!);
      used++;
    }
  }
}
