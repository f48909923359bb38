// Names of the temporary files a put writes before it renames them into place.
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const PARTIAL = /^\..+\.partial-[0-9a-f]{12}$/;

/** A temporary name in the same remote folder as `file`: `.<name>.partial-<random>`. */
export function partialPath(file: string): string {
  return path.posix.join(path.posix.dirname(file), `.${path.posix.basename(file)}.partial-${randomBytes(6).toString('hex')}`);
}

/** True for the name of a put's temporary file. */
export function isPartialName(name: string): boolean {
  return PARTIAL.test(name);
}
