// A restore's target database file: does it exist, and creating it (`dbflow restore --create`).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DbflowError, type DatabaseConfig } from '../../src/plugin-api.js';
import { parseSqliteUrl } from './url.js';

/** True when the database file `db.url` names exists. */
export function targetExists(db: DatabaseConfig): boolean {
  return existsSync(parseSqliteUrl(db.url).file);
}

/** Creates the empty database file `db.url` names (and its folder), unless it exists. */
export async function createTarget(db: DatabaseConfig): Promise<boolean> {
  const { file } = parseSqliteUrl(db.url);
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '', { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DbflowError(`cannot create the database file ${file}: ${(err as Error).message}.`, { cause: err });
  }
}
