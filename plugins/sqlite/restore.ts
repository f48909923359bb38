// Restoring a `sqlite3` dump: write the file next to its target, verify it, then move it into place.
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { DbflowError, IntegrityError, type DriverContext, type RestoreOptions } from '../../src/plugin-api.js';
import { SQLITE_FORMAT } from './dump.js';
import { checkFileHeader } from './file-header.js';
import { asDatabaseError, isCorruption } from './open.js';
import { companionFiles, parseSqliteUrl } from './url.js';

/**
 * Restores a dump into the (missing or empty) database file at `url`. The bytes go to a
 * temporary file in the same folder; only a file that passes `PRAGMA integrity_check` is renamed
 * into place, so a failed restore leaves the target as it was.
 */
export async function restoreDump(ctx: DriverContext, { url, input, format }: RestoreOptions): Promise<void> {
  // The stream may fail while the target is checked; reading it below reports that error.
  input.on('error', () => undefined);
  const loc = parseSqliteUrl(url);
  if (format !== SQLITE_FORMAT) {
    input.destroy();
    throw new DbflowError(
      `the sqlite driver restores "${SQLITE_FORMAT}" dumps, not "${format}"; restore this artifact with the driver that made it.`,
    );
  }
  const existing = await stat(loc.file).catch(() => undefined);
  if (existing && (!existing.isFile() || existing.size > 0)) {
    input.destroy();
    throw new DbflowError(
      `refusing to restore over "${loc.written}" (${url}): it is ${existing.isFile() ? `a database of ${existing.size} bytes` : 'not a file'}; restore into a new path, or remove it first.`,
    );
  }
  await mkdir(path.dirname(loc.file), { recursive: true });
  const temp = path.join(path.dirname(loc.file), `.${path.basename(loc.file)}.restore-${randomBytes(6).toString('hex')}`);
  try {
    await writeStream(input, temp, ctx.signal);
    await verify(temp, `the restored database for "${loc.written}"`);
    await rename(temp, loc.file);
  } finally {
    await Promise.all(companionFiles(temp).map((f) => rm(f, { force: true })));
  }
}

// Writes every chunk of `input` to a new file and syncs it to disk.
async function writeStream(input: Readable, file: string, signal: AbortSignal): Promise<void> {
  const fh = await open(file, 'wx');
  const onAbort = (): void => void input.destroy(signal.reason instanceof Error ? signal.reason : new DbflowError('restore aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    signal.throwIfAborted();
    for await (const chunk of input) await writeAll(fh, typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    await fh.sync();
  } finally {
    signal.removeEventListener('abort', onAbort);
    await fh.close();
  }
}

// Writes all of `buf`: a write may take fewer bytes than it was given.
async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let at = 0; at < buf.length;) at += (await fh.write(buf, at, buf.length - at)).bytesWritten;
}

// The header must be whole and `PRAGMA integrity_check` must say ok.
async function verify(file: string, what: string): Promise<void> {
  await checkFileHeader(file, what);
  let problems: string[];
  try {
    const db = new Database(file, { fileMustExist: true });
    try {
      problems = db.prepare('PRAGMA integrity_check(20)').pluck().all() as string[];
    } finally {
      db.close();
    }
  } catch (err) {
    if (isCorruption(err)) throw new IntegrityError(`${what} is corrupt: ${(err as Error).message}.`, { cause: err });
    throw asDatabaseError(err, { url: file, written: file, file }, 'check');
  }
  if (problems.length !== 1 || problems[0] !== 'ok') {
    throw new IntegrityError(`${what} fails PRAGMA integrity_check: ${problems.slice(0, 5).join('; ')}; the artifact is damaged.`);
  }
}
