// Listing every object under a URL prefix, folders recursively.
import { readdirSync, statSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import type { ListOptions, StoredObject } from '../../src/plugin-api.js';
import { isPartialName } from './partial-name.js';
import { parseFileUrl, urlUnder } from './url.js';

const YIELD_AFTER_MS = 10;

/**
 * Every object whose URL starts with `prefix`, sorted by URL, with URLs written the way the
 * prefix is (a relative prefix lists relative URLs). Temporary files of unfinished puts are left out,
 * unless asked for: then they are listed, marked unfinished.
 */
export async function listObjects(prefix: string, options: ListOptions = {}): Promise<StoredObject[]> {
  const { written } = parseFileUrl(prefix);
  const writtenDir = written.slice(0, written.lastIndexOf('/') + 1);
  const found: StoredObject[] = [];
  // Folders are read and files stat'ed synchronously: from the file system's cache that takes microseconds, while each
  // asynchronous call waits its turn on a thread of the pool (a listing of a thousand backups: 3x slower, more under load).
  // A long listing yields between folders every few milliseconds, so that a server that lists keeps answering.
  // Each folder to read, with the URL its entries' names are appended to.
  const folders: { dir: string; base: string }[] = [{ dir: path.resolve(writtenDir), base: urlUnder(writtenDir, '') }];
  let since = performance.now();
  for (let folder = folders.pop(); folder; folder = folders.pop()) {
    options.signal?.throwIfAborted();
    if (performance.now() - since > YIELD_AFTER_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      since = performance.now();
    }
    const { dir, base } = folder;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) continue;
      throw err;
    }
    for (const e of entries) {
      const url = base + e.name;
      // Only folders on the way to the prefix, or inside it, can hold a match.
      if (e.isDirectory()) {
        if (url.startsWith(prefix) || prefix.startsWith(`${url}/`)) folders.push({ dir: `${dir}${path.sep}${e.name}`, base: `${url}/` });
      } else if (e.isFile() && url.startsWith(prefix)) {
        const partial = isPartialName(e.name);
        if (partial && !options.unfinished) continue;
        const s = statOrNothing(`${dir}${path.sep}${e.name}`);
        if (!s) continue;
        const object: StoredObject = { url, bytes: s.size };
        if (options.modified) object.modified = s.mtime.toISOString();
        if (partial) object.unfinished = {};
        found.push(object);
      }
    }
  }
  return found.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

// A file's stat; nothing when it went away meanwhile (or cannot be stat'ed), as a listing does not fail on a moving file.
function statOrNothing(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}
