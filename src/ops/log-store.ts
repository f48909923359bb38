// Storing one log file: its bytes through the archive's encoders (the compress and encrypt steps) into the storage, then its record.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline as streamPipeline, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactLayer, LogFile, Storage } from '../plugins/types.js';
import { putJson, recordName, type LogRecord } from '../repo/log-archive.js';

/** One layer of the archive's encoding: a transform step run on `input`, with the layer it writes. */
export type Encoder = (input: Readable) => Promise<{ output: Readable; layer: ArtifactLayer }>;

/** What the raw bytes of a file are: size, sha256, and how far its content reaches (a partial is padded with zeros). */
export interface RawDigest {
  bytes: number;
  sha256: string;
  /** Bytes up to the last non-zero byte. */
  written: number;
}

/** A transform that hashes and counts what passes; `digest()` once it has ended. */
function tap(): Transform & { digest: () => RawDigest } {
  const hash = createHash('sha256');
  let bytes = 0;
  let written = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      for (let i = chunk.length - 1; i >= 0; i--)
        if (chunk[i] !== 0) {
          written = bytes + i + 1;
          break;
        }
      bytes += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { digest: () => RawDigest };
  t.digest = () => ({ bytes, sha256: hash.digest('hex'), written });
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

/** Encodes the spool file at `path` and stores it as `<folder>/<stored name><suffix>`, then its record; returns the record. */
export async function storeLogFile(target: StoreTarget, path: string, file: LogFile): Promise<LogRecord> {
  const stored = file.kind === 'partial' ? `${file.name}.partial` : file.name;
  const object = `${stored}${target.suffix}`;
  const raw = tap();
  const out = tap();
  let stream: Readable = raw;
  streamPipeline(createReadStream(path), raw, () => undefined); // a read error errors `raw`, and so the stored stream
  const layers: ArtifactLayer[] = [];
  for (const encode of target.encoders) {
    const r = await encode(stream);
    stream = r.output;
    layers.push(r.layer);
  }
  const body = stream.pipe(out);
  stream.on('error', (err) => out.destroy(err));
  const put = await target.storage.put(`${target.folder}/${object}`, body, { signal: target.signal });
  const rawDigest = raw.digest();
  const outDigest = out.digest();
  if (put.bytes !== outDigest.bytes)
    throw new Error(`internal: the storage wrote ${put.bytes} bytes of "${object}", ${outDigest.bytes} were sent.`);
  const reach = file.kind === 'partial' ? rawDigest.written : rawDigest.bytes;
  const record: LogRecord = {
    format: 1,
    file: stored,
    kind: file.kind,
    timeline: file.timeline,
    object,
    bytes: outDigest.bytes,
    sha256: outDigest.sha256,
    raw: { bytes: rawDigest.bytes, sha256: rawDigest.sha256 },
    layers,
    ...(target.position && file.kind !== 'history' && { position: target.position(file, reach) }),
    archived_at: new Date().toISOString(),
    system: target.system,
    driver: target.driver,
  };
  await putJson(target.storage, `${target.folder}/${recordName(stored)}`, record, target.signal);
  return record;
}
