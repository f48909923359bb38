// The `compress` step: a transform that compresses its input stream with zstd or gzip.
import { defineStep, type JsonSchema } from '../../src/plugin-api.js';
import { gzipCompress } from './gzip.js';
import { compressWithSchema, resolveSettings, type Algorithm, type CompressWith } from './options.js';
import { zstdCompress } from './zstd.js';

/** What the step outputs; `layer` tells the upload step how the artifact is encoded. */
export interface CompressOutputs {
  algorithm: Algorithm;
  level: number;
  layer: { codec: Algorithm; level: number };
}

const outputsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    algorithm: { enum: ['zstd', 'gzip'] },
    level: { type: 'integer' },
    layer: {
      type: 'object',
      additionalProperties: false,
      required: ['codec', 'level'],
      properties: { codec: { enum: ['zstd', 'gzip'] }, level: { type: 'integer' } },
    },
  },
};

// Compresses `input:` as one back-pressured stream; zstd runs the stock binary, gzip runs in-process.
export const compressStep = defineStep<CompressWith, CompressOutputs>({
  uses: 'compress',
  kind: 'transform',
  description: 'Compress a stream with zstd (stock binary) or gzip.',
  with: compressWithSchema,
  outputs: outputsSchema,
  // eslint-disable-next-line @typescript-eslint/require-await -- async so that a bad setting rejects run()
  async run(ctx) {
    const { algorithm, level, threads } = resolveSettings(ctx.with, ctx.id);
    const output = algorithm === 'zstd' ? zstdCompress(ctx, level, threads) : gzipCompress(ctx.input, level);
    return { output, outputs: { algorithm, level, layer: { codec: algorithm, level } } };
  },
});
