// Log files of an archive fetched back for a server's recovery: decoded, checked, written whole.
import { createHash } from 'node:crypto';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '../errors.js';
import type { DecodeKeys, LogArchive } from '../plugins/types.js';
import { listArchive, readRecord, recordName } from './log-archive.js';
import { readArtifact } from './read-artifact.js';
import type { DecodeScope } from './restore.js';

/** What fetching found: the file, its open (partial) segment standing in for it, or nothing. */
export type FetchOutcome = 'stored' | 'partial' | 'missing';

/**
 * Writes log file `file` of the system folder `folder` to `dest`, decoded and checked against its record (the
 * stored object's size and sha256, every layer's integrity check, the raw file's size and sha256). A segment that
 * was not stored whole yet comes from its partial (the open segment, as far as it was received: recovery reads
 * up to its last complete record). `dest` appears only whole (written beside it, then renamed). A file the archive
 * does not hold is `missing`; a damaged one is an error.
 */
async function fetchLogFile(
  scope: DecodeScope,
  folder: string,
  file: string,
  dest: string,
  keys: DecodeKeys,
  signal: AbortSignal,
): Promise<FetchOutcome> {
  const storage = scope.storage(folder);
  const listed = new Set((await storage.list(`${folder}/${file}`, { signal })).map((o) => o.url.slice(folder.length + 1)));
  const name = listed.has(recordName(file)) ? file : listed.has(recordName(`${file}.partial`)) ? `${file}.partial` : undefined;
  if (!name) return 'missing';
  const record = await readRecord(storage, `${folder}/${recordName(name)}`);
  // Each stored part checked on its own (object, layers, raw bytes), then, for an open file stored in pieces, the
  // whole they make against the record's raw size and sha256.
  const parts = record.pieces ?? [record];
  const whole = createHash('sha256');
  let bytes = 0;
  const count = (): Transform =>
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        whole.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
  const partial = path.join(path.dirname(dest), `.${path.basename(dest)}.dbflow-partial`);
  try {
    for (const part of parts) {
      const artifact = {
        database: record.system,
        url: `${folder}/${part.object}`,
        bytes: part.bytes,
        sha256: part.sha256,
        format: record.kind,
        layers: part.layers,
        raw: part.raw,
      };
      await readArtifact(scope, artifact, keys, (raw) => pipeline(raw, count(), createWriteStream(partial, { mode: 0o600, flags: 'a' })), {
        signal,
        settleDigest: true,
      });
    }
    if (record.pieces && (bytes !== record.raw.bytes || whole.digest('hex') !== record.raw.sha256))
      throw new IntegrityError(
        `${folder}/${recordName(name)}: its ${parts.length} pieces make ${bytes} bytes that differ from the file it records (${record.raw.bytes} bytes, sha256 ${record.raw.sha256}).`,
      );
    renameSync(partial, dest);
  } finally {
    rmSync(partial, { force: true });
  }
  return name === file ? 'stored' : 'partial';
}

/**
 * Fetches into the folder `dir` every file of the archive's system folder `folder` that recovery starting in log
 * file `first` reads (`archive.reads`), a file that was not stored whole from its partial. Each is checked
 * (fetchLogFile); `onFile` hears of each. Returns the names fetched, in order.
 */
export async function fetchLogFrom(
  scope: DecodeScope,
  archive: Pick<LogArchive, 'reads'>,
  folder: string,
  first: string,
  dir: string,
  keys: DecodeKeys,
  signal: AbortSignal,
  onFile?: (file: string, outcome: FetchOutcome) => void,
): Promise<string[]> {
  const listing = await listArchive(scope.storage(folder), folder);
  const names = new Set<string>();
  for (const name of listing.records.keys()) {
    const file = name.endsWith('.partial') ? name.slice(0, -'.partial'.length) : name;
    if (archive.reads(first, file)) names.add(file);
  }
  const fetched = [...names].sort();
  for (const file of fetched) {
    const outcome = await fetchLogFile(scope, folder, file, path.join(dir, file), keys, signal);
    onFile?.(file, outcome);
  }
  return fetched;
}
