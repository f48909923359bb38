// Preflight: whether this process can read the database file and write the temp folder that snapshot and restore-test use.
import { existsSync } from 'node:fs';
import { access, constants, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import Database from 'better-sqlite3';
import {
  shellQuote,
  type DriverContext,
  type PreflightMissing,
  type PreflightOptions,
  type PreflightReport,
} from '../../src/plugin-api.js';
import { asDatabaseError, openExisting } from './open.js';
import { sqliteOptions } from './options.js';
import { parseSqliteUrl } from './url.js';

/**
 * Opens the database file as the snapshot does (and reads it in a transaction), and checks the folder
 * where the snapshot stages its copy and the restore-test writes its scratch file (the temp folder of
 * each step): writable, with room for both copies. A file that does not exist yet is a note: a step
 * before the snapshot may create it (the quickstart's sqlite-seed does).
 */
export async function preflight(ctx: DriverContext, { db }: PreflightOptions): Promise<PreflightReport> {
  const loc = parseSqliteUrl(db.url);
  const user = os.userInfo().username;
  const missing: PreflightMissing[] = [];
  const notes: string[] = [];
  let bytes = 0;
  ctx.signal.throwIfAborted();
  if (!existsSync(loc.file)) {
    notes.push(
      `database file "${loc.written}" (${loc.file}) does not exist yet: a step before the snapshot must create it (as the quickstart's sqlite-seed step does).`,
    );
  } else if (!(await allowed(loc.file, constants.R_OK))) {
    missing.push({ need: `the snapshot reads the database file ${loc.file}`, grant: `setfacl -m u:${user}:r ${shellQuote(loc.file)}` });
  } else {
    const source = openExisting(loc, { readonly: true, busyTimeoutMs: sqliteOptions(db).busyTimeoutMs });
    try {
      source.exec('BEGIN');
      source.prepare('SELECT count(*) FROM sqlite_master').get();
      source.exec('COMMIT');
    } catch (err) {
      throw asDatabaseError(err, loc, 'read');
    } finally {
      source.close();
    }
    bytes = (await stat(loc.file)).size;
  }
  const tmp = os.tmpdir();
  if (!(await allowed(tmp, constants.W_OK | constants.X_OK))) {
    missing.push({
      need: `the snapshot's staged copy and the restore-test's scratch file, in the temp folder ${tmp}`,
      grant: `setfacl -m u:${user}:rwx ${shellQuote(tmp)}`,
    });
  } else {
    const free = await statfs(tmp).then((s) => s.bavail * s.bsize);
    if (free < 2 * bytes) {
      notes.push(
        `the temp folder ${tmp} has ${mib(free)} free; a backup stages a copy of the database there and a restore-test another (${mib(2 * bytes)}): set TMPDIR to a bigger folder.`,
      );
    }
  }
  return { server: `SQLite ${sqliteVersion()}`, user, missing, notes };
}

// The version of the SQLite library that snapshots and restores go through.
function sqliteVersion(): string {
  const db = new Database(':memory:');
  try {
    return String(db.prepare('SELECT sqlite_version()').pluck().get());
  } finally {
    db.close();
  }
}

async function allowed(file: string, mode: number): Promise<boolean> {
  return access(file, mode).then(
    () => true,
    () => false,
  );
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
