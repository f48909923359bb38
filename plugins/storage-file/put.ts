// Atomic writes: stream into a temporary file, sync, then rename it into place.
import { chmod, type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DbflowError, modesOf, objectModes, type ObjectModes, type PutOptions, type StoredObject } from '../../src/plugin-api.js';
import { fileFailure } from './failure.js';
import { partialPath } from './partial-name.js';
import { parseObjectUrl } from './url.js';

/**
 * Writes `body` to the object at `url`. The object appears, whole, only after the body ended;
 * a body that fails or an abort removes the temporary file and rejects. The file and the folders made
 * for it get the modes of the `mode` setting (private by default), or those of the object `like` names.
 * A failing disk (full, read-only, denied) is a DbflowError that names the object and the cause.
 */
export async function putObject(url: string, body: Readable, { signal, settings, like }: PutOptions): Promise<StoredObject> {
  // The body may fail while the folder is made; reading it below reports that error.
  body.on('error', () => undefined);
  const loc = parseObjectUrl(url);
  const abortError = (): Error => (signal.reason instanceof Error ? signal.reason : new DbflowError(`writing "${url}" was aborted.`));
  let modes: ObjectModes;
  try {
    modes = await modesFor(url, settings, like);
  } catch (err) {
    body.destroy();
    throw err;
  }
  if (signal.aborted) {
    body.destroy();
    throw abortError();
  }
  const disk = <T>(p: Promise<T>, action = 'writing'): Promise<T> =>
    p.catch((err: unknown) => {
      throw fileFailure(err, action, url);
    });
  await disk(makeFolders(path.dirname(loc.file), modes.folder), 'creating the folder of').catch((err: unknown) => {
    body.destroy();
    throw err;
  });
  const temp = partialPath(loc.file);
  const fh = await disk(open(temp, 'wx', modes.file)).catch((err: unknown) => {
    body.destroy();
    throw err;
  });
  const onAbort = (): void => void body.destroy(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  let bytes = 0;
  let published = false;
  const flusher = new Flusher(fh);
  try {
    // The process's umask must not take bits from the mode asked for.
    await disk(fh.chmod(modes.file));
    for await (const chunk of body) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      await disk(writeAll(fh, buf));
      bytes += buf.length;
      try {
        flusher.wrote(buf.length);
      } catch (err) {
        throw fileFailure(err, 'writing', url);
      }
    }
    // An abort that came after the last chunk still counts: the caller gave up on this put.
    if (signal.aborted) throw abortError();
    await disk(flusher.settled());
    await disk(fh.sync());
    await disk(fh.close());
    await disk(rename(temp, loc.file));
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

// The modes of this put: the `mode` setting, or for an object that goes with another (`like`), that one's.
async function modesFor(url: string, settings: Record<string, unknown> | undefined, like: string | undefined): Promise<ObjectModes> {
  const asked = objectModes('file', url, settings);
  if (!like || settings?.mode !== undefined) return asked;
  const found = await stat(parseObjectUrl(like).file).catch(() => undefined);
  return found ? modesOf(found.mode) : asked;
}

// Makes `dir` and its missing parents with `mode` (exactly: the umask is undone); existing folders keep theirs. Each
// folder is made alone, so a failure is the disk's own (a recursive mkdir reports ENOENT on a read-only file system).
async function makeFolders(dir: string, mode: number): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    const found = await stat(d).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (found) break;
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // another put made it meanwhile
      throw err;
    }
    await chmod(d, mode);
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
