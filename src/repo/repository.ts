// A backup repository (a storage URL prefix): its backups, newest first, and the objects that belong to none.
import { RepositoryError } from '../errors.js';
import type { Storage, StoredObject } from '../plugins/types.js';
import { normalizeUrl, parseManifest, readText, type StorageScope } from './backup.js';
import { ARCHIVE_MARKER } from './log-archive.js';
import { MARKS_FOLDER } from './marks.js';
import { MANIFEST_NAME, type Manifest } from './manifest.js';
import { runTimeInPath } from './run-id.js';
import { isLeaseUrl, judgeLease, parseLease, RUN_LEASE_NAME, type LeaseVerdict, type RunLease } from './run-lease.js';
import { readVerifyRecord, VERIFY_RECORD_NAME, type VerifyRecord } from './verify-record.js';

/** The folder of a repository holding audit records, one object per command (`--audit-repository`). */
export const AUDIT_FOLDER = 'dbflow-audit';

/** A folder with a manifest.json, as listed. */
export interface ListedBackup {
  /** The folder URL. */
  url: string;
  /** Undefined when the manifest cannot be read or is not a manifest (see `problem`). */
  manifest?: Manifest;
  problem?: string;
  /** Every object in the folder: the manifest, the artifacts, verify.json, anything else. */
  objects: StoredObject[];
  /** The last `dbflow verify`, when it left a record. */
  verify?: VerifyRecord;
  /** Paths of the manifest's artifacts that are not stored, or not with the size the manifest says. */
  missing: string[];
}

/** Objects of one folder that belongs to no backup: a run that failed, or one still writing; or unfinished writes anywhere. */
export interface OrphanFolder {
  folder: string;
  objects: StoredObject[];
  /** The run's start (from a run-id folder in the path, else its lease), else the newest object's time; undefined when unknown. */
  time?: Date;
  /** The lease of the run that writes this folder, when it left one, with the verdict on it. */
  run?: LeaseVerdict & { lease?: RunLease };
  /** The folder holds a backup: these are unfinished writes in it, not the backup's objects. */
  inBackup?: boolean;
}

/** Everything under a repository prefix. */
export interface RepositoryListing {
  repo: string;
  /** Newest first (by run start; unreadable manifests last). */
  backups: ListedBackup[];
  orphans: OrphanFolder[];
}

/** A manifest as read: the parsed manifest, or why it cannot be used. */
export type ReadManifest = { manifest: Manifest; problem?: undefined } | { manifest?: undefined; problem: string };

/**
 * What a listing read before, by object as listed (its URL, size and time): a memo answers from what it holds for an
 * unchanged object and calls `read` otherwise, so that a listing reads only the manifests and verify records that changed.
 */
export interface ListingMemo {
  manifest(object: StoredObject, read: () => Promise<ReadManifest>): Promise<ReadManifest>;
  verify(object: StoredObject, read: () => Promise<VerifyRecord | undefined>): Promise<VerifyRecord | undefined>;
}

const READ_AT_ONCE = 8;

