// What `dbflow run` prints without a terminal: each failure once, and the summary last.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { dbflowInterleaved } from '../helpers/cli.js';
import { FIXTURE_PLUGINS, writeSlowPipeline } from '../helpers/slow-pipeline.js';
import { tmpDir } from '../helpers/tmp.js';

const count = (text: string, part: string): number => text.split(part).length - 1;

describe('dbflow run, plain output', () => {
  it('shows each failure once, and nothing after the summary', async (t) => {
    const dir = tmpDir(t);
    const stateDir = path.join(dir, 'state');
    const blocker = path.join(dir, 'not-a-folder');
    writeFileSync(blocker, 'a file where the upload wants a folder\n');
    mkdirSync(path.join(dir, 'target'));
    const file = writeSlowPipeline(dir, {
      name: 'failing',
      size: 100_000,
      marker: path.join(dir, 'marker'),
      to: `file://${blocker}/artifact.bin`,
      steps: `  - id: broken
    uses: fail
    with: { message: "the disk is on fire" }
  - id: chatty
    uses: late-log
    with: { message: "a line written after the step ended", ms: 400 }
`,
    });
    const r = await dbflowInterleaved(['run', file, '--state-dir', stateDir]);
    assert.equal(r.exitCode, 1, r.output);
    assert.equal(count(r.output, 'the disk is on fire'), 1, `the failure of "broken" is shown once:\n${r.output}`);

    const [run] = readdirSync(path.join(stateDir, 'runs'));
    const result = JSON.parse(readFileSync(path.join(stateDir, 'runs', run!, 'result.json'), 'utf8')) as {
      steps: Record<string, { status: string; error?: string }>;
    };
    assert.equal(result.steps.store?.status, 'failed');
    const storeError = result.steps.store.error!;
    assert.equal(count(r.output, storeError), 1, `the failure of the chain (${storeError}) is shown once:\n${r.output}`);
    assert.match(r.output, /produce: FAILED after \S+: its stream chain failed at "store"\n/);

    const lines = r.output.trimEnd().split('\n');
    const summary = lines.findIndex((l) => l.startsWith('✖ failing: failed in '));
    assert.ok(summary >= 0, r.output);
    assert.deepEqual(
      lines.slice(summary + 1).map((l) => l.trimStart().split(/\s+/)[0]),
      ['failed', 'run'],
      `the summary is the last thing printed:\n${r.output}`,
    );
    assert.match(
      lines[summary + 1]!,
      /^ {2}failed {4}store, broken \(and in its stream chain: produce\); errors above, each step's log in .*\/logs$/,
    );
    assert.match(
      readFileSync(path.join(stateDir, 'runs', run!, 'logs', 'chatty.log'), 'utf8'),
      /a line written after the step ended/,
      'the late line is kept in the run record',
    );
  });

  it('ends the JSON lines of `run --json` with run:end', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, 'late.yaml');
    writeFileSync(
      file,
      `version: 1
name: late
plugins:
  - ${JSON.stringify(FIXTURE_PLUGINS.ops)}
steps:
  - id: chatty
    uses: late-log
    with: { message: "a line written after the step ended", ms: 400 }
`,
    );
    const r = await dbflowInterleaved(['run', '--json', file, '--state-dir', path.join(dir, 'state')]);
    assert.equal(r.exitCode, 0, r.output);
    const types = r.output
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type);
    assert.deepEqual(types, ['run:start', 'step:start', 'step:end', 'run:end'], r.output);
  });
});
