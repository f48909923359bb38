// The `upload` step: stores a stream at a URL, or at several at once (one read, every copy written together), each
// atomically, and records the artifact with its copies.
import type { Readable } from 'node:stream';
import {
  DbflowError,
  defineStep,
  keyProblem,
  visibleUrl,
  type ArtifactCopy,
  type ArtifactLayer,
  type ArtifactRecord,
  type EdgeStats,
  type StepContext,
  type StoredObject,
} from '../../src/plugin-api.js';
import { fanOut } from './fan-out.js';

interface UploadWith {
  to: string | string[];
  storage?: Record<string, unknown>;
}

const URL_DESCRIPTION = 'a storage URL, e.g. file://./backups/x.zst.pgp, s3://bucket/prefix/x.zst.pgp';

export const uploadStep = defineStep<UploadWith, ArtifactRecord>({
  uses: 'upload',
  kind: 'sink',
  description: 'Store the input stream at a URL (file://, …), or at several at once; each copy appears only once complete.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['to'],
    properties: {
      to: {
        type: ['string', 'array'],
        format: 'url',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', format: 'url', description: URL_DESCRIPTION },
        description:
          'Destination URL (e.g. file://./backups/x.zst.pgp, s3://bucket/prefix/x.zst.pgp), or a list of them: the stream is read once and written to every destination at once, each copy atomically, and a backup manifest is published beside each copy.',
      },
      storage: {
        type: 'object',
        description:
          'Settings of this write for the URL\'s storage (s3: server_side_encryption, kms_key_id, storage_class; file and sftp: mode, an octal string such as "0640", default "0600").',
      },
    },
  },
  outputs: {
    type: 'object',
    properties: {
      url: { type: 'string' },
      bytes: { type: 'integer' },
      sha256: { type: 'string' },
      database: { type: 'string' },
      format: { type: 'string' },
      layers: { type: 'array' },
      position: { type: 'object' },
    },
  },
  async run(ctx) {
    const urls = typeof ctx.with.to === 'string' ? [ctx.with.to] : ctx.with.to;
    checkKeys(ctx.id, urls);
    const settings = ctx.with.storage;
    const put = (url: string, body: Readable, signal: AbortSignal): Promise<StoredObject> =>
      ctx.storage(url).put(url, body, { signal, ...(settings && { settings }) });
    let url: string;
    let copies: ArtifactCopy[] | undefined;
    if (urls.length === 1) url = (await put(urls[0]!, ctx.input, ctx.signal)).url;
    else {
      copies = await writeCopies(ctx, urls, put);
      url = copies.find((c) => c.error === undefined)!.url;
    }
    const stats = await ctx.inputStats();
    const source = ctx.chain[0]?.outputs ?? {};
    const raw = ctx.chain.length > 1 ? await ctx.chain[0]!.stats : { ...stats, sha256: hashOf(stats) };
    const layers = ctx.chain.map((s) => s.outputs.layer).filter((l): l is ArtifactLayer => typeof l === 'object' && l !== null);
    const record: ArtifactRecord = {
      database: typeof source.database === 'string' ? source.database : (ctx.chain[0]?.id ?? ctx.id),
      url,
      bytes: stats.bytes,
      sha256: hashOf(stats),
      format: typeof source.format === 'string' ? source.format : 'bytes',
      layers,
      // Without a sha256 when the dump went from its program straight into the compressor's (whose content checksum covers it).
      raw: { bytes: raw.bytes, ...(raw.sha256 !== undefined && { sha256: raw.sha256 }) },
      // Complete now: the source filled it in before its stream ended.
      ...(isObject(source.position) && { position: { ...source.position } }),
      ...(source.globals === true && { globals: true }),
      ...(copies && { copies }),
    };
    ctx.report.artifact(record);
    const stored = copies ? copies.filter((c) => c.error === undefined).map((c) => c.url) : [url];
    ctx.log.info(`stored ${stats.bytes} bytes at ${stored.join(' and ')}`);
    return { outputs: record };
  },
});

// Every destination is checked before anything is written: a rendered value must not lead a copy out of its repository.
// (Two copies rendered to one destination are refused before the step starts: the schema's uniqueItems.)
function checkKeys(step: string, urls: readonly string[]): void {
  for (const url of urls) {
    const problem = keyProblem(url);
    if (problem)
      throw new DbflowError(
        `step "${step}": the upload's key "${visibleUrl(url)}" ${problem}, which could put the artifact and its manifest outside the repository; nothing was written. Check the values that fill its template (environment variables, vars, matrix).`,
      );
  }
}

