// What a base backup can restore to: from its own point to the newest log its archive holds without a gap after it.
import type { DatabaseDriver, StoredObject } from '../plugins/types.js';
import type { StorageScope } from './backup.js';
import { listArchive, readMarker } from './log-archive.js';
import type { ListedBackup } from './repository.js';

/** The times one base backup can be restored to. */
export interface RestorableRange {
  database: string;
  /** When its run finished: `restore --to-time` takes it for targets from then on. */
  from: string;
  /** When the newest log file reachable from it without a gap was stored; `from` without an archive. */
  to: string;
  /** The archive folder of its cluster, when there is one. */
  wal?: string;
  /** The first file missing after it, which ends the range early. */
  gap?: string;
}

/**
 * The restorable range of each base backup in `backups` (by backup URL), with the log archive at `walRoot` (the
 * `wal` folder beside them, as `archive:` pipelines keep it). Backups without a base backup are left out.
 */
export async function restorableRanges(
  scope: StorageScope,
  backups: readonly ListedBackup[],
  walRoot: string,
  drivers: ReadonlyMap<string, DatabaseDriver>,
): Promise<Map<string, RestorableRange>> {
  const ranges = new Map<string, RestorableRange>();
  const storage = scope.storage(walRoot);
  const archived = (await readMarker(storage, walRoot)) !== undefined;
  const folders = new Map<string, Awaited<ReturnType<typeof listArchive>>>();
  for (const b of backups) {
    const m = b.manifest;
    if (!m || b.missing.length) continue;
    for (const a of m.artifacts) {
      const driver = drivers.get(m.databases[a.database]?.driver ?? '');
      const system = a.position?.system_identifier;
      const first = (a.position?.wal as { first?: unknown } | undefined)?.first;
      if (!driver?.physicalFormats?.includes(a.format) || typeof system !== 'string' || typeof first !== 'string') continue;
      const range: RestorableRange = { database: a.database, from: m.run.finished_at, to: m.run.finished_at };
      ranges.set(b.url, range);
      if (!archived || !driver.logArchive) continue;
      const folder = `${walRoot}/${system}`;
      let listing = folders.get(folder);
      if (!listing) folders.set(folder, (listing = await listArchive(storage, folder)));
      const files = [...listing.records.keys()].filter((f) => {
        const file = driver.logArchive!.classify(f);
        return file !== undefined && (file.kind === 'history' || file.name >= first);
      });
      if (!files.length) continue;
      range.wal = folder;
      const gap = driver.logArchive.gaps(files.map((f) => f.replace(/\.partial$/, '')))[0];
      if (gap) range.gap = gap.missing;
      const reachable = files.filter((f) => !gap || f.replace(/\.partial$/, '') <= gap.after);
      const newest = reachable
        .map((f) => listing.records.get(f)?.modified)
        .filter((t): t is string => t !== undefined)
        .sort()
        .at(-1);
      if (newest && newest > range.to) range.to = newest;
    }
  }
  return ranges;
}

/** Log files that no kept base backup needs, in one system's folder of the archive. */
export interface UnneededLog {
  folder: string;
  /** The first segment a kept base backup needs: everything before it goes. */
  keepFrom: string;
  /** Records first, then the files they describe (a record never outlives its file). */
  objects: StoredObject[];
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{16})/;

/**
 * The segments (and partials) of each system's folder under `walRoot` that come before the first segment of every
 * kept base backup of that system, on its timeline or an earlier one: recovery from a kept base never reads them.
 * History files stay; a system with no kept base backup is left whole.
 */
export async function unneededLog(
  scope: StorageScope,
  kept: readonly ListedBackup[],
  walRoot: string,
  drivers: ReadonlyMap<string, DatabaseDriver>,
): Promise<UnneededLog[]> {
  const storage = scope.storage(walRoot);
  if ((await readMarker(storage, walRoot)) === undefined) return [];
  // Per system, the kept base backup that starts earliest.
  const earliest = new Map<string, string>();
  for (const b of kept) {
    const m = b.manifest;
    if (!m) continue;
    for (const a of m.artifacts) {
      const system = a.position?.system_identifier;
      const first = (a.position?.wal as { first?: unknown } | undefined)?.first;
      if (!drivers.get(m.databases[a.database]?.driver ?? '')?.physicalFormats?.includes(a.format)) continue;
      if (typeof system !== 'string' || typeof first !== 'string' || !SEGMENT.test(first)) continue;
      const known = earliest.get(system);
      if (known === undefined || first.slice(8) < known.slice(8)) earliest.set(system, first);
    }
  }
  const out: UnneededLog[] = [];
  for (const [system, keepFrom] of earliest) {
    const folder = `${walRoot}/${system}`;
    const listing = await listArchive(storage, folder);
    const [, timeline, position] = SEGMENT.exec(keepFrom)!;
    const before = [...listing.objects.values()].filter((o) => {
      const name = o.url.slice(folder.length + 1);
      const m = SEGMENT.exec(name);
      return !name.includes('/') && m !== null && m[1]! <= timeline! && m[2]! < position!;
    });
    const isRecord = (o: StoredObject): boolean => o.url.endsWith('.json');
    if (before.length) out.push({ folder, keepFrom, objects: [...before.filter(isRecord), ...before.filter((o) => !isRecord(o))] });
  }
  return out;
}
