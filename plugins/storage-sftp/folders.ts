// Creating the remote folders of an object, safe against concurrent puts into the same new folder.
import path from 'node:path';
import { describe, operationError } from './errors.js';
import type { Session } from './session.js';

/** Makes `dir` and its missing parents with `mode`; a folder that another put created meanwhile is fine (and keeps its mode). */
export async function ensureFolder(s: Session, dir: string, url: string, mode: number): Promise<void> {
  const what = `creating the folder "${dir}" for "${url}"`;
  const state = await folderState(s, dir).catch((err: unknown) => {
    throw operationError(what, err);
  });
  if (state === 'folder') return;
  if (state === 'other') throw operationError(what, new Error(`"${dir}" exists and is not a folder`));
  const parent = path.posix.dirname(dir);
  if (parent !== dir) await ensureFolder(s, parent, url, mode);
  const made = await new Promise<unknown>((resolve) => s.sftp.mkdir(dir, { mode }, resolve));
  // Another put may have made it between the check and the mkdir: look again.
  if (made) {
    if ((await folderState(s, dir).catch(() => 'missing')) !== 'folder') throw operationError(what, made);
    return;
  }
  // The server's umask must not take bits from the mode asked for.
  await s.client.chmod(dir, mode).catch((err: unknown) => {
    throw operationError(what, err);
  });
}

// What is at `dir`, symlinks followed.
async function folderState(s: Session, dir: string): Promise<'folder' | 'missing' | 'other'> {
  try {
    return (await s.client.stat(dir)).isDirectory ? 'folder' : 'other';
  } catch (err) {
    if (describe(err).code === 'ENOENT') return 'missing';
    throw err;
  }
}
