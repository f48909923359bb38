// file: URLs of the file storage and the paths they name.
import path from 'node:path';
import { DbflowError } from '../../src/plugin-api.js';

/** A parsed `file://` URL. */
export interface FileLocation {
  /** The path as written after `file://` (relative paths keep their `./`). */
  written: string;
  /** The absolute path. */
  file: string;
}

/**
 * Parse `file://./relative/path`, `file://../relative/path` (against the working directory) or
 * `file:///absolute/path`. The path is taken literally (no percent-decoding); a host is refused.
 */
export function parseFileUrl(url: string): FileLocation {
  const written = /^file:\/\/(.*)$/is.exec(url)?.[1];
  const usable = written !== undefined && !written.includes('\0') && /^(\/|\.\.?\/)/.test(written);
  if (!usable) {
    throw new DbflowError(`"${url}" is not a file storage URL; write file://./relative/path or file:///absolute/path.`);
  }
  return { written, file: path.resolve(written) };
}

/** Parse the URL of one object: it must name a file, not a folder. */
export function parseObjectUrl(url: string): FileLocation {
  const loc = parseFileUrl(url);
  if (loc.written.endsWith('/') || ['.', '..'].includes(path.basename(loc.written))) {
    throw new DbflowError(`"${url}" names a folder, not an object; add a file name, e.g. ${url.replace(/\/*$/, '')}/backup.dump.`);
  }
  return loc;
}

/** The URL of a file found under a folder, written the way the folder's URL was. */
export function urlUnder(writtenDir: string, relative: string): string {
  return `file://${writtenDir}${relative.split(path.sep).join('/')}`;
}
