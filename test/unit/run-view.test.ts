// A run's page: its DAG from the edges the plan recorded at run:start (instance to instance), or, for records written
// before runs recorded them, edges derived from the pipeline in pipeline.json.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runState, stages } from '../../src/ops/dashboard/run-view.js';
import { tmpDir } from '../helpers/tmp.js';

const ID = '20260101T000000Z-0001';

function writeRun(state: string, steps: Record<string, unknown>[]): void {
  const dir = path.join(state, 'runs', ID);
  mkdirSync(dir, { recursive: true });
  // The pipeline as recorded: `with` values that a derivation would read as edges (every cell of "dump").
  writeFileSync(
    path.join(dir, 'pipeline.json'),
    JSON.stringify({
      name: 'p',
      started_at: '2026-01-01T00:00:00.000Z',
      pipeline: {
        steps: [
          { id: 'dump', uses: 'dump' },
          { id: 'compress', uses: 'compress', input: 'dump' },
          { id: 'notify', uses: 'notify', with: { text: 'after dump' } },
        ],
      },
    }),
  );
  const start = { type: 'run:start', time: '2026-01-01T00:00:00.000Z', pipeline: 'p', runId: ID, steps };
  writeFileSync(path.join(dir, 'events.jsonl'), `${JSON.stringify(start)}\n`);
}

void test('run page: the DAG is the plan recorded at run:start, cell to cell', (t) => {
  const state = tmpDir(t);
  writeRun(state, [
    { id: 'dump[db=a]', uses: 'dump', deps: [] },
    { id: 'dump[db=b]', uses: 'dump', deps: [] },
    { id: 'compress[db=a]', uses: 'compress', deps: ['dump[db=a]'] },
    { id: 'compress[db=b]', uses: 'compress', deps: ['dump[db=b]'] },
    // A finally step waits for every other instance: an edge no derivation from the pipeline's text would find.
    { id: 'notify', uses: 'notify', deps: ['dump[db=a]', 'dump[db=b]', 'compress[db=a]', 'compress[db=b]'] },
  ]);
  const run = runState(state, ID)!;
  assert.deepEqual(
    run.steps.map((s) => [s.key, s.after]),
    [
      ['dump[db=a]', []],
      ['dump[db=b]', []],
      ['compress[db=a]', ['dump[db=a]']],
      ['compress[db=b]', ['dump[db=b]']],
      ['notify', ['dump[db=a]', 'dump[db=b]', 'compress[db=a]', 'compress[db=b]']],
    ],
  );
  assert.deepEqual(
    stages(run.steps).map((col) => col.map((s) => s.key)),
    [['dump[db=a]', 'dump[db=b]'], ['compress[db=a]', 'compress[db=b]'], ['notify']],
  );
});

void test('run page: a record without the plan edges gets them from its pipeline.json', (t) => {
  const state = tmpDir(t);
  writeRun(state, [
    { id: 'dump', uses: 'dump' },
    { id: 'compress', uses: 'compress' },
    { id: 'notify', uses: 'notify' },
  ]);
  const run = runState(state, ID)!;
  assert.deepEqual(
    run.steps.map((s) => [s.key, s.after]),
    [
      ['dump', []],
      ['compress', ['dump']],
      ['notify', []],
    ],
  );
});
