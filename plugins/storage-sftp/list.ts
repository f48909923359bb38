// Listing every object under a URL prefix, folders recursively.
import path from 'node:path';
import type { ListOptions, StoredObject } from '../../src/plugin-api.js';
import { describe, NO_SUCH_FILE, operationError } from './errors.js';
import { isPartialName } from './partial-name.js';
import { withSession } from './session.js';
import { parseSftpUrl } from './url.js';

/**
 * Every object whose URL starts with `prefix`, sorted by URL, written the way the prefix is
 * (same user, host and port text; `/~/` kept). Temporary files of unfinished puts are left out,
 * unless asked for: then they are listed, marked unfinished.
 */
export async function listObjects(prefix: string, options: ListOptions = {}): Promise<StoredObject[]> {
  const loc = parseSftpUrl(prefix);
  const writtenDir = loc.written.slice(0, loc.written.lastIndexOf('/') + 1);
  return withSession(
    loc,
    async (s) => {
      const found: StoredObject[] = [];
      const walk = async (dir: string, rel: string): Promise<void> => {
        options.signal?.throwIfAborted();
        let entries;
        try {
          entries = await s.client.list(dir);
        } catch (err) {
          if ([NO_SUCH_FILE, 'ENOENT', 'ENOTDIR'].includes(describe(err).code as string)) return;
          throw operationError(`listing "${prefix}"`, err);
        }
        for (const e of entries) {
          const childRel = rel ? `${rel}/${e.name}` : e.name;
          const url = `${loc.origin}${writtenDir}${childRel}`;
          // Only folders on the way to the prefix, or inside it, can hold a match.
          if (!url.startsWith(prefix) && !prefix.startsWith(`${url}/`)) continue;
          if (e.type === 'd') await walk(path.posix.join(dir, e.name), childRel);
          else if (e.type === '-' && url.startsWith(prefix) && (options.unfinished || !isPartialName(e.name))) {
            found.push({
              url,
              bytes: e.size,
              ...(options.modified && { modified: new Date(e.modifyTime).toISOString() }),
              ...(isPartialName(e.name) && { unfinished: {} }),
            });
          }
        }
      };
      await walk(await s.path(writtenDir), '');
      return found.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
    },
    options,
  );
}
