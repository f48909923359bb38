// The reverse chain of a stored artifact: read → check size and sha256 → decode each layer.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors.js';
import type { ArtifactRecord, Codec, DecodeKeys, EdgeStats, StepContext, Storage, TableCounts } from '../plugins/types.js';

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
 * `parts` are the stages in order (the stored object, its digest check, each decoder); `checked` is
 * the digest check: read on its own, it tells whether the stored object itself is intact. `signal` aborts the read.
 */
export async function decodeArtifact(
  scope: DecodeScope,
  artifact: ArtifactRecord,
  keys: DecodeKeys,
  signal?: AbortSignal,
): Promise<{ stream: Readable; parts: Readable[]; checked: Readable }> {
  const stored = await scope.storage(artifact.url).get(artifact.url, signal && { signal });
  const checked = stored.pipe(
    digestCheck(
      artifact,
      (got) =>
        new IntegrityError(
          got.bytes !== artifact.bytes
            ? `${artifact.url}: stored object is ${got.bytes} bytes, the manifest says ${artifact.bytes}.`
            : `${artifact.url}: sha256 is ${got.sha256}, the manifest says ${artifact.sha256}.`,
        ),
    ),
  );
  const parts: Readable[] = [stored, checked];
  let stream: Readable = checked;
  stored.on('error', (err) => stream.destroy(err));
  try {
    for (const layer of [...artifact.layers].reverse()) {
      const decoder = await scope.codec(layer.codec).decode({ keys, layer, exec: scope.exec });
      const prev = stream;
      prev.on('error', (err) => decoder.destroy(err));
      stream = prev.pipe(decoder);
      parts.push(stream);
    }
  } catch (err) {
    // A decoder that cannot start (no key, no program): nothing is left open.
    for (const p of parts) p.destroy();
    throw err;
  }
  return { stream, parts, checked };
}

/**
 * A pass-through that counts and hashes the bytes; at its end it reports them to `done`, and fails
 * with the error `mismatch` makes when they differ from `expected` (without `expected`, it only counts).
 */
export function digestCheck(
  expected: EdgeStats | undefined,
  mismatch: (got: EdgeStats) => Error,
  hooks: { onBytes?: (bytes: number) => void; done?: (got: EdgeStats) => void } = {},
): Transform {
  // A record of the size alone (the compressor's checksum covered the bytes) is checked without hashing.
  const hash = expected !== undefined && expected.sha256 === undefined ? undefined : createHash('sha256');
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      bytes += chunk.length;
      hash?.update(chunk);
      hooks.onBytes?.(bytes);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      const got = { bytes, ...(hash && { sha256: hash.digest('hex') }) };
      hooks.done?.(got);
      if (expected && (got.bytes !== expected.bytes || (expected.sha256 !== undefined && got.sha256 !== expected.sha256)))
        return done(mismatch(got));
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
