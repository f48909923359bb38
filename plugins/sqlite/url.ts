// sqlite: URLs and the database files they name.
import path from 'node:path';
import { DbflowError, withoutCredentials } from '../../src/plugin-api.js';

/** The database file a `sqlite:` URL names, as written and resolved against the working directory. */
export interface SqliteLocation {
  url: string;
  /** The path as written in the URL. */
  written: string;
  /** The absolute path. */
  file: string;
}

/** Parse `sqlite:<path>`, `sqlite://<path>` or `sqlite:///absolute/path`; anything else is refused. */
export function parseSqliteUrl(url: string): SqliteLocation {
  const m = /^sqlite:(?:\/\/)?(.*)$/is.exec(url);
  const written = m?.[1] ?? '';
  if (!m || !written || written === ':memory:' || written.includes('\0')) {
    throw new DbflowError(
      `"${withoutCredentials(url)}" is not a usable sqlite URL; write sqlite:./app.db (relative to the working directory) or sqlite:///absolute/path/app.db.`,
    );
  }
  return { url, written, file: path.resolve(written) };
}

/** The `sqlite:` URL of an absolute file path. */
export function sqliteUrl(file: string): string {
  return `sqlite:${path.resolve(file)}`;
}

/** The files SQLite may keep next to a database: rollback journal, WAL and shared memory. */
export function companionFiles(file: string): string[] {
  return [file, `${file}-journal`, `${file}-wal`, `${file}-shm`];
}

/** A name made safe for a file name: letters, digits, `.`, `_` and `-`. */
export function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || 'db';
}
