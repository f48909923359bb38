// The `upload` step: stores a stream at a URL (atomically) and records the artifact.
import {
  DbflowError,
  defineStep,
  keyProblem,
  visibleUrl,
  type ArtifactLayer,
  type ArtifactRecord,
  type EdgeStats,
} from '../../src/plugin-api.js';

interface UploadWith {
  to: string;
  storage?: Record<string, unknown>;
}

export const uploadStep = defineStep<UploadWith, ArtifactRecord>({
  uses: 'upload',
  kind: 'sink',
  description: 'Store the input stream at a URL (file://, …); it appears only once complete.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['to'],
    properties: {
      to: { type: 'string', format: 'url', description: 'Destination URL, e.g. file://./backups/x.zst.pgp, s3://bucket/prefix/x.zst.pgp' },
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
    const url = ctx.with.to;
    const problem = keyProblem(url);
    if (problem)
      throw new DbflowError(
        `step "${ctx.id}": the upload's key "${visibleUrl(url)}" ${problem}, which could put the artifact and its manifest outside the repository; nothing was written. Check the values that fill its template (environment variables, vars, matrix).`,
      );
    const stored = await ctx
      .storage(url)
      .put(url, ctx.input, { signal: ctx.signal, ...(ctx.with.storage && { settings: ctx.with.storage }) });
    const stats = await ctx.inputStats();
    const source = ctx.chain[0]?.outputs ?? {};
    const raw = ctx.chain.length > 1 ? await ctx.chain[0]!.stats : { ...stats, sha256: hashOf(stats) };
    const layers = ctx.chain.map((s) => s.outputs.layer).filter((l): l is ArtifactLayer => typeof l === 'object' && l !== null);
    const record: ArtifactRecord = {
      database: typeof source.database === 'string' ? source.database : (ctx.chain[0]?.id ?? ctx.id),
      url: stored.url,
      bytes: stats.bytes,
      sha256: hashOf(stats),
      format: typeof source.format === 'string' ? source.format : 'bytes',
      layers,
      // Without a sha256 when the dump went from its program straight into the compressor's (whose content checksum covers it).
      raw: { bytes: raw.bytes, ...(raw.sha256 !== undefined && { sha256: raw.sha256 }) },
      // Complete now: the source filled it in before its stream ended.
      ...(isObject(source.position) && { position: { ...source.position } }),
      ...(source.globals === true && { globals: true }),
    };
    ctx.report.artifact(record);
    ctx.log.info(`stored ${stats.bytes} bytes at ${stored.url}`);
    return { outputs: record };
  },
});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// The engine hashes a chain's first edge and the edge into its sink; a missing hash is a bug, never a blank field.
function hashOf(stats: EdgeStats): string {
  if (stats.sha256 === undefined) throw new DbflowError('the stream edge has no sha256 (an engine error); the artifact is not recorded.');
  return stats.sha256;
}
