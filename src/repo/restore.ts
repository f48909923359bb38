// The reverse chain of a stored artifact: read → check size and sha256 → decode each layer.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors.js';
import type { ArtifactRecord, Codec, DecodeKeys, StepContext, Storage, TableCounts } from '../plugins/types.js';

/** Where decodeArtifact finds storages and codecs (a StepContext fits). */
export interface DecodeScope {
  storage(url: string): Storage;
  codec(name: string): Codec;
  /** Runs the decoders' programs (a step's `ctx.exec`: killed on cancel, no secrets in their environment). */
  exec?: StepContext<unknown>['exec'];
}

/**
 * The plaintext dump of a stored artifact, as a stream. The stream fails at its end when the stored
 * object's size or sha256 differ from the record, or when a decoder's integrity check fails: a
 * consumer must treat what it read as untrusted until the stream has ended without error.
 */
export async function decodeArtifact(scope: DecodeScope, artifact: ArtifactRecord, keys: DecodeKeys): Promise<{ stream: Readable; parts: Readable[] }> {
  const stored = await scope.storage(artifact.url).get(artifact.url);
  const parts: Readable[] = [stored];
  let stream: Readable = stored.pipe(checkDigest(artifact));
  stored.on('error', (err) => stream.destroy(err));
  parts.push(stream);
  for (const layer of [...artifact.layers].reverse()) {
    const decoder = await scope.codec(layer.codec).decode(keys, layer, scope.exec);
    const prev = stream;
    prev.on('error', (err) => decoder.destroy(err));
    stream = prev.pipe(decoder);
    parts.push(stream);
  }
  return { stream, parts };
}

function checkDigest(artifact: ArtifactRecord): Transform {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      bytes += chunk.length;
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      const sha = hash.digest('hex');
      if (bytes !== artifact.bytes) return done(new IntegrityError(`${artifact.url}: stored object is ${bytes} bytes, the manifest says ${artifact.bytes}.`));
      if (sha !== artifact.sha256) return done(new IntegrityError(`${artifact.url}: sha256 is ${sha}, the manifest says ${artifact.sha256}.`));
      done();
    },
  });
}

/** One table whose restored count (or checksum) differs from the snapshot's. */
export interface CountDiff {
  table: string;
  expected?: number;
  actual?: number;
  checksum?: { expected?: string; actual?: string };
}

/** Table-by-table differences between the snapshot's counts and the restored ones. */
export function compareCounts(expected: TableCounts, actual: TableCounts, checksums: boolean): CountDiff[] {
  const diffs: CountDiff[] = [];
  for (const table of [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort()) {
    const e = expected[table];
    const a = actual[table];
    const rowsDiffer = e?.rows !== a?.rows;
    const sumDiffer = checksums && e?.checksum !== a?.checksum;
    if (rowsDiffer || sumDiffer) {
      diffs.push({
        table,
        ...(e && { expected: e.rows }),
        ...(a && { actual: a.rows }),
        ...(sumDiffer && { checksum: { ...(e?.checksum && { expected: e.checksum }), ...(a?.checksum && { actual: a.checksum }) } }),
      });
    }
  }
  return diffs;
}
