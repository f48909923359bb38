// A pass-through that counts bytes, and computes sha256 where the edge's hash is used, on a stream edge.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { EdgeStats } from '../plugins/types.js';

/** Counts (and with `hashed`, hashes) what flows through; `stats` resolves when the stream has ended. */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash: Hash | undefined;
  private resolveStats!: (s: EdgeStats) => void;
  readonly stats: Promise<EdgeStats>;

  constructor(
    private readonly onBytes?: (bytes: number) => void,
    hashed = true,
  ) {
    super();
    if (hashed) this.hash = createHash('sha256');
    this.stats = new Promise((resolve) => (this.resolveStats = resolve));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    this.onBytes?.(this.bytes);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.resolveStats({ bytes: this.bytes, ...(this.hash && { sha256: this.hash.digest('hex') }) });
    done();
  }
}
