// Credentials for a program (a libpq passfile, a MySQL option file): a 0600 file in a 0700 folder of its own, removed when the program ends.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StepContext } from './types.js';

/** A file written by credentialFile. */
export interface CredentialFile {
  /** Where it is: `<ctx.tmpdir>/<name>-XXXXXX/<name>`. */
  readonly path: string;
  /** Removes the file and its folder (again: nothing). */
  remove: () => void;
  /** Removes them once `program` has ended, however it ends (exit, failure, kill on cancel). */
  removeAfter: (program: PromiseLike<unknown>) => void;
}

/**
 * Writes `content` to a new file `name`, mode 0600, in a new 0700 folder below the step's tmpdir
 * (which the engine removes at the end of the step in any case). Give its path to the program in an
 * argument or a variable, never the credential itself.
 */
export function credentialFile(ctx: Pick<StepContext<unknown>, 'tmpdir'>, name: string, content: string): CredentialFile {
  const dir = mkdtempSync(path.join(ctx.tmpdir, `${name}-`));
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600, flag: 'wx' });
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  return {
    path: file,
    remove,
    removeAfter: (program) => void Promise.resolve(program).then(remove, remove),
  };
}
