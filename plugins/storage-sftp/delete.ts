// Deleting an object.
import type { DeleteOptions } from '../../src/plugin-api.js';
import { operationError } from './errors.js';
import { withSession } from './session.js';
import { parseObjectUrl } from './url.js';

/** Removes the object at `url`; an object that is already gone is not an error. */
export async function deleteObject(url: string, options: DeleteOptions = {}): Promise<void> {
  const loc = parseObjectUrl(url);
  await withSession(
    loc,
    async (s) => {
      const file = await s.path(loc.written);
      options.signal?.throwIfAborted();
      await s.client.delete(file, true).catch((err: unknown) => {
        throw operationError(`deleting "${url}"`, err);
      });
    },
    options,
  );
}