/**
 * Writes the input to every URL at once (one read of the stream). A copy that fails stops the others (each put is
 * aborted, a copy already complete is deleted) and fails the step — unless the step continues on error: then the
 * others go on, and the failed copy is returned with its error; the step still fails when no copy is stored.
 */
async function writeCopies(
  ctx: StepContext<UploadWith>,
  urls: readonly string[],
  put: (url: string, body: Readable, signal: AbortSignal) => Promise<StoredObject>,
): Promise<ArtifactCopy[]> {
  const n = urls.length;
  const fan = fanOut(ctx.input, n);
  const controllers = urls.map(() => new AbortController());
  const results: { url: string; stored?: StoredObject; error?: Error }[] = urls.map((url) => ({ url }));
  let first: { i: number; error: Error } | undefined;
  const stopAll = (reason: Error): void => {
    for (const c of controllers) c.abort(reason);
    fan.abort(reason);
  };
  const onAbort = (): void =>
    stopAll(ctx.signal.reason instanceof Error ? ctx.signal.reason : new DbflowError('the upload was cancelled.'));
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (ctx.signal.aborted) onAbort();
  let sourceError: Error | undefined;
  try {
    await Promise.all([
      ...urls.map((url, i) =>
        put(url, fan.branches[i]!, controllers[i]!.signal)
          .then((stored) => {
            // A storage that stops reading before the end would hold the other copies back: its copy is not whole.
            if (!fan.branches[i]!.readableEnded) throw new DbflowError(`the ${stored.url} write ended before its stream did.`);
            results[i]!.stored = stored;
          })
          .then(undefined, (err: unknown) => {
            const error = err instanceof Error ? err : new Error(String(err));
            results[i]!.error = error;
            fan.drop(i, error);
            if (first || ctx.signal.aborted || sourceError !== undefined) return;
            first = { i, error };
            if (!ctx.continueOnError) stopAll(new DbflowError(`copy ${i + 1} of ${n} (${urls[i]}) failed.`));
          }),
      ),
      fan.done.catch((err: unknown) => void (sourceError = err instanceof Error ? err : new Error(String(err)))),
    ]);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
  const storedCount = results.filter((r) => r.stored).length;
  const cancelled = ctx.signal.aborted;
  if (sourceError === undefined && !cancelled && !first) return copiesOf(results);
  if (sourceError === undefined && !cancelled && first && ctx.continueOnError && storedCount > 0) {
    for (const [i, r] of results.entries())
      if (r.error)
        ctx.log.warn(
          `copy ${i + 1} of ${n} (${r.url}) was not stored: ${r.error.message}; continue_on_error keeps the ${storedCount} that were, and the manifest records this one as failed`,
        );
    return copiesOf(results);
  }
  // Nothing of a failed upload is kept: a copy that completed before another failed is removed too.
  for (const r of results) {
    if (!r.stored) continue;
    const at = r.stored.url;
    await ctx
      .storage(at)
      .delete(at)
      .catch((err: unknown) => ctx.log.warn(`the copy at ${at} could not be removed: ${(err as Error).message}; prune removes it`));
  }
  if (sourceError !== undefined) throw sourceError;
  if (cancelled || !first) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new DbflowError('the upload was cancelled.');
  throw new DbflowError(
    `${first.error.message} (copy ${first.i + 1} of ${n}: every copy was stopped and none was kept${ctx.continueOnError ? '' : '; with continue_on_error: true the copies that succeed are kept'})`,
    { cause: first.error },
  );
}

function copiesOf(results: readonly { url: string; stored?: StoredObject; error?: Error }[]): ArtifactCopy[] {
  return results.map((r) => (r.stored ? { url: r.stored.url } : { url: r.url, error: r.error?.message ?? 'not stored' }));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// The engine hashes a chain's first edge and the edge into its sink; a missing hash is a bug, never a blank field.
function hashOf(stats: EdgeStats): string {
  if (stats.sha256 === undefined) throw new DbflowError('the stream edge has no sha256 (an engine error); the artifact is not recorded.');
  return stats.sha256;
}
