// Atomic writes: stream into a temporary file, sync, then rename it into place.
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DbflowError, type PutOptions, type StoredObject } from '../../src/index.js';
import { partialPath } from './partial-name.js';
import { parseObjectUrl } from './url.js';

/**
 * Writes `body` to the object at `url`. The object appears, whole, only after the body ended;
 * a body that fails or an abort removes the temporary file and rejects.
 */
export async function putObject(url: string, body: Readable, { signal }: PutOptions): Promise<StoredObject> {
  // The body may fail while the folder is made; reading it below reports that error.
  body.on('error', () => undefined);
  const loc = parseObjectUrl(url);
  const abortError = (): Error => (signal.reason instanceof Error ? signal.reason : new DbflowError(`writing "${url}" was aborted.`));
  if (signal.aborted) {
    body.destroy();
    throw abortError();
  }
  await mkdir(path.dirname(loc.file), { recursive: true });
  const temp = partialPath(loc.file);
  const fh = await open(temp, 'wx');
  const onAbort = (): void => void body.destroy(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  let bytes = 0;
  let published = false;
  const flusher = new Flusher(fh);
  try {
    for await (const chunk of body) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      await writeAll(fh, buf);
      bytes += buf.length;
      flusher.wrote(buf.length);
    }
    // An abort that came after the last chunk still counts: the caller gave up on this put.
    if (signal.aborted) throw abortError();
    await flusher.settled();
    await fh.sync();
    await fh.close();
    await rename(temp, loc.file);
    published = true;
    await syncFolder(path.dirname(loc.file));
    return { url, bytes };
  } finally {
    signal.removeEventListener('abort', onAbort);
    await flusher.settled().catch(() => undefined);
    if (!published) {
      await fh.close().catch(() => undefined);
      await rm(temp, { force: true });
    }
  }
}

/** Bytes written between two background flushes. */
const FLUSH_EVERY = 32 * 1024 * 1024;

// Starts writing the file back to disk while the stream still runs (one fdatasync in flight at a time,
// not awaited), so that the final fsync has only the tail left instead of the whole file. Durability
// does not depend on it: the final fsync still runs; a failed background flush fails the put.
class Flusher {
  private pending = 0;
  private inFlight: Promise<void> | undefined;
  private error: unknown;

  constructor(private readonly fh: FileHandle) {}

  wrote(n: number): void {
    if (this.error !== undefined) throw this.error as Error;
    this.pending += n;
    if (this.pending < FLUSH_EVERY || this.inFlight) return;
    this.pending = 0;
    this.inFlight = this.fh.datasync().then(
      () => void (this.inFlight = undefined),
      (err: unknown) => {
        this.error = err;
        this.inFlight = undefined;
      },
    );
  }

  async settled(): Promise<void> {
    await this.inFlight;
    if (this.error !== undefined) throw this.error as Error;
  }
}

// Writes all of `buf`: a write may take fewer bytes than it was given.
async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let at = 0; at < buf.length;) at += (await fh.write(buf, at, buf.length - at)).bytesWritten;
}

// Makes the rename durable; some platforms cannot sync a folder, which is harmless.
async function syncFolder(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // Not supported here.
  } finally {
    await fh.close();
  }
}
