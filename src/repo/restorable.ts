// What a base can restore to: from its own point to the newest log its archive holds without a gap after it. A base is
// a physical backup (a PostgreSQL or MariaDB base backup) or a dump whose driver can replay its log from the position
// it recorded.
import type { DatabaseDriver, LogArchive, StoredObject } from '../plugins/types.js';
import type { StorageScope } from './backup.js';
import { listArchive, readMarker, type ArchiveListing } from './log-archive.js';
import { archiveSystems } from './log-verify.js';
import type { ListedBackup } from './repository.js';

/** The times one base can be restored to. */
export interface RestorableRange {
  database: string;
  /** When its run finished: `restore --to-time` takes it for targets from then on. */
  from: string;
  /** When the newest log file reachable from it without a gap was stored; `from` without an archive. */
  to: string;
  /** The archive folder of its server, when there is one. */
  wal?: string;
  /** The first file missing after it, which ends the range early. */
  gap?: string;
}

/** A base in a backup: the database, its driver's log archive, and the log file its recovery starts in. */
export interface LogBase {
  database: string;
  archive: LogArchive;
  first: string;
  /** The archive's folder name for its server, when the backup recorded it (PostgreSQL's system identifier). */
  system?: string;
}

/** The bases of a backup's manifest. */
export function basesOf(
  b: ListedBackup,
  drivers: ReadonlyMap<string, DatabaseDriver>,
): (LogBase | { database: string; archive?: undefined })[] {
  const m = b.manifest;
  if (!m) return [];
  const out: (LogBase | { database: string; archive?: undefined })[] = [];
  for (const [database, entry] of Object.entries(m.databases)) {
    const driver = drivers.get(entry.driver);
    const physical = m.artifacts.find((a) => a.database === database && driver?.physicalFormats?.includes(a.format));
    const system = physical?.position?.system_identifier;
    const first = (physical?.position?.wal as { first?: unknown } | undefined)?.first;
    if (typeof system === 'string' && typeof first === 'string') {
      out.push(driver!.logArchive ? { database, archive: driver!.logArchive, first, system } : { database });
      continue;
    }
    // A base that records its position in a log the driver replays itself: a dump, or a MariaDB base backup.
    const start =
      driver?.logArchive?.startOf && driver.logArchive.replay ? driver.logArchive.startOf(physical?.position ?? entry.position) : undefined;
    if (start) out.push({ database, archive: driver!.logArchive!, first: start.file });
  }
  return out;
}

/** The archive's listings of its server folders, read once each. */
export class ArchiveFolders {
  private readonly listings = new Map<string, ArchiveListing>();
  private systems?: string[];
  constructor(
    private readonly scope: StorageScope,
    readonly root: string,
  ) {}

  async listing(system: string): Promise<ArchiveListing> {
    const folder = `${this.root}/${system}`;
    let l = this.listings.get(folder);
    if (!l) this.listings.set(folder, (l = await listArchive(this.scope.storage(this.root), folder)));
    return l;
  }

  /** The folder of a base's server: the one it recorded, else the one folder that holds its first file. */
  async of(base: LogBase): Promise<ArchiveListing | undefined> {
    const found = await this.holding(base);
    return found.length === 1 ? found[0] : undefined;
  }

  /** The folders that may be a base's: the one it recorded, else those that hold its first file. */
  async holding(base: LogBase): Promise<ArchiveListing[]> {
    if (base.system !== undefined) return [await this.listing(base.system)];
    this.systems ??= await archiveSystems(this.scope.storage(this.root), this.root);
    const holding: ArchiveListing[] = [];
    for (const s of this.systems) {
      const l = await this.listing(s);
      if (l.records.has(base.first) || l.records.has(`${base.first}.partial`)) holding.push(l);
    }
    return holding;
  }
}

/**
 * The restorable range of each base in `backups` (by backup URL), with the log archive at `walRoot` (the `wal`
 * folder beside them, as `archive:` pipelines keep it). Backups without a base are left out.
 */
