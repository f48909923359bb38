// Verifying a log archive: every record's object is there with its size and sha256, and no file is missing from the chain.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LogArchive, LogGap, Storage } from '../plugins/types.js';
import { ARCHIVE_MARKER, folderUrl, listArchive, readRecord, recordName, recordObjects, type LogRecord } from './log-archive.js';

/** One problem of one stored file. */
export interface LogProblem {
  file: string;
  message: string;
}

/** What verifying one system's folder found. */
export interface SystemVerdict {
  system: string;
  folder: string;
  files: number;
  bytes: number;
  /** The newest file of the chain. */
  newest?: string;
  problems: LogProblem[];
  gaps: LogGap[];
}

/** Which folder a verify URL names: an archive root (with its marker) or one system's folder below it; undefined for neither. */
export async function logArchiveAt(storage: Storage, url: string): Promise<{ root: string; systems?: string[] } | undefined> {
  const u = folderUrl(url);
  const here = await storage.list(`${u}/${ARCHIVE_MARKER}`);
  if (here.some((o) => o.url === `${u}/${ARCHIVE_MARKER}`)) return { root: u };
  const parent = u.slice(0, u.lastIndexOf('/'));
  const above = await storage.list(`${parent}/${ARCHIVE_MARKER}`);
  if (above.some((o) => o.url === `${parent}/${ARCHIVE_MARKER}`)) return { root: parent, systems: [u.slice(parent.length + 1)] };
  return undefined;
}

/** The system folders under an archive root. */
export async function archiveSystems(storage: Storage, root: string): Promise<string[]> {
  const all = await storage.list(`${root}/`);
  const systems = new Set<string>();
  for (const o of all) {
    const rest = o.url.slice(root.length + 1);
    if (rest.includes('/')) systems.add(rest.slice(0, rest.indexOf('/')));
  }
  return [...systems].sort();
}

/** Checks one system's folder: each record against its object (size, sha256), and the chain of file names. */
export async function verifySystem(
  storage: Storage,
  root: string,
  system: string,
  archive: Pick<LogArchive, 'gaps' | 'classify'>,
  signal: AbortSignal,
  onFile?: (record: LogRecord, problem?: string) => void,
): Promise<SystemVerdict> {
  const folder = `${root}/${system}`;
  const listing = await listArchive(storage, folder);
  const problems: LogProblem[] = [];
  let bytes = 0;
  const names = [...listing.records.keys()].filter((n) => archive.classify(n)).sort();
  for (const name of names) {
    let record: LogRecord;
    try {
      record = await readRecord(storage, `${folder}/${recordName(name)}`);
    } catch (err) {
      problems.push({ file: name, message: (err as Error).message });
      continue;
    }
    let problem: string | undefined;
    // Every object it stands for (the pieces of an open file stored in parts), each whole and as recorded.
    for (const part of recordObjects(record)) {
      const url = `${folder}/${part.object}`;
      const listed = listing.objects.get(url);
      if (!listed) problem = `its object ${url} is missing.`;
      else if (listed.bytes !== part.bytes) problem = `its object ${url} has ${listed.bytes} bytes, the record says ${part.bytes}.`;
      else {
        const hash = createHash('sha256');
        await pipeline(
          await storage.get(url, { signal }),
          new Writable({
            write(chunk: Buffer, _enc, done) {
              hash.update(chunk);
              done();
            },
          }),
          { signal },
        );
        const sha = hash.digest('hex');
        if (sha !== part.sha256) problem = `its object ${url} has sha256 ${sha}, the record says ${part.sha256}.`;
      }
      if (problem) break;
      bytes += part.bytes;
    }
    if (problem) problems.push({ file: name, message: problem });
    onFile?.(record, problem);
  }
  const chained = names.filter((n) => !problems.some((p) => p.file === n));
  const gaps = archive.gaps(chained);
  const newest = chained.filter((n) => archive.classify(n)?.kind !== 'history').at(-1);
  return { system, folder, files: names.length, bytes, ...(newest && { newest }), problems, gaps };
}
