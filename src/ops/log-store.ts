// Storing one log file: its bytes through the archive's encoders (the compress and encrypt steps) into the storage, then its record.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline as streamPipeline, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactLayer, LogFile, Storage } from '../plugins/types.js';
import { pieceName, putJson, recordName, type LogRecord } from '../repo/log-archive.js';

/** One layer of the archive's encoding: a transform step run on `input`, with the layer it writes. */
export type Encoder = (input: Readable) => Promise<{ output: Readable; layer: ArtifactLayer }>;

/** What the raw bytes of a file are: size, sha256, and how far its content reaches (a partial is padded with zeros). */
export interface RawDigest {
  bytes: number;
  sha256: string;
  /** Bytes up to the last non-zero byte. */
  written: number;
}

/**
 * A transform that hashes and counts what passes; `digest()` once it has ended. `running`, when given, hashes the
 * same bytes too (a whole file stored in parts: its hash goes on from part to part).
 */
function tap(running?: Hash): Transform & { digest: () => RawDigest; hash: Hash } {
  const own = createHash('sha256');
  const whole = running?.copy();
  let bytes = 0;
  let written = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      own.update(chunk);
      whole?.update(chunk);
      for (let i = chunk.length - 1; i >= 0; i--)
        if (chunk[i] !== 0) {
          written = bytes + i + 1;
          break;
        }
      bytes += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { digest: () => RawDigest; hash: Hash };
  t.hash = whole ?? own;
  t.digest = () => ({ bytes, sha256: own.copy().digest('hex'), written });
  return t;
}

/** The raw digest of a local file. */
export async function digestFile(file: string, signal: AbortSignal): Promise<RawDigest> {
  const t = tap();
  await pipeline(
    createReadStream(file),
    t,
    async (s: AsyncIterable<unknown>) => {
      for await (const _ of s); // drain
    },
    { signal },
  );
  return t.digest();
}

/** Where a log file goes: the system folder, the file, the encoding's suffix, and how to say the position it reaches. */
export interface StoreTarget {
  storage: Storage;
  folder: string;
  system: string;
  driver: string;
  suffix: string;
  encoders: readonly Encoder[];
  position?: (file: LogFile, bytes: number) => string;
  signal: AbortSignal;
}

/** What was stored of an open file: its record, and how far the stored bytes reach (with their running hash). */
export interface StoredOpen {
  record: LogRecord;
  /** Raw bytes stored, from the file's start. */
  size: number;
  /** The sha256 state over those bytes, to go on from. */
  hash: Hash;
  /** The bytes up to the last non-zero one (what the position is said of). */
  reach: number;
}

// Encodes `source` through the archive's encoders and stores it as `<folder>/<object>`; the raw and stored digests.
async function putEncoded(
  target: StoreTarget,
  source: Readable,
  object: string,
  running?: Hash,
): Promise<{ raw: RawDigest; hash: Hash; stored: { bytes: number; sha256: string }; layers: ArtifactLayer[] }> {
  const raw = tap(running);
  const out = tap();
  let stream: Readable = raw;
  streamPipeline(source, raw, () => undefined); // a read error errors `raw`, and so the stored stream
  const layers: ArtifactLayer[] = [];
  for (const encode of target.encoders) {
    const r = await encode(stream);
    stream = r.output;
    layers.push(r.layer);
  }
  const body = stream.pipe(out);
  stream.on('error', (err) => out.destroy(err));
  const put = await target.storage.put(`${target.folder}/${object}`, body, { signal: target.signal });
  const stored = out.digest();
  if (put.bytes !== stored.bytes)
    throw new Error(`internal: the storage wrote ${put.bytes} bytes of "${object}", ${stored.bytes} were sent.`);
  return { raw: raw.digest(), hash: raw.hash, stored: { bytes: stored.bytes, sha256: stored.sha256 }, layers };
}

/**
 * Encodes the spool file at `path` and stores it whole as `<folder>/<stored name><suffix>`, then its record; returns
 * the record, and for an open file what was stored of it (so that an append-only log's next flush stores only what follows).
 */
export async function storeLogFile(target: StoreTarget, path: string, file: LogFile): Promise<{ record: LogRecord; open: StoredOpen }> {
  const stored = file.kind === 'partial' ? `${file.name}.partial` : file.name;
  const object = `${stored}${target.suffix}`;
  const { raw, hash, stored: out, layers } = await putEncoded(target, createReadStream(path), object);
  const reach = file.kind === 'partial' ? raw.written : raw.bytes;
  const record: LogRecord = {
    format: 1,
    file: stored,
    kind: file.kind,
    timeline: file.timeline,
    object,
    bytes: out.bytes,
    sha256: out.sha256,
    raw: { bytes: raw.bytes, sha256: raw.sha256 },
    layers,
    ...(target.position && file.kind !== 'history' && { position: target.position(file, reach) }),
    archived_at: new Date().toISOString(),
    system: target.system,
    driver: target.driver,
  };
  await putJson(target.storage, `${target.folder}/${recordName(stored)}`, record, target.signal);
  return { record, open: { record, size: raw.bytes, hash, reach } };
}

/**
 * Stores the bytes an append-only open file grew by since `open` (up to `size`) as one more piece, then its record
 * (listing every piece, and the whole file's size and sha256); returns what is now stored of it.
 */
export async function storeLogPiece(target: StoreTarget, path: string, file: LogFile, open: StoredOpen, size: number): Promise<StoredOpen> {
  const offset = open.size;
  const object = pieceName(open.record.file, offset, target.suffix);
  const piece = await putEncoded(target, createReadStream(path, { start: offset, end: size - 1 }), object, open.hash);
  const before = open.record.pieces ?? [
    {
      object: open.record.object,
      offset: 0,
      bytes: open.record.bytes,
      sha256: open.record.sha256,
      raw: open.record.raw,
      layers: open.record.layers,
    },
  ];
  const whole = offset + piece.raw.bytes;
  const reach = piece.raw.written > 0 ? offset + piece.raw.written : open.reach;
  const record: LogRecord = {
    ...open.record,
    pieces: [
      ...before,
      { object, offset, ...piece.stored, raw: { bytes: piece.raw.bytes, sha256: piece.raw.sha256 }, layers: piece.layers },
    ],
    raw: { bytes: whole, sha256: piece.hash.copy().digest('hex') },
    ...(target.position && { position: target.position(file, reach) }),
    archived_at: new Date().toISOString(),
  };
  await putJson(target.storage, `${target.folder}/${recordName(record.file)}`, record, target.signal);
  return { record, size: whole, hash: piece.hash, reach };
}
