// Reading an object back as a stream.
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { RepositoryError, type GetOptions } from '../../src/plugin-api.js';
import { parseObjectUrl } from './url.js';

/** A stream of the object at `url`; a missing object is a RepositoryError that names it. */
export async function getObject(url: string, options: GetOptions = {}): Promise<Readable> {
  options.signal?.throwIfAborted();
  const loc = parseObjectUrl(url);
  const fh = await open(loc.file, 'r').catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.code ?? err.message})`;
    throw new RepositoryError(`object "${url}" ${why} (looked for ${loc.file}); check the URL, or list the repository.`, { cause: err });
  });
  const stats = await fh.stat();
  if (!stats.isFile()) {
    await fh.close();
    throw new RepositoryError(`"${url}" is a folder, not an object; name a file in it.`);
  }
  if (options.signal?.aborted) {
    await fh.close();
    options.signal.throwIfAborted();
  }
  return fh.createReadStream({ highWaterMark: 1 << 20, ...(options.signal && { signal: options.signal }) });
}
