// Deleting an object.
import { rm } from 'node:fs/promises';
import { RepositoryError, type DeleteOptions } from '../../src/plugin-api.js';
import { parseObjectUrl } from './url.js';

/** Removes the object at `url`; an object that is already gone is not an error; one that cannot be removed is an error that names it. */
export async function deleteObject(url: string, options: DeleteOptions = {}): Promise<void> {
  options.signal?.throwIfAborted();
  const { file } = parseObjectUrl(url);
  await rm(file, { force: true }).catch((err: NodeJS.ErrnoException) => {
    const why =
      err.code === 'EROFS'
        ? 'the file system is read-only'
        : err.code === 'EACCES' || err.code === 'EPERM'
          ? 'permission denied'
          : err.message;
    throw new RepositoryError(
      `the file storage cannot delete "${url}" (${file}): ${why} (${err.code ?? 'error'}); make the repository writable, or run this where it is.`,
      { cause: err },
    );
  });
}
