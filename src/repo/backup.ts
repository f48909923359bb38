// One stored backup: its folder URL, its manifest read and checked, its artifacts' locations.
import type { Readable } from 'node:stream';
import { RepositoryError, UsageError } from '../errors.js';
import type { ArtifactRecord, Storage } from '../plugins/types.js';
import { compile } from '../schema/validator.js';
import { manifestSchema } from './manifest-schema.js';
import { MANIFEST_NAME, type Manifest } from './manifest.js';

/** Where storages are found, by URL scheme. */
export interface StorageScope {
  storage(url: string): Storage;
}

/** A backup that exists: its folder and its manifest. */
export interface Backup {
  /** The folder URL (without a trailing `/`). */
  url: string;
  manifest: Manifest;
}

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

let validate: ReturnType<typeof compile> | undefined;

/**
 * A storage URL without trailing slashes. A plain path means the file storage: `./backups/nightly`
 * and `backups/nightly` are `file://./backups/nightly`, `/var/backups/x` is `file:///var/backups/x`.
 */
export function normalizeUrl(url: string, what: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url.replace(/\/+$/, '');
  if (!url || /^[a-z][a-z0-9+.-]*:/i.test(url)) {
    throw new UsageError(
      `${what} "${url}" is neither a storage URL nor a path; write e.g. ./backups/nightly, file://./backups/nightly or s3://bucket/nightly.`,
    );
  }
  const file = url.startsWith('/') || url.startsWith('./') || url.startsWith('../') ? url : `./${url}`;
  return `file://${file}`.replace(/\/+$/, '');
}

/** The folder of a backup, given its folder URL or its manifest's URL. */
export function backupFolder(url: string): string {
  const u = normalizeUrl(url, 'backup');
  return u.endsWith(`/${MANIFEST_NAME}`) ? u.slice(0, -MANIFEST_NAME.length - 1) : u;
}

/** The whole of a small object, as text. */
export async function readText(storage: Storage, url: string, limit = MAX_MANIFEST_BYTES): Promise<string> {
  const stream: Readable = await storage.get(url);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buf.length;
    if (bytes > limit) {
      stream.destroy();
      throw new RepositoryError(`"${url}" is larger than ${limit} bytes; it is not a dbflow manifest.`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses and checks a manifest's text against the manifest schema. */
export function parseManifest(text: string, url: string): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new RepositoryError(`"${url}" is not JSON (${(err as Error).message}); the manifest is damaged.`);
  }
  validate ??= compile(manifestSchema);
  if (!validate(data)) {
    const first = validate.errors?.[0];
    throw new RepositoryError(
      `"${url}" is not a dbflow manifest: ${first ? `${first.instancePath || '/'} ${first.message ?? ''}` : 'schema mismatch'}.`,
    );
  }
  const manifest = data as Manifest;
  for (const a of manifest.artifacts) {
    if (a.path.startsWith('/') || a.path.split('/').some((s) => s === '..' || s === '')) {
      throw new RepositoryError(
        `"${url}" lists artifact path "${a.path}", which is not inside the backup folder; the manifest is damaged.`,
      );
    }
  }
  return manifest;
}

/** Reads the backup at `url` (its folder or its manifest); a folder without a manifest is not a backup. */
export async function openBackup(scope: StorageScope, url: string): Promise<Backup> {
  const folder = backupFolder(url);
  const storage = scope.storage(folder);
  const manifestUrl = `${folder}/${MANIFEST_NAME}`;
  const listed = await storage.list(`${folder}/`);
  if (!listed.some((o) => o.url === manifestUrl)) {
    const what = listed.length
      ? `it holds ${listed.length} ${listed.length === 1 ? 'object' : 'objects'} but no ${MANIFEST_NAME}: a run that failed or is still writing (a backup exists only once its manifest is written, last)`
      : 'nothing is stored there';
    throw new RepositoryError(`"${folder}" is not a backup: ${what}. List the backups with \`dbflow backups list <repository>\`.`);
  }
  return { url: folder, manifest: parseManifest(await readText(storage, manifestUrl), manifestUrl) };
}

/** An artifact of a backup with its URL where it is stored now: the backup's folder plus its path (the manifest may have been copied or moved). */
export function storedArtifact(backup: Backup, artifact: Manifest['artifacts'][number]): ArtifactRecord {
  return { ...artifact, url: `${backup.url}/${artifact.path}` };
}
