// Deleting an object.
import { rm } from 'node:fs/promises';
import { parseObjectUrl } from './url.js';

/** Removes the object at `url`; an object that is already gone is not an error. */
export async function deleteObject(url: string): Promise<void> {
  await rm(parseObjectUrl(url).file, { force: true });
}
