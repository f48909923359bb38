// A pipeline file for CLI tests: the fixture source `produce` streams bytes into the `store` upload, plus any steps given.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './cli.js';

/** The test plugins a pipeline can list: the slow byte source, and the operations steps (sleep, fail, late-log). */
export const FIXTURE_PLUGINS = {
  slowChain: path.join(repoRoot, 'test/fixtures/plugins/slow-chain.ts'),
  ops: path.join(repoRoot, 'test/fixtures/plugins/ops-steps.ts'),
};

export interface SlowPipeline {
  name: string;
  /** Bytes `produce` sends, `chunk` bytes every `delay_ms`. */
  size: number;
  chunk?: number;
  delayMs?: number;
  /** `produce` stalls for `ms` once `at` bytes are sent. */
  stall?: { at: number; ms: number };
  /** Path prefix of the source's marker files (`.started`, `.stalled`, `.cleanup`). */
  marker: string;
  /** Where `store` uploads (a storage URL, templates allowed). */
  to: string;
  /** More steps, as YAML list items; the operations plugin is listed too. */
  steps?: string;
}

/** Writes `<dir>/<name>.yaml` and returns its path. */
export function writeSlowPipeline(dir: string, p: SlowPipeline): string {
  const file = path.join(dir, `${p.name}.yaml`);
  const stall = p.stall ? `, stall_at: ${p.stall.at}, stall_ms: ${p.stall.ms}` : '';
  writeFileSync(
    file,
    `version: 1
name: ${p.name}
plugins:
  - ${JSON.stringify(FIXTURE_PLUGINS.slowChain)}
  - ${JSON.stringify(FIXTURE_PLUGINS.ops)}
steps:
  - id: produce
    uses: slow-bytes
    with: { size: ${p.size}, chunk: ${p.chunk ?? 4096}, delay_ms: ${p.delayMs ?? 1}${stall}, marker: ${JSON.stringify(p.marker)} }
  - id: store
    uses: upload
    input: produce
    with: { to: ${JSON.stringify(p.to)} }
${p.steps ?? ''}`,
  );
  return file;
}
