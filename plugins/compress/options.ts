// The `with` of the compress step: its schema, and the resolved settings with defaults applied.
import { DbflowError, type JsonSchema } from '../../src/plugin-api.js';

/** The compression algorithms, each with its level range and default. */
export const ALGORITHMS = {
  zstd: { min: 1, max: 19, level: 3 },
  gzip: { min: 1, max: 9, level: 6 },
} as const;

export type Algorithm = keyof typeof ALGORITHMS;

/** `with` as the user wrote it. */
export interface CompressWith {
  algorithm?: Algorithm;
  level?: number;
  threads?: number;
}

/** `with` after defaults. */
export interface CompressSettings {
  algorithm: Algorithm;
  level: number;
  threads: number;
}

// The JSON Schema of the step's `with` (gzip narrows the level range).
export const compressWithSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    algorithm: { enum: ['zstd', 'gzip'], default: 'zstd', description: 'zstd (stock `zstd` binary) or gzip (node:zlib).' },
    level: { type: 'integer', minimum: 1, maximum: 19, description: 'zstd 1..19 (default 3), gzip 1..9 (default 6).' },
    threads: { type: 'integer', minimum: 0, default: 0, description: 'zstd worker threads; 0 uses every core. zstd only.' },
  },
  if: { properties: { algorithm: { const: 'gzip' } }, required: ['algorithm'] },
  then: { properties: { level: { type: 'integer', maximum: 9 } } },
};

// Apply defaults and re-check what the schema cannot say well (the context may not come from the engine).
export function resolveSettings(value: CompressWith, step: string): CompressSettings {
  const algorithm = value.algorithm ?? 'zstd';
  const range = ALGORITHMS[algorithm];
  if (!range) {
    throw new DbflowError(`step "${step}": unknown algorithm ${JSON.stringify(algorithm)}; use "zstd" or "gzip".`);
  }
  const level = value.level ?? range.level;
  if (!Number.isInteger(level) || level < range.min || level > range.max) {
    throw new DbflowError(
      `step "${step}": level ${JSON.stringify(level)} is out of range for ${algorithm}; use ${range.min}..${range.max} (default ${range.level}).`,
    );
  }
  if (algorithm === 'gzip' && value.threads !== undefined) {
    throw new DbflowError(`step "${step}": "threads: ${value.threads}" applies to zstd only; remove it or set "algorithm: zstd".`);
  }
  const threads = value.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0) {
    throw new DbflowError(`step "${step}": threads ${JSON.stringify(threads)} must be a whole number ≥ 0 (0 uses every core).`);
  }
  return { algorithm, level, threads };
}
