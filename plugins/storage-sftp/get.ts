// Reading an object back as a stream; the session ends with the stream.
import { PassThrough, type Readable } from 'node:stream';
import type { ReadStream } from 'ssh2';
import { RepositoryError, type GetOptions } from '../../src/plugin-api.js';
import { describe, operationError } from './errors.js';
import { openSession } from './session.js';
import { describeServer, parseObjectUrl } from './url.js';

/** Bytes asked for per SFTP read (one read in flight at a time): the most OpenSSH answers in one piece (its limits@openssh.com). */
const READ_BYTES = 255 * 1024;

/**
 * A stream of the object at `url`; a missing object is a RepositoryError that names it. The
 * connection closes when the stream has ended, failed or been destroyed.
 */
export async function getObject(url: string, options: GetOptions = {}): Promise<Readable> {
  const { signal } = options;
  const loc = parseObjectUrl(url);
  const s = await openSession(loc, options);
  // Until the stream is handed over, an abort closes the session (failing what is in flight); after, it errors the stream.
  let out: PassThrough | undefined;
  const onAbort = (): void => {
    if (out) out.destroy(signal!.reason as Error);
    else void s.close();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    signal?.throwIfAborted();
    const file = await s.path(loc.written);
    const stats = await s.client.stat(file).catch((err: unknown) => {
      if (describe(err).code !== 'ENOENT') throw operationError(`reading "${url}"`, err);
      throw new RepositoryError(
        `object "${url}" does not exist (looked for ${file} on ${describeServer(loc)}); check the URL, or list the repository.`,
        { cause: err },
      );
    });
    if (stats.isDirectory) throw new RepositoryError(`"${url}" is a folder, not an object; name a file in it.`);
    const rs = s.client.createReadStream(file, { highWaterMark: READ_BYTES });
    await opened(rs).catch((err: unknown) => {
      throw operationError(`reading "${url}"`, err);
    });
    signal?.throwIfAborted();
    out = new PassThrough({ highWaterMark: READ_BYTES });
    const stream = out;
    const fail = (err: unknown): void => void stream.destroy(operationError(`reading "${url}"`, err));
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      rs.destroy();
      void s.close();
    };
    s.onLost(fail);
    rs.on('error', fail);
    rs.once('end', done);
    out.once('close', done);
    rs.pipe(out);
    return out;
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    await s.close();
    throw signal?.aborted ? signal.reason : err;
  }
}

// Resolves once the remote file is open, so that a refused open rejects get() itself.
function opened(rs: ReadStream): Promise<void> {
  return new Promise((resolve, reject) => {
    rs.once('ready', () => {
      rs.off('error', reject);
      resolve();
    });
    rs.once('error', reject);
  });
}
