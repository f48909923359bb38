// The `upload` step: stores a stream at a URL (atomically) and records the artifact.
import { defineStep, type ArtifactLayer, type ArtifactRecord } from '../../src/index.js';

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
        description: "Settings of this write for the URL's storage (s3: server_side_encryption, kms_key_id, storage_class).",
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
    },
  },
  async run(ctx) {
    const url = ctx.with.to;
    const stored = await ctx.storage(url).put(url, ctx.input, { signal: ctx.signal, ...(ctx.with.storage && { settings: ctx.with.storage }) });
    const stats = await ctx.inputStats();
    const source = ctx.chain[0]?.outputs ?? {};
    const raw = ctx.chain.length > 1 ? await ctx.chain[0]!.stats : stats;
    const layers = ctx.chain.map((s) => s.outputs.layer).filter((l): l is ArtifactLayer => typeof l === 'object' && l !== null);
    const record: ArtifactRecord = {
      database: typeof source.database === 'string' ? source.database : ctx.chain[0]?.id ?? ctx.id,
      url: stored.url,
      bytes: stats.bytes,
      sha256: stats.sha256,
      format: typeof source.format === 'string' ? source.format : 'bytes',
      layers,
      raw: { bytes: raw.bytes, sha256: raw.sha256 },
    };
    ctx.report.artifact(record);
    ctx.log.info(`stored ${stats.bytes} bytes at ${stored.url}`);
    return { outputs: record };
  },
});
