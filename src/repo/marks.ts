// Recovery marks in a repository: `<repo>/dbflow-marks/<name>.json`, one record per mark, written once it was taken.
import { RepositoryError } from '../errors.js';
import type { MarkPosition, Storage } from '../plugins/types.js';
import { readText } from './backup.js';
import { putJson } from './log-archive.js';

/** The folder of a repository that holds its marks (neither backups nor orphans: never listed as such). */
export const MARKS_FOLDER = 'dbflow-marks';

/** One participant of a mark: its driver, barrier, and where the mark stands in its log. */
export interface MarkedDatabase {
  driver: string;
  method: string;
  position: MarkPosition;
  /** How long its commits were blocked. */
  held_ms: number;
}

/** A recovery mark: the same point recorded in every participant's log while all their barriers were held. */
export interface MarkRecord {
  format: 1;
  /** `dbflow_mark_<UTC time>`: also the PostgreSQL restore point's name. */
  name: string;
  pipeline: string;
  /** When every barrier was held (the mark's instant). */
  time: string;
  participants: Record<string, MarkedDatabase>;
  /** The longest time commits were blocked on any participant. */
  blocked_ms: number;
  attempts: number;
}

/** A mark's name for its instant: `dbflow_mark_20261206T042342123Z` (sorts as time does). */
export function markName(at: Date): string {
  return `dbflow_mark_${at.toISOString().replace(/[-:.]/g, '')}`;
}

/** Where a mark's record is stored. */
export function markUrl(repo: string, name: string): string {
  return `${repo.replace(/\/+$/, '')}/${MARKS_FOLDER}/${name}.json`;
}

/** Stores a mark's record (atomically, as every object). */
export async function writeMark(storage: Storage, repo: string, record: MarkRecord, signal: AbortSignal): Promise<string> {
  const url = markUrl(repo, record.name);
  await putJson(storage, url, record, signal);
  return url;
}

/** Every mark of the repository, oldest first; a record that cannot be read is reported, not skipped silently. */
export async function listMarks(
  storage: Storage,
  repo: string,
): Promise<{ marks: MarkRecord[]; unreadable: { url: string; problem: string }[] }> {
  const prefix = `${repo.replace(/\/+$/, '')}/${MARKS_FOLDER}/`;
  const objects = (await storage.list(prefix)).filter((o) => o.url.endsWith('.json') && !o.url.slice(prefix.length).includes('/'));
  const marks: MarkRecord[] = [];
  const unreadable: { url: string; problem: string }[] = [];
  for (const o of objects.sort((a, b) => (a.url < b.url ? -1 : 1))) {
    try {
      marks.push(parseMark(await readText(storage, o.url, 1 << 20), o.url));
    } catch (err) {
      unreadable.push({ url: o.url, problem: (err as Error).message });
    }
  }
  return { marks, unreadable };
}

function parseMark(text: string, url: string): MarkRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new RepositoryError(`the mark record "${url}" is not JSON.`);
  }
  const r = data as Partial<MarkRecord>;
  if (r.format !== 1 || typeof r.name !== 'string' || typeof r.time !== 'string' || typeof r.participants !== 'object' || !r.participants)
    throw new RepositoryError(`the mark record "${url}" is not a dbflow mark (format 1).`);
  return r as MarkRecord;
}