export async function restorableRanges(
  scope: StorageScope,
  backups: readonly ListedBackup[],
  walRoot: string,
  drivers: ReadonlyMap<string, DatabaseDriver>,
): Promise<Map<string, RestorableRange>> {
  const ranges = new Map<string, RestorableRange>();
  const archived = (await readMarker(scope.storage(walRoot), walRoot)) !== undefined;
  const folders = new ArchiveFolders(scope, walRoot);
  for (const b of backups) {
    const m = b.manifest;
    if (!m || b.missing.length) continue;
    for (const base of basesOf(b, drivers)) {
      const range: RestorableRange = { database: base.database, from: m.run.finished_at, to: m.run.finished_at };
      if (!base.archive) {
        ranges.set(b.url, range);
        continue;
      }
      const listing = archived ? await folders.of(base) : undefined;
      // A dump is a base only with its log: without an archive, it restores to its own point, as any dump.
      if (!listing && !base.system) continue;
      ranges.set(b.url, range);
      if (!listing) continue;
      const files = [...listing.records.keys()].filter((f) => {
        const file = base.archive.classify(f);
        return file !== undefined && (file.kind === 'history' || base.archive.reads(base.first, file.name));
      });
      if (!files.length) continue;
      range.wal = listing.folder;
      const gap = base.archive.gaps(files)[0];
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

/** Log files that no kept base needs, in one server's folder of the archive. */
export interface UnneededLog {
  folder: string;
  /** The first log file a kept base needs: every file before it goes. */
  keepFrom: string;
  /** Records first, then the files they describe (a record never outlives its file). */
  objects: StoredObject[];
}

/**
 * The log files (and partials) of each server folder under `walRoot` that no kept base reads: recovery from a kept
 * base never asks for them. History files stay; a folder with no kept base is left whole; nothing is removed while a
 * kept base's folder cannot be told.
 */
export async function unneededLog(
  scope: StorageScope,
  kept: readonly ListedBackup[],
  walRoot: string,
  drivers: ReadonlyMap<string, DatabaseDriver>,
): Promise<UnneededLog[]> {
  if ((await readMarker(scope.storage(walRoot), walRoot)) === undefined) return [];
  const folders = new ArchiveFolders(scope, walRoot);
  const byFolder = new Map<string, { listing: ArchiveListing; bases: LogBase[] }>();
  for (const b of kept)
    for (const base of basesOf(b, drivers)) {
      if (!base.archive) continue;
      const found = await folders.holding(base);
      // A kept base whose first file is in several folders might need any of their files: remove none.
      if (found.length > 1) return [];
      const listing = found[0];
      if (!listing) continue;
      const entry = byFolder.get(listing.folder) ?? { listing, bases: [] };
      entry.bases.push(base);
      byFolder.set(listing.folder, entry);
    }
  const out: UnneededLog[] = [];
  for (const { listing, bases } of byFolder.values()) {
    const { archive } = bases[0]!;
    // The first file of the base whose recovery reads every other base's first file: the earliest.
    const keepFrom = (bases.find((b) => bases.every((o) => archive.reads(b.first, o.first))) ?? bases[0]!).first;
    const unneeded = [...listing.objects.values()].filter((o) => {
      const name = o.url.slice(listing.folder.length + 1);
      if (name.includes('/')) return false;
      const file = logFileOf(archive, name);
      return file !== undefined && file.kind !== 'history' && !bases.some((b) => archive.reads(b.first, file.name));
    });
    const isRecord = (o: StoredObject): boolean => o.url.endsWith('.json');
    if (unneeded.length)
      out.push({ folder: listing.folder, keepFrom, objects: [...unneeded.filter(isRecord), ...unneeded.filter((o) => !isRecord(o))] });
  }
  return out;
}

// The log file a stored object holds or describes (`<file>.json`, `<file><suffix>`, either with `.partial`): its
// name with the longest ending dropped that leaves a name the archive knows.
function logFileOf(archive: LogArchive, object: string): ReturnType<LogArchive['classify']> {
  for (let name = object; ;) {
    const file = archive.classify(name);
    if (file) return file;
    const dot = name.lastIndexOf('.');
    if (dot <= 0) return undefined;
    name = name.slice(0, dot);
  }
}
