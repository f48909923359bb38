// File-system errors of the file storage, said in the user's terms: which object, what the disk said, what to do.
import { DbflowError } from '../../src/plugin-api.js';

/** What the common causes of a failed write mean, by errno code. */
const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on the device (ENOSPC); free space there, or move the repository to a larger disk',
  EDQUOT: 'the disk quota is exhausted (EDQUOT); free space there, or raise the quota',
  EROFS: 'the repository is on a read-only file system (EROFS); remount it read-write, or move the repository',
  EACCES: 'permission denied (EACCES); give the user running dbflow write access to the repository folder',
  EPERM: 'operation not permitted (EPERM); give the user running dbflow write access to the repository folder',
  ENOTDIR: 'a part of the path is a file, not a folder (ENOTDIR); fix the URL',
  EIO: 'the disk reported an I/O error (EIO); check the device',
};

/** A DbflowError for a file-system error while `action` (e.g. "writing") the object at `url`; other errors pass through. */
export function fileFailure(err: unknown, action: string, url: string): unknown {
  const e = err as NodeJS.ErrnoException | undefined;
  if (err instanceof DbflowError || typeof e?.code !== 'string' || typeof e.syscall !== 'string') return err;
  const cause = CAUSES[e.code] ?? `${e.code}: ${e.message}`;
  return new DbflowError(`${action} "${url}" failed: ${cause}.`, { cause: err });
}
