// The example plugin, listed under a pipeline's `plugins:` and run through the public API.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPipeline, runPipeline, SpecError, type EngineEvent } from '../../src/index.js';
import { escapeRegExp } from '../helpers/cli.js';

const exampleDir = fileURLToPath(new URL('../../examples/plugin-hello/', import.meta.url));
const pluginFile = path.join(exampleDir, 'index.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dbflow-plugin-example-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// A pipeline file in the test's folder that loads the example plugin by absolute path.
function writePipeline(name: string, steps: string): string {
  const file = path.join(tmp, `${name}.yaml`);
  writeFileSync(file, `version: 1\nname: ${name}\nplugins:\n  - ${pluginFile}\nsteps:\n${steps}`);
  return file;
}

describe('examples/plugin-hello', () => {
  test('runs the hello task and a lines → line-count → discard stream chain', async () => {
    const loaded = await loadPipeline(path.join(exampleDir, 'pipeline.yaml'));
    const stateDir = path.join(tmp, 'state');
    const events: EngineEvent[] = [];
    const result = await runPipeline(loaded, { stateDir, onEvent: (e) => events.push(e) });
    assert.equal(result.status, 'success', result.error);

    const out = (id: string): Record<string, unknown> | undefined => result.steps.get(id)?.outputs;
    assert.deepEqual(out('greet'), { greeting: 'Hello, world!' });
    const logged = events.find((e) => e.type === 'step:log' && e.id === 'greet');
    assert.equal(logged?.type === 'step:log' && logged.message, 'Hello, world!');

    // 5000 lines of the greeting (a template over greet's output), passed through unchanged.
    const bytes = Buffer.from('Hello, world!\n'.repeat(5000));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    assert.deepEqual(out('generate'), { bytes: bytes.length, sha256 });
    assert.deepEqual(out('count'), { lines: 5000, bytes: bytes.length, sha256 });
    assert.deepEqual(out('drop'), { bytes: bytes.length });
    const countEnd = events.find((e) => e.type === 'step:end' && e.id === 'count');
    assert.equal(countEnd?.type === 'step:end' && countEnd.bytes, bytes.length);

    // The run record.
    assert.equal(result.dir, path.join(stateDir, 'runs', result.runId));
    const record = JSON.parse(readFileSync(path.join(result.dir, 'result.json'), 'utf8')) as {
      status: string;
      steps: Record<string, { status: string }>;
    };
    assert.equal(record.status, 'success');
    assert.deepEqual(Object.keys(record.steps).sort(), ['count', 'drop', 'generate', 'greet']);
    const recorded = readFileSync(path.join(result.dir, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as EngineEvent);
    assert.equal(recorded[0]?.type, 'run:start');
    assert.equal(recorded.at(-1)?.type, 'run:end');
    assert.ok(recorded.some((e) => e.type === 'step:end' && e.id === 'count' && e.outputs?.lines === 5000));
  });

  test('a misspelled "with" key fails at load time, at file:line:col, with a did-you-mean', async () => {
    const file = writePipeline('bad-with', '  - id: greet\n    uses: hello\n    with:\n      nam: world\n');
    await assert.rejects(loadPipeline(file), (err: unknown) => {
      assert.ok(err instanceof SpecError, String(err));
      assert.match(
        err.rendered,
        new RegExp(`${escapeRegExp(file)}:9:7: unknown key "nam" in "with" of step "greet"\\. Did you mean "name"\\?`),
      );
      assert.match(err.rendered, /is missing required key "name"/);
      assert.match(err.rendered, /\n9 \|\s+nam: world\n/);
      return true;
    });
  });

  test('a cancelled chain runs the cleanup of its started steps', async () => {
    const file = writePipeline(
      'cancel',
      [
        '  - { id: gen, uses: lines, with: { text: abc, count: 100000000 } }',
        '  - { id: count, uses: line-count, input: gen }',
        '  - { id: drop, uses: discard, input: count }',
        '',
      ].join('\n'),
    );
    const controller = new AbortController();
    const events: EngineEvent[] = [];
    const result = await runPipeline(await loadPipeline(file), {
      stateDir: path.join(tmp, 'state'),
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'step:start' && e.id === 'count') controller.abort();
      },
    });
    assert.equal(result.status, 'cancelled');
    assert.deepEqual(result.summary.steps, { gen: 'cancelled', count: 'cancelled', drop: 'cancelled' });
    assert.ok(events.some((e) => e.type === 'step:log' && e.id === 'count' && e.message === 'cleaned up'));
  });
});
