// Holds a stream's bytes in a file until someone reads it, so its producer never stalls meanwhile.
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Readable } from 'node:stream';

/**
 * Drains `source` into `file` until `claim()`; the claimed stream replays the file, then goes on
 * with `source` live. A dump started under the barrier keeps its server session reading (a stalled
 * session is cut after net_write_timeout) while the snapshot step is still counting rows.
 */
export class Spool implements DumpOutput {
  private readonly sink;
  private ended = false;
  private failure: Error | undefined;
  private claimed = false;
  private readonly onData = (chunk: Buffer): void => {
    if (!this.sink.write(chunk)) {
      this.source.pause();
      this.sink.once('drain', () => {
        if (!this.claimed) this.source.resume();
      });
    }
  };

  constructor(
    private readonly source: Readable,
    private readonly file: string,
  ) {
    this.sink = createWriteStream(file, { mode: 0o600 });
    this.sink.on('error', (error) => source.destroy(error));
    source.on('end', () => (this.ended = true));
    source.on('error', (error) => (this.failure ??= error));
    source.on('data', this.onData);
  }

  /** The error the source failed with, if it did. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** The whole stream from its first byte; can be had once. */
  async claim(): Promise<Readable> {
    this.claimed = true;
    this.source.off('data', this.onData);
    this.source.pause();
    this.sink.end();
    await once(this.sink, 'close');
    if (this.failure) throw this.failure;
    const { source, file } = this;
    const ended = (): boolean => this.ended;
    async function* replay(): AsyncGenerator<Buffer> {
      for await (const chunk of createReadStream(file)) yield chunk as Buffer;
      if (!ended()) for await (const chunk of source) yield chunk as Buffer;
    }
    const out = Readable.from(replay(), { objectMode: false, highWaterMark: 1 << 20 });
    out.once('close', () => source.destroy());
    return out;
  }

  /** Stops the source and the file (the stream was not wanted). */
  discard(): void {
    this.source.destroy();
    this.sink.destroy();
  }
}

/** A dump's output until the dump step claims it. */
export interface DumpOutput {
  /** The whole stream from its first byte; can be had once. */
  claim(): Promise<Readable>;
  /** Stops the stream (it was not wanted). */
  discard(): void;
}

/**
 * Leaves `source` (a program's stdout) unread, so that the next program can read it directly, and
 * spools it only when nobody claims it within `graceMs` of `hold()`: the program waits on a full pipe
 * meanwhile, for far less than the server's net_write_timeout.
 */
export class HeldOutput implements DumpOutput {
  private spool: Spool | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  private claimed = false;

  constructor(
    private readonly source: Readable,
    private readonly file: string,
    private readonly graceMs: number,
  ) {
    source.on('error', (error) => (this.failure ??= error));
  }

  /** Starts the grace period. */
  hold(): void {
    if (this.claimed || this.spool || this.timer) return;
    this.timer = setTimeout(() => (this.spool = new Spool(this.source, this.file)), this.graceMs);
    this.timer.unref();
  }

  claim(): Promise<Readable> {
    this.claimed = true;
    clearTimeout(this.timer);
    if (this.spool) return this.spool.claim();
    if (this.failure) return Promise.reject(this.failure);
    return Promise.resolve(this.source);
  }

  discard(): void {
    clearTimeout(this.timer);
    if (this.spool) this.spool.discard();
    else this.source.destroy();
  }
}
