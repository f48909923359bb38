// Whether a recovery mark can be reached: for each participant, a kept base that ends before the mark's point, and
// the archived log from that base's first file to the file holding the point, with no gap, stored that far.
import type { DatabaseDriver, MarkPosition } from '../plugins/types.js';
import type { StorageScope } from './backup.js';
import { readRecord, recordName } from './log-archive.js';
import { LSN, lsnValue } from './log-points.js';
import type { MarkRecord } from './marks.js';
import { ArchiveFolders, basesOf } from './restorable.js';
import type { ListedBackup } from './repository.js';

/** One participant's verdict: the base a restore would start from, or why none can reach the mark. */
export type MarkReach = { database: string; ok: true; base: string } | { database: string; ok: false; why: string };

// A binlog position `file:pos` as [file, pos].
const filePos = (v: string): [string, number] => [v.slice(0, v.lastIndexOf(':')), Number(v.slice(v.lastIndexOf(':') + 1))];

// -1, 0 or 1 as the point `at` (an LSN, or a binlog file:pos) is before, at or after `mark`'s; undefined when the two
// cannot be compared (another kind of log).
function compareToMark(at: string, mark: MarkPosition): number | undefined {
  if (typeof mark.lsn === 'string' && LSN.test(at)) return Math.sign(Number(lsnValue(at) - lsnValue(mark.lsn)));
  if (typeof mark.position === 'string' && at.includes(':')) {
    const [f, p] = filePos(at);
    const [mf, mp] = filePos(mark.position);
    return f === mf ? Math.sign(p - mp) : f < mf ? -1 : 1;
  }
  return undefined;
}
const atOrBefore = (at: string, mark: MarkPosition): boolean => (compareToMark(at, mark) ?? 1) <= 0;

// Where a base in a backup stands in its log (a PostgreSQL base's restore point, a MariaDB base's binlog position).
function baseEnd(b: ListedBackup, database: string, drivers: ReadonlyMap<string, DatabaseDriver>): string | undefined {
  const m = b.manifest!;
  const artifact = m.artifacts.find((a) => a.database === database);
  const point = artifact?.position?.restore_point_lsn;
  if (typeof point === 'string') return point;
  const start = drivers.get(m.databases[database]?.driver ?? '')?.logArchive?.startOf?.(m.databases[database]!.position);
  return start ? `${start.file}:${start.position}` : undefined;
}

/** The verdict of every participant of `mark`, with the kept `backups` and the log archive at `walRoot`. */
export async function markReach(
  scope: StorageScope,
  backups: readonly ListedBackup[],
  walRoot: string,
  drivers: ReadonlyMap<string, DatabaseDriver>,
  mark: MarkRecord,
): Promise<MarkReach[]> {
  const folders = new ArchiveFolders(scope, walRoot);
  const verdicts: MarkReach[] = [];
  for (const [database, p] of Object.entries(mark.participants)) {
    const position = p.position;
    // Bases of this database on this server (its archive folder), ending at or before the mark: the newest first.
    const candidates = backups.flatMap((b) =>
      b.manifest && !b.missing.length
        ? basesOf(b, drivers).flatMap((base) => {
            const end = base.archive && base.database === database ? baseEnd(b, database, drivers) : undefined;
            return base.archive && end !== undefined && atOrBefore(end, position) ? [{ b, base }] : [];
          })
        : [],
    );
    if (!candidates.length) {
      verdicts.push({ database, ok: false, why: `no kept base of "${database}" ends before the mark` });
      continue;
    }
    const listing = await folders.listing(position.system);
    let why = '';
    for (const { b, base } of candidates) {
      const archive = base.archive;
      const files = [...listing.records.keys()].filter((f) => {
        const file = archive.classify(f);
        return file !== undefined && (file.kind === 'history' || (archive.reads(base.first, file.name) && file.name <= position.file));
      });
      const gap = archive.gaps(files)[0];
      if (gap && gap.after < position.file) {
        why = `the archive lacks ${gap.missing} between base ${b.url} and the mark`;
        continue;
      }
      if (listing.records.has(position.file)) {
        verdicts.push({ database, ok: true, base: b.url });
        why = '';
        break;
      }
      if (!listing.records.has(`${position.file}.partial`)) {
        why = `the archive (${listing.folder}) does not hold ${position.file}, where the mark is`;
        break;
      }
      // Stored only in part so far: far enough?
      const record = await readRecord(scope.storage(walRoot), `${listing.folder}/${recordName(`${position.file}.partial`)}`);
      if (record.position !== undefined && (compareToMark(record.position, position) ?? -1) >= 0) {
        verdicts.push({ database, ok: true, base: b.url });
        why = '';
      } else why = `the archive holds ${position.file} only up to ${record.position ?? 'an unknown point'}, before the mark`;
      break;
    }
    if (why) verdicts.push({ database, ok: false, why });
  }
  return verdicts;
}

/**
 * The marks no kept base can reach any more: for some participant, no kept base ends at or before the mark (bases
 * taken later cannot recover to an earlier point). `prune` removes them with the bases.
 */
export function marksBeyondReach(
  marks: readonly MarkRecord[],
  kept: readonly ListedBackup[],
  drivers: ReadonlyMap<string, DatabaseDriver>,
): MarkRecord[] {
  return marks.filter((mark) =>
    Object.entries(mark.participants).some(
      ([database, p]) =>
        !kept.some((b) => {
          if (!b.manifest || b.missing.length || !(database in b.manifest.databases)) return false;
          const end = baseEnd(b, database, drivers);
          return end !== undefined && atOrBefore(end, p.position);
        }),
    ),
  );
}