/** Lists the repository at `repo`: every folder below it with a manifest.json is a backup. */
export async function listRepository(scope: StorageScope, repoUrl: string, memo?: ListingMemo): Promise<RepositoryListing> {
  const repo = normalizeUrl(repoUrl, 'repository');
  const storage = scope.storage(repo);
  // Audit records (dbflow-audit/ folders) are neither backups nor orphans: not listed, never pruned.
  const all = await storage.list(`${repo}/`, { unfinished: true, modified: true });
  if (!all.length) {
    throw new RepositoryError(
      `there is no repository at "${repo}": nothing is stored there. Check the path or URL (a pipeline's first run creates its repository).`,
    );
  }
  // Log archives (a folder with a dbflow-archive.json) hold no backups and no orphans: never listed, never pruned here.
  const logRoots = all.filter((o) => o.url.endsWith(`/${ARCHIVE_MARKER}`)).map((o) => o.url.slice(0, -ARCHIVE_MARKER.length));
  // Marks (dbflow-marks/) likewise: their records are kept and pruned with the bases that reach them.
  const objects = all.filter((o) => {
    const inRepo = o.url.slice(repo.length);
    return !inRepo.includes(`/${AUDIT_FOLDER}/`) && !inRepo.startsWith(`/${MARKS_FOLDER}/`) && !logRoots.some((r) => o.url.startsWith(r));
  });
  const folders = objects.filter((o) => o.url.endsWith(`/${MANIFEST_NAME}`)).map((o) => o.url.slice(0, -MANIFEST_NAME.length - 1));
  // The innermost backup folder that holds an object owns it.
  const owned = new Map<string, StoredObject[]>(folders.map((f) => [f, []]));
  const ownerOf = (url: string): string | undefined => {
    for (let f = url.slice(0, url.lastIndexOf('/')); f.length >= repo.length; f = f.slice(0, f.lastIndexOf('/')))
      if (owned.has(f)) return f;
    return undefined;
  };
  const orphans = new Map<string, StoredObject[]>();
  for (const o of objects) {
    const owner = o.unfinished || isLeaseUrl(o.url) ? undefined : ownerOf(o.url);
    if (owner) owned.get(owner)!.push(o);
    else {
      const folder = o.url.slice(0, o.url.lastIndexOf('/'));
      if (!orphans.has(folder)) orphans.set(folder, []);
      orphans.get(folder)!.push(o);
    }
  }
  const backups = await mapLimit(folders, READ_AT_ONCE, async (url): Promise<ListedBackup> => {
    const inFolder = owned.get(url)!;
    const manifestUrl = `${url}/${MANIFEST_NAME}`;
    const readManifest = async (): Promise<ReadManifest> => {
      try {
        return { manifest: parseManifest(await readText(storage, manifestUrl), manifestUrl) };
      } catch (err) {
        return { problem: (err as Error).message };
      }
    };
    const manifestObject = inFolder.find((o) => o.url === manifestUrl);
    const { manifest, problem } = memo && manifestObject ? await memo.manifest(manifestObject, readManifest) : await readManifest();
    if (!manifest) return { url, objects: inFolder, missing: [], problem };
    const sizes = new Map(inFolder.map((o) => [o.url, o.bytes]));
    const missing = manifest.artifacts.filter((a) => sizes.get(`${url}/${a.path}`) !== a.bytes).map((a) => a.path);
    const verifyObject = inFolder.find((o) => o.url === `${url}/${VERIFY_RECORD_NAME}`);
    const readVerify = (): Promise<VerifyRecord | undefined> => readVerifyRecord(storage, url);
    const verify = !verifyObject ? undefined : memo ? await memo.verify(verifyObject, readVerify) : await readVerify();
    return { url, manifest, objects: inFolder, missing, ...(verify && { verify }) };
  });
  backups.sort((a, b) => {
    const ta = a.manifest?.run.started_at ?? '';
    const tb = b.manifest?.run.started_at ?? '';
    return ta !== tb ? (ta < tb ? 1 : -1) : a.url < b.url ? 1 : -1;
  });
  const now = new Date();
  return {
    repo,
    backups,
    orphans: await mapLimit([...orphans], READ_AT_ONCE, async ([folder, objs]): Promise<OrphanFolder> => {
      const run = objs.some((o) => isLeaseUrl(o.url)) ? await readLease(storage, folder, now) : undefined;
      const newest = objs
        .map((o) => o.modified)
        .filter((m): m is string => m !== undefined)
        .sort()
        .at(-1);
      const time = runTimeInPath(`${folder}/x`) ?? (run?.lease ? new Date(run.lease.started_at) : newest ? new Date(newest) : undefined);
      return { folder, objects: objs, ...(time && { time }), ...(run && { run }), ...(owned.has(folder) && { inBackup: true }) };
    }),
  };
}

/** The lease in `folder` and whether its run is alive (a lease that cannot be read counts as alive). */
export async function readLease(storage: Storage, folder: string, now: Date): Promise<LeaseVerdict & { lease?: RunLease }> {
  const lease = await readText(storage, `${folder}/${RUN_LEASE_NAME}`, 1 << 20).then(parseLease, () => undefined);
  return { ...judgeLease(lease, now), ...(lease && { lease }) };
}

/** A backup whose artifacts are missing or of the wrong size, or whose last verify failed: never counted as verified. */
export function isDamaged(b: ListedBackup): boolean {
  return b.missing.length > 0 || b.verify?.ok === false;
}

/** The total size of a backup's artifacts, as its manifest records them. */
export function artifactBytes(manifest: Manifest): number {
  return manifest.artifacts.reduce((n, a) => n + a.bytes, 0);
}

/** Map `items` through `fn`, at most `limit` at once, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
