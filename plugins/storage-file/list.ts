// Listing every object under a URL prefix, folders recursively.
import { type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ListOptions, StoredObject } from '../../src/plugin-api.js';
import { isPartialName } from './partial-name.js';
import { parseFileUrl, urlUnder } from './url.js';

/**
 * Every object whose URL starts with `prefix`, sorted by URL, with URLs written the way the
 * prefix is (a relative prefix lists relative URLs). Temporary files of unfinished puts are left out,
 * unless asked for: then they are listed, marked unfinished.
 */
export async function listObjects(prefix: string, options: ListOptions = {}): Promise<StoredObject[]> {
  const { written } = parseFileUrl(prefix);
  const writtenDir = written.slice(0, written.lastIndexOf('/') + 1);
  const found: StoredObject[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    options.signal?.throwIfAborted();
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
      throw err;
    }
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      const url = urlUnder(writtenDir, childRel);
      // Only folders on the way to the prefix, or inside it, can hold a match.
      if (!url.startsWith(prefix) && !prefix.startsWith(`${url}/`)) continue;
      if (e.isDirectory()) await walk(path.join(dir, e.name), childRel);
      else if (e.isFile() && url.startsWith(prefix)) {
        const partial = isPartialName(e.name);
        if (partial && !options.unfinished) continue;
        const s = await stat(path.join(dir, e.name)).catch(() => undefined);
        if (s)
          found.push({
            url,
            bytes: s.size,
            ...(options.modified && { modified: s.mtime.toISOString() }),
            ...(partial && { unfinished: {} }),
          });
      }
    }
  };
  await walk(path.resolve(writtenDir), '');
  return found.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}
