// Scratch databases that a restore test restores into.
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DriverContext, ScratchDatabase } from '../../src/plugin-api.js';
import { companionFiles, safeFileName, sqliteUrl } from './url.js';

/** An empty database file in the step's tmpdir; `drop()` removes it and its journal, WAL and shm. */
export async function createScratch(ctx: DriverContext, name: string): Promise<ScratchDatabase> {
  let file = path.join(ctx.tmpdir, `${safeFileName(name)}.sqlite3`);
  try {
    await writeFile(file, '', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    file = path.join(ctx.tmpdir, `${safeFileName(name)}-${randomBytes(4).toString('hex')}.sqlite3`);
    await writeFile(file, '', { flag: 'wx' });
  }
  return {
    url: sqliteUrl(file),
    drop: async () => {
      await Promise.all(companionFiles(file).map((f) => rm(f, { force: true })));
    },
  };
}
