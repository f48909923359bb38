// `prune`: what a retention policy removes from a repository (planned purely), and the removal, manifest first.
import { DbflowError, RepositoryError } from '../errors.js';
import type { StoredObject } from '../plugins/types.js';
import type { StorageScope } from './backup.js';
import { MANIFEST_NAME } from './manifest.js';
import { isDamaged, readLease, type ListedBackup, type OrphanFolder, type RepositoryListing } from './repository.js';
import { RUN_LEASE_NAME } from './run-lease.js';
import { retain, type RetentionPolicy } from './retention.js';

/** How prune decides. */
export interface PruneOptions {
  policy: RetentionPolicy;
  /** Orphaned objects younger than this may belong to a run still writing: never removed. */
  orphanGraceMs: number;
  /** The grace period as the user wrote it, for the reasons (e.g. `24h`). */
  orphanGraceLabel?: string;
  now: Date;
}

/** What prune keeps, removes and leaves alone, with the reasons. */
export interface PrunePlan {
  keep: { backup: ListedBackup; reasons: string[] }[];
  remove: ListedBackup[];
  /** Backups whose manifest cannot be read: never touched. */
  skipped: { backup: ListedBackup; why: string }[];
  orphans: { orphan: OrphanFolder; remove: boolean; why: string }[];
}

/** Applies the policy to every readable backup (per pipeline) and the grace period to orphaned objects. */
export function planPrune(listing: RepositoryListing, options: PruneOptions): PrunePlan {
  const readable = listing.backups.filter((b) => b.manifest);
  const verdicts = retain(
    readable.map((b) => ({
      id: b.manifest!.run.id,
      time: new Date(b.manifest!.run.started_at),
      verified: b.manifest!.status === 'verified' && !isDamaged(b),
      group: b.manifest!.pipeline.name,
      b,
    })),
    options.policy,
  );
  return {
    keep: verdicts.filter((v) => v.keep).map((v) => ({ backup: v.backup.b, reasons: v.reasons })),
    remove: verdicts.filter((v) => !v.keep).map((v) => v.backup.b),
    skipped: listing.backups.filter((b) => !b.manifest).map((b) => ({ backup: b, why: b.problem ?? 'unreadable manifest' })),
    orphans: listing.orphans.map((orphan) => {
      const grace = options.orphanGraceLabel ?? formatAge(options.orphanGraceMs);
      if (orphan.run?.alive)
        return { orphan, remove: false, why: `in progress: ${orphan.run.why}; a live run's objects are never removed` };
      if (!orphan.time)
        return { orphan, remove: false, why: 'no run id in its path, so its age is unknown: remove it by hand if nothing is writing it' };
      const age = options.now.getTime() - orphan.time.getTime();
      const what = orphan.inBackup ? 'unfinished writes in a backup folder' : 'no manifest';
      const dead = orphan.run ? `; ${orphan.run.why}` : '';
      return age > options.orphanGraceMs
        ? { orphan, remove: true, why: `${what}; its run started ${formatAge(age)} ago (older than --orphan-grace ${grace})${dead}` }
        : {
            orphan,
            remove: false,
            why: `no manifest yet; its run started ${formatAge(Math.max(0, age))} ago, within --orphan-grace ${grace}: it may still be writing`,
          };
    }),
  };
}

/** Called for every object removed, in order. */
export type OnDelete = (url: string) => void;

/**
 * Removes each backup the plan removes — its manifest first, so that a backup half-removed is no
 * backup at all — then its other objects; then the orphaned objects the plan removes, unless a
 * manifest appeared in their folder since the listing. Stops at the first failure.
 */
export async function executePrune(
  scope: StorageScope,
  plan: PrunePlan,
  onDelete: OnDelete,
): Promise<{ deleted: StoredObject[]; spared: string[] }> {
  const deleted: StoredObject[] = [];
  const spared: string[] = [];
  const remove = async (o: StoredObject): Promise<void> => {
    const storage = scope.storage(o.url);
    try {
      await storage.delete(o.url, o.unfinished?.upload !== undefined ? { upload: o.unfinished.upload } : undefined);
    } catch (err) {
      if (err instanceof DbflowError) throw err;
      throw new RepositoryError(
        `the ${storage.scheme} storage could not delete "${o.url}": ${(err as Error).message}; prune stopped there.`,
        { cause: err },
      );
    }
    deleted.push(o);
    onDelete(o.url);
  };
  for (const b of plan.remove) {
    const manifest = b.objects.find((o) => o.url === `${b.url}/${MANIFEST_NAME}`);
    if (manifest) await remove(manifest);
    for (const o of b.objects) if (o !== manifest) await remove(o);
  }
  for (const { orphan, remove: gone } of plan.orphans) {
    if (!gone) continue;
    // A run may have started writing here, or published, since the listing.
    const storage = scope.storage(orphan.folder);
    const now = await storage.list(`${orphan.folder}/`);
    const published = !orphan.inBackup && now.some((o) => o.url === `${orphan.folder}/${MANIFEST_NAME}`);
    const leased =
      now.some((o) => o.url === `${orphan.folder}/${RUN_LEASE_NAME}`) && (await readLease(storage, orphan.folder, new Date())).alive;
    if (published || leased) {
      spared.push(orphan.folder);
      continue;
    }
    for (const o of orphan.objects) await remove(o);
  }
  return { deleted, spared };
}

/** 90061000 → "1d1h"; 7200000 → "2h"; 90000 → "1m30s". */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join('');
}
