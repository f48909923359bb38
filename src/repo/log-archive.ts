// A log archive in a repository: `<to>/<system>/<file><suffix>` objects, each with `<file>.json` written after it, and a marker.
import { Readable } from 'node:stream';
import { RepositoryError } from '../errors.js';
import type { ArtifactLayer, EdgeStats, LogFile, Storage, StoredObject } from '../plugins/types.js';
import { readText } from './backup.js';

/** The object at the root of a log archive: says what it is, so that listing and prune leave the folder alone. */
export const ARCHIVE_MARKER = 'dbflow-archive.json';

/** The marker's content. */
export interface ArchiveMarker {
  format: 1;
  driver: string;
  pipeline: string;
  database: string;
}

/** The record stored next to each log object, after it: what `verify` checks the object against. */
export interface LogRecord {
  format: 1;
  /** The log file's name (`.partial` for the open segment). */
  file: string;
  kind: LogFile['kind'];
  timeline: number;
  /** The stored object's name, in the same folder. */
  object: string;
  /** Stored size and sha256. */
  bytes: number;
  sha256: string;
  /** The log file before any layer. */
  raw: Required<EdgeStats>;
  layers: ArtifactLayer[];
  /**
   * An open file of an append-only log stored in parts, in order: the first is `object` (its bytes from 0), each
   * later one the bytes the file grew by before a flush. `raw` is then the whole file's, the parts' concatenation.
   */
  pieces?: LogPiece[];
  /** The log position the stored content reaches (a partial: up to its last written byte). */
  position?: string;
  archived_at: string;
  system: string;
  driver: string;
}

/** One stored part of an open file: its raw bytes from `offset`, as an object of their own. */
export interface LogPiece {
  object: string;
  offset: number;
  bytes: number;
  sha256: string;
  raw: Required<EdgeStats>;
  layers: ArtifactLayer[];
}

/** Every object a record stands for: its object, or each of its pieces'. */
export function recordObjects(record: LogRecord): Pick<LogPiece, 'object' | 'bytes' | 'sha256'>[] {
  return record.pieces ?? [record];
}

/** The start of the names of an open file's later pieces (`binlog.000042.partial.at`). */
export function piecePrefix(file: string): string {
  return `${file}.at`;
}

/** The name of the object holding an open file's bytes from `offset` on (a later piece). */
export function pieceName(file: string, offset: number, suffix: string): string {
  return `${piecePrefix(file)}${offset}${suffix}`;
}

/** The record's name for a log file name (`000000010000000000000003.json`, `….partial.json`). */
export function recordName(file: string): string {
  return `${file}.json`;
}

/** A folder URL without trailing slashes. */
export function folderUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

/** The newest records of a system's folder, by file name; objects as listed, by URL. */
export interface ArchiveListing {
  folder: string;
  records: Map<string, StoredObject>;
  objects: Map<string, StoredObject>;
}

/** Lists `<root>/<system>/`: record objects by file name, every object by URL. */
export async function listArchive(storage: Storage, folder: string): Promise<ArchiveListing> {
  const all = await storage.list(`${folder}/`, { modified: true });
  const records = new Map<string, StoredObject>();
  const objects = new Map<string, StoredObject>();
  for (const o of all) {
    objects.set(o.url, o);
    const name = o.url.slice(folder.length + 1);
    if (!name.includes('/') && name.endsWith('.json')) records.set(name.slice(0, -'.json'.length), o);
  }
  return { folder, records, objects };
}

/** Reads and checks one record. */
export async function readRecord(storage: Storage, url: string): Promise<LogRecord> {
  const text = await readText(storage, url, 1 << 20);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new RepositoryError(`the log record "${url}" is not JSON.`);
  }
  const r = data as Partial<LogRecord>;
  if (
    r.format !== 1 ||
    typeof r.file !== 'string' ||
    typeof r.object !== 'string' ||
    typeof r.sha256 !== 'string' ||
    typeof r.bytes !== 'number'
  )
    throw new RepositoryError(`the log record "${url}" is not a dbflow log record (format 1).`);
  return r as LogRecord;
}

/** Writes a small JSON object. */
export async function putJson(storage: Storage, url: string, value: unknown, signal: AbortSignal): Promise<void> {
  await storage.put(url, Readable.from([Buffer.from(`${JSON.stringify(value, null, 2)}\n`)]), { signal });
}

/** The marker at `root`, or undefined when there is none. */
export async function readMarker(storage: Storage, root: string): Promise<ArchiveMarker | undefined> {
  const found = await storage.list(`${root}/${ARCHIVE_MARKER}`);
  if (!found.some((o) => o.url === `${root}/${ARCHIVE_MARKER}`)) return undefined;
  return JSON.parse(await readText(storage, `${root}/${ARCHIVE_MARKER}`, 1 << 16)) as ArchiveMarker;
}
