// A binary OpenPGP message as a stream: key packets from openpgp.js first, then the natively written SEIPD packet.
import { Transform, type TransformCallback } from 'node:stream';
import { SeipdWriter } from './seipd-writer.js';

/** Ciphertext held while the key packets are still being made; past it, input waits. */
const EARLY_LIMIT = 8 * 1024 * 1024;

/**
 * Encrypts what is written to it with `sessionKey`. The data is encrypted as soon as it arrives,
 * while `keyPackets` (the session key encrypted to passphrases or public keys, which may take
 * a key derivation) are still being made; the output starts with them once they are.
 * A rejected `keyPackets` errors the stream with its reason.
 */
export class EncryptStream extends Transform {
  private readonly writer: SeipdWriter;
  /** Ciphertext made before the key packets were ready. */
  private early: Buffer[] | undefined = [];
  private earlyBytes = 0;
  /** A callback that waits for the key packets (a transform past EARLY_LIMIT, or the flush). */
  private waiting: TransformCallback | undefined;

  constructor(keyPackets: Promise<Uint8Array>, sessionKey: Uint8Array, highWaterMark: number) {
    super({ readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
    this.writer = new SeipdWriter(sessionKey, (bytes) => this.out(bytes));
    keyPackets.then(
      (packets) => {
        if (this.destroyed) return;
        const early = this.early!;
        this.early = undefined;
        this.push(Buffer.from(packets.buffer, packets.byteOffset, packets.length));
        for (const bytes of early) this.push(bytes);
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting?.();
      },
      (err: unknown) => this.destroy(err as Error),
    );
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.writer.write(chunk);
    if (this.early && this.earlyBytes > EARLY_LIMIT) this.waiting = done;
    else done();
  }

  override _flush(done: TransformCallback): void {
    this.writer.end();
    if (this.early) this.waiting = done;
    else done();
  }

  private out(bytes: Buffer): void {
    if (!this.early) {
      this.push(bytes);
      return;
    }
    this.early.push(bytes);
    this.earlyBytes += bytes.length;
  }
}
