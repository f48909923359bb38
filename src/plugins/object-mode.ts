// Permissions of the files and folders a storage creates on a file system (file://, sftp://): private unless asked otherwise.
import { DbflowError } from '../errors.js';

/** The permission bits of what a put creates: the object, and each folder it makes on the way. */
export interface ObjectModes {
  file: number;
  folder: number;
}

/** Without a `mode` setting: only the owner reads a dump, encrypted or not. */
export const PRIVATE_MODES: ObjectModes = { file: 0o600, folder: 0o700 };

/**
 * The modes of a put to `url` with the upload's `with.storage` settings, of which a file-system storage takes one:
 * `mode`, an octal string such as "0640" (folders get an x bit wherever the mode has an r bit: 0750). The owner keeps
 * read and write. An unknown setting or a wrong mode is a DbflowError that quotes it.
 */
export function objectModes(storage: string, url: string, settings: Record<string, unknown> = {}): ObjectModes {
  const where = `in the upload's storage settings for "${url}"`;
  const unknown = Object.keys(settings).filter((k) => k !== 'mode');
  if (unknown.length) {
    throw new DbflowError(`the ${storage} storage takes only "mode" ${where}; remove ${unknown.map((k) => `"${k}"`).join(', ')}.`);
  }
  const mode = settings.mode;
  if (mode === undefined) return PRIVATE_MODES;
  if (typeof mode !== 'string' || !/^0?[0-7]{3}$/.test(mode)) {
    throw new DbflowError(
      `mode ${where} is ${JSON.stringify(mode)}; write the permission bits as a quoted octal string, e.g. mode: "0640".`,
    );
  }
  const file = parseInt(mode, 8);
  if ((file & 0o600) !== 0o600) {
    throw new DbflowError(`mode ${where} is "${mode}"; the owner must keep read and write (6 as the first digit, e.g. "0640").`);
  }
  return modesOf(file);
}

/** The modes that go with a file mode: folders get an x bit wherever it has an r bit (0640 → 0750). */
export function modesOf(file: number): ObjectModes {
  const bits = file & 0o777;
  return { file: bits, folder: bits | ((bits & 0o444) >> 2) };
}
