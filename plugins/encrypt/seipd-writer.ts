// The bulk of an encrypted message, written natively: a SEIPD v1 packet (AES-256, MDC) around a literal packet.
import { createHash, randomBytes } from 'node:crypto';
import { ByteQueue } from './byte-queue.js';
import { alignedBuffer, CFB_SLICE, OpenpgpCfb } from './cfb.js';
import { definiteLength, partialLength, TAG, tagByte } from './packet-header.js';

/** Both packets stream in partial chunks of 2^CHUNK_LOG2 bytes (1 MiB); the last chunk has a definite length. */
const CHUNK_LOG2 = 20;
const CHUNK = 1 << CHUNK_LOG2;

/** The MDC packet's header: tag 19, length 20 (the SHA-1 that follows). */
const MDC_HEADER = Buffer.from([tagByte(TAG.mdc), 20]);

// Layout (RFC 4880 §5.9, §5.13, §5.14): SEIPD = version 1 ‖ CFB(prefix ‖ literal packet ‖ MDC packet),
// prefix = 16 random bytes ‖ their last two, MDC = 0xD3 0x14 ‖ SHA-1(prefix ‖ literal packet ‖ 0xD3 0x14).
// Each packet is framed in 1 MiB partial chunks as its bytes arrive, so memory stays flat.

/** Encrypts written bytes into a SEIPD packet; `emit` receives the packet's bytes in order. */
export class SeipdWriter {
  private readonly cfb: OpenpgpCfb;
  private readonly hash = createHash('sha1');
  /** Literal packet body not framed yet (its 6 header fields, then the data). */
  private readonly literal = new ByteQueue();
  /** Plaintext gathered for the next native call; reused. */
  private readonly scratch = alignedBuffer(CFB_SLICE);
  private filled = 0;
  /** SEIPD body not framed yet (the version byte, then ciphertext). */
  private readonly body = new ByteQueue();
  private literalStarted = false;
  private seipdStarted = false;
  private ended = false;

  constructor(
    sessionKey: Uint8Array,
    private readonly emit: (bytes: Buffer) => void,
    date = new Date(),
  ) {
    this.cfb = new OpenpgpCfb('aes256', sessionKey, 'encrypt');
    this.body.push(Buffer.from([1]));
    const prefix = randomBytes(18);
    prefix[16] = prefix[14]!;
    prefix[17] = prefix[15]!;
    this.plain(prefix);
    const fields = Buffer.alloc(6); // format 'b', an empty file name, the date
    fields[0] = 0x62;
    fields.writeUInt32BE(Math.floor(date.getTime() / 1000), 2);
    this.literal.push(fields);
  }

  /** Encrypts `data` (held until its chunk is complete, not copied: do not change it). */
  write(data: Buffer): void {
    if (this.ended) throw new Error('seipd writer: write after end');
    this.literal.push(data);
    while (this.literal.length > CHUNK) this.literalChunk(CHUNK, Buffer.from([partialLength(CHUNK_LOG2)]));
  }

  /** Writes the last chunk, the MDC and the end of the packet. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.literalChunk(this.literal.length, definiteLength(this.literal.length));
    this.plain(MDC_HEADER);
    this.plain(this.hash.digest(), false);
    const whole = this.filled - (this.filled % 16);
    this.ciphertext(this.cfb.blocks(this.scratch.subarray(0, whole)));
    this.ciphertext(this.cfb.tail(this.scratch.subarray(whole, this.filled)));
    this.bodyChunk(this.body.length, definiteLength(this.body.length));
  }

  // One chunk of the literal packet: its length (after the packet's tag, the first time), then its bytes.
  private literalChunk(size: number, length: Buffer): void {
    this.plain(this.literalStarted ? length : Buffer.concat([Buffer.from([tagByte(TAG.literal)]), length]));
    this.literalStarted = true;
    this.literal.take(size, (piece) => this.plain(piece));
  }

  // Plaintext of the SEIPD body, in order: hashed (but the MDC's own hash), and encrypted a slice at a time.
  private plain(bytes: Buffer, hashed = true): void {
    if (hashed) this.hash.update(bytes);
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(CFB_SLICE - this.filled, bytes.length - at);
      this.filled += bytes.copy(this.scratch, this.filled, at, at + n);
      at += n;
      if (this.filled === CFB_SLICE) {
        this.ciphertext(this.cfb.blocks(this.scratch));
        this.filled = 0;
      }
    }
  }

  private ciphertext(bytes: Buffer): void {
    this.body.push(bytes);
    while (this.body.length > CHUNK) this.bodyChunk(CHUNK, Buffer.from([partialLength(CHUNK_LOG2)]));
  }

  // One chunk of the SEIPD packet: its length (after the packet's tag, the first time), then its bytes.
  private bodyChunk(size: number, length: Buffer): void {
    this.emit(this.seipdStarted ? length : Buffer.concat([Buffer.from([tagByte(TAG.seipd)]), length]));
    this.seipdStarted = true;
    this.body.take(size, this.emit);
  }
}
