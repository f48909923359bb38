// A queue of buffers taken from by byte count, without copying.

/** Buffers in order; `take` hands out exactly n bytes as slices of them. */
export class ByteQueue {
  private parts: Buffer[] = [];
  private head = 0;
  /** Bytes held. */
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.length += chunk.length;
  }

  /** Hands the first `n` bytes to `use`, as one or more slices. */
  take(n: number, use: (piece: Buffer) => void): void {
    if (n > this.length) throw new Error(`byte queue: ${n} bytes asked, ${this.length} held`);
    this.length -= n;
    while (n > 0) {
      const part = this.parts[this.head]!;
      if (part.length <= n) {
        use(part);
        n -= part.length;
        this.parts[this.head++] = EMPTY;
      } else {
        use(part.subarray(0, n));
        this.parts[this.head] = part.subarray(n);
        n = 0;
      }
    }
    if (this.head > 64) {
      this.parts = this.parts.slice(this.head);
      this.head = 0;
    }
  }

  /** Copies the first `n` bytes into `target` at `at`; returns the offset after them. */
  copyTo(n: number, target: Buffer, at: number): number {
    this.take(n, (piece) => {
      piece.copy(target, at);
      at += piece.length;
    });
    return at;
  }
}

const EMPTY = Buffer.alloc(0);
