// Shared by the unit tests: load inline pipelines with the fake plugin, collect spec problems.
import assert from 'node:assert/strict';
import { createFake } from '../helpers/fake-plugin.js';
import { loadPipelineText, SpecError, type LoadedPipeline, type SpecProblem } from '../../src/index.js';

export const FILE = 'inline.yaml';

/** Load pipeline text (as `inline.yaml`) with the fake steps available. */
export function load(text: string, env: Record<string, string | undefined> = {}): Promise<LoadedPipeline> {
  return loadPipelineText(FILE, text, process.cwd(), { plugins: [createFake().plugin], env });
}

/** The SpecError that loading `text` must throw. */
export async function specError(text: string, env: Record<string, string | undefined> = {}): Promise<SpecError> {
  try {
    await load(text, env);
  } catch (err) {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the pipeline to be refused');
}

/** The problems of a pipeline that must not load. */
export async function problems(text: string, env: Record<string, string | undefined> = {}): Promise<SpecProblem[]> {
  return (await specError(text, env)).problems;
}

/** 1-based line and column of the `nth` (0-based) occurrence of `needle` in `text`. */
export function locate(text: string, needle: string, nth = 0): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    assert.ok(at >= 0, `"${needle}" (#${nth}) not found in the pipeline text`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, col: before.at(-1)!.length + 1 };
}

/** Build a pipeline text from step lines (already indented under `steps:`). */
export function pipeline(body: string, head = ''): string {
  return `version: 1\nname: unit\n${head}steps:\n${body}`;
}
