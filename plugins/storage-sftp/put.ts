// Atomic writes: stream into a temporary file in the same remote folder, then rename it into place.
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WriteStream } from 'ssh2';
import { DbflowError, modesOf, objectModes, type ObjectModes, type PutOptions, type StoredObject } from '../../src/plugin-api.js';
import { describe, operationError } from './errors.js';
import { ensureFolder } from './folders.js';
import { partialPath } from './partial-name.js';
import { type Session, withSession } from './session.js';
import { parseObjectUrl } from './url.js';

/** Bytes the write stream buffers: several SFTP writes in flight at once, memory bounded. */
const BUFFER_BYTES = 1 << 20;

/**
 * Writes `body` to the object at `url`. The object appears, whole, only after the body ended and
 * the server confirmed every byte; a body that fails or an abort removes the temporary file and rejects.
 */
export async function putObject(url: string, body: Readable, { signal, settings, like, config }: PutOptions): Promise<StoredObject> {
  // The body may fail while the session opens; reading it below reports that error.
  body.on('error', () => undefined);
  const loc = parseObjectUrl(url);
  const abortError = (): Error => (signal.reason instanceof Error ? signal.reason : new DbflowError(`writing "${url}" was aborted.`));
  let asked: ObjectModes;
  try {
    asked = objectModes('sftp', url, settings);
  } catch (err) {
    body.destroy();
    throw err;
  }
  if (signal.aborted) {
    body.destroy();
    throw abortError();
  }
  const onAbort = (): void => void body.destroy(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await withSession(
      loc,
      async (s) => {
        const file = await s.path(loc.written);
        const modes = like && settings?.mode === undefined ? await modesLike(s, like, asked) : asked;
        await ensureFolder(s, path.posix.dirname(file), url, modes.folder);
        if (signal.aborted) throw abortError();
        const bytes = await writeAtomically(s, file, body, url, modes.file, () => (signal.aborted ? abortError() : undefined));
        return { url, bytes };
      },
      { signal, config },
    );
  } catch (err) {
    body.destroy();
    throw signal.aborted ? abortError() : err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

// Streams `body` into a fresh temporary file next to `file`, makes it durable where the server can, renames it onto `file`.
async function writeAtomically(
  s: Session,
  file: string,
  body: Readable,
  url: string,
  mode: number,
  aborted: () => Error | undefined,
): Promise<number> {
  const temp = partialPath(file);
  // autoClose off: the handle stays open for fsync, and is closed here.
  const ws = s.client.createWriteStream(temp, { flags: 'wx', mode, autoClose: false, highWaterMark: BUFFER_BYTES }) as RemoteFile;
  // Errors are taken where they matter (open, pipeline, close); a late one during cleanup must not crash the process.
  ws.on('error', () => undefined);
  let published = false;
  try {
    s.onLost((err) => ws.destroy(err));
    await opened(ws).catch((err: unknown) => {
      throw operationError(`creating "${temp}" for "${url}"`, err);
    });
    // The server's umask must not take bits from the mode asked for.
    await s.client.chmod(temp, mode).catch((err: unknown) => {
      throw operationError(`setting the mode of "${temp}" for "${url}"`, err);
    });
    // pipeline() destroys both streams with the first error: remember whose it was.
    let failed: 'body' | 'remote' | undefined;
    body.once('error', () => (failed ??= 'body'));
    ws.once('error', () => (failed ??= 'remote'));
    try {
      await pipeline(body, ws);
    } catch (err) {
      // The body's own error (or the abort) is the news; a failed SFTP write gets the server's context.
      throw aborted() ?? (failed === 'remote' ? operationError(`writing "${url}"`, err) : err);
    }
    const abort = aborted();
    if (abort) throw abort;
    await fsync(s, ws);
    await closeHandle(ws).catch((err: unknown) => {
      throw operationError(`closing "${temp}" for "${url}"`, err);
    });
    await renameOnto(s, temp, file, url);
    published = true;
    return ws.bytesWritten;
  } finally {
    s.onLost(undefined);
    if (!published) {
      ws.destroy();
      await removeTemp(s, temp);
    }
  }
}

// The modes of the object `like` names (a manifest takes its first artifact's), else `asked`.
async function modesLike(s: Session, like: string, asked: ObjectModes): Promise<ObjectModes> {
  try {
    return modesOf((await s.client.stat(await s.path(parseObjectUrl(like).written))).mode);
  } catch {
    return asked;
  }
}

/** ssh2's write stream, with what its typings leave out. */
type RemoteFile = WriteStream & { handle: Buffer | null; bytesWritten: number; destroy(err?: Error): RemoteFile };

// Resolves once the remote file is open (created), so that nothing creates it after a cleanup removed it.
function opened(ws: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('ready', () => {
      ws.off('error', reject);
      resolve();
    });
    ws.once('error', reject);
  });
}

// fsync@openssh.com where the server has it: the data is on disk before the name points at it.
async function fsync(s: Session, ws: RemoteFile): Promise<void> {
  const handle = ws.handle;
  if (!Buffer.isBuffer(handle)) return;
  await new Promise<void>((resolve, reject) => {
    try {
      s.sftp.ext_openssh_fsync(handle, (err) => (err ? reject(operationError('syncing the uploaded file', err)) : resolve()));
    } catch {
      resolve(); // the server does not offer the extension
    }
  });
}

// Closes the remote file handle: only then is the write complete on every server.
function closeHandle(ws: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('close', () => resolve());
    ws.once('error', reject);
    ws.destroy();
  });
}

// posix-rename@openssh.com replaces the target atomically; servers without it get remove + rename.
async function renameOnto(s: Session, temp: string, file: string, url: string): Promise<void> {
  try {
    await s.client.posixRename(temp, file);
    return;
  } catch (err) {
    if (!/does not support/i.test(describe(err).message)) throw operationError(`renaming the upload into "${url}"`, err);
  }
  await s.client.delete(file, true).catch((err: unknown) => {
    throw operationError(`replacing "${url}"`, err);
  });
  await s.client.rename(temp, file).catch((err: unknown) => {
    throw operationError(`renaming the upload into "${url}"`, err);
  });
}

// Best effort: a connection that is gone leaves the temporary file, which list() ignores.
async function removeTemp(s: Session, temp: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await s.client.delete(temp, true);
      return;
    } catch {
      await sleep(100); // a server that still holds the handle open may refuse once
    }
  }
}
