// A pass-through that counts bytes and computes sha256 on a stream edge.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { EdgeStats } from '../plugins/types.js';

/** Counts and hashes what flows through; `stats` resolves when the stream has ended. */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private resolveStats!: (s: EdgeStats) => void;
  readonly stats: Promise<EdgeStats>;

  constructor(private readonly onBytes?: (bytes: number) => void) {
    super();
    this.stats = new Promise((resolve) => (this.resolveStats = resolve));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.onBytes?.(this.bytes);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.resolveStats({ bytes: this.bytes, sha256: this.hash.digest('hex') });
    done();
  }
}
