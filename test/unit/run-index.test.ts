// The index of run records: built from the records, then only new and unfinished runs are read; removed records leave it.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { indexedFinishedRuns, RunIndex } from '../../src/ops/run-index.js';
import { readFinishedRuns } from '../../src/ops/run-results.js';
import { tmpDir } from '../helpers/tmp.js';

function record(stateDir: string, id: string, pipeline: string, status?: string): void {
  const dir = path.join(stateDir, 'runs', id);
  mkdirSync(dir, { recursive: true });
  const started = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`;
  writeFileSync(
    path.join(dir, 'pipeline.json'),
    JSON.stringify({ name: pipeline, started_at: started, owner: { pid: process.pid, host: 'elsewhere' } }),
  );
  if (status)
    writeFileSync(
      path.join(dir, 'result.json'),
      JSON.stringify({ run_id: id, pipeline, status, started_at: started, finished_at: started, duration_ms: 5, steps: {}, summary: {} }),
    );
}

void test('run index: the same finished runs as the records, filters, a run that finishes later, records removed', (t) => {
  const state = tmpDir(t);
  record(state, '20260101T000000Z-0001', 'a', 'success');
  record(state, '20260102T000000Z-0002', 'b', 'failed');
  record(state, '20260103T000000Z-0003', 'a'); // still running (its result is not written yet)
  writeFileSync(path.join(state, 'runs', '20260103T000000Z-0003', 'result.json'), '{"run_id": "2026'); // being written
  assert.deepEqual(indexedFinishedRuns(state), readFinishedRuns(state));

  const index = new RunIndex(state);
  t.after(() => index.close());
  index.sync();
  assert.deepEqual(
    index.runs().runs.map((r) => [r.runId, r.status]),
    [
      ['20260103T000000Z-0003', 'running'],
      ['20260102T000000Z-0002', 'failed'],
      ['20260101T000000Z-0001', 'success'],
    ],
  );
  assert.equal(index.runs({ pipeline: 'a' }).total, 2);
  assert.equal(index.runs({ status: 'failed' }).total, 1);
  assert.equal(index.runs({ since: Date.parse('2026-01-02T00:00:00Z') }).total, 2);
  assert.deepEqual(index.pipelines(), ['a', 'b']);

  record(state, '20260103T000000Z-0003', 'a', 'success');
  rmSync(path.join(state, 'runs', '20260101T000000Z-0001'), { recursive: true });
  index.sync();
  assert.deepEqual(
    index.runs().runs.map((r) => [r.runId, r.status]),
    [
      ['20260103T000000Z-0003', 'success'],
      ['20260102T000000Z-0002', 'failed'],
    ],
  );
  assert.deepEqual(index.finishedRuns(), readFinishedRuns(state));
  assert.deepEqual(
    index.newestRuns().map((r) => r.runId),
    ['20260102T000000Z-0002', '20260103T000000Z-0003'],
  );
  assert.deepEqual(index.repositories(), []);
});

void test('run index: no state folder means no runs, and creates nothing', () => {
  const state = path.join(tmpDir(), 'none');
  assert.deepEqual(indexedFinishedRuns(state), []);
});

void test('run index: a damaged index file (garbage, cut short) is built again from the records, whichever call meets it', (t) => {
  const state = tmpDir(t);
  record(state, '20260101T000000Z-0001', 'a', 'success');
  record(state, '20260102T000000Z-0002', 'b', 'failed');
  const file = path.join(state, 'runs-index.sqlite');
  const first = new RunIndex(state);
  first.sync();
  first.close();
  const reasons: string[] = [];

  writeFileSync(file, Buffer.alloc(8192, 0x5a));
  const afterGarbage = new RunIndex(state, { onRebuild: (r) => reasons.push(r) });
  t.after(() => afterGarbage.close());
  assert.deepEqual(reasons, ['file is not a database']);
  assert.deepEqual(
    afterGarbage.runs().runs.map((r) => r.runId),
    ['20260102T000000Z-0002', '20260101T000000Z-0001'],
  );
  afterGarbage.close();

  truncateSync(file, 4096); // the header and the schema, not one table
  const afterCut = new RunIndex(state, { onRebuild: (r) => reasons.push(r) });
  t.after(() => afterCut.close());
  afterCut.sync();
  assert.deepEqual(reasons, ['file is not a database', 'database disk image is malformed']);
  assert.deepEqual(afterCut.finishedRuns(), readFinishedRuns(state));
  afterCut.close();

  writeFileSync(file, 'not a database either');
  assert.deepEqual(indexedFinishedRuns(state), readFinishedRuns(state));
});

void test('run index: a runs folder unchanged since it settled is not read again, and any run added or removed after is seen', (t) => {
  const state = tmpDir(t);
  record(state, '20260101T000000Z-0001', 'a', 'success');
  record(state, '20260102T000000Z-0002', 'a'); // running
  const runs = path.join(state, 'runs');
  const settled = new Date(Date.now() - 60_000);
  utimesSync(runs, settled, settled);
  const index = new RunIndex(state);
  t.after(() => index.close());
  index.sync();
  index.sync(); // the folder's time is trusted now: only the running run is read again
  assert.deepEqual(
    index.runs().runs.map((r) => [r.runId, r.status]),
    [
      ['20260102T000000Z-0002', 'running'],
      ['20260101T000000Z-0001', 'success'],
    ],
  );
  record(state, '20260102T000000Z-0002', 'a', 'failed'); // finishes: its folder changes, not the runs folder
  record(state, '20260103T000000Z-0003', 'b', 'success'); // a new run changes the runs folder
  index.sync();
  assert.deepEqual(
    index.runs().runs.map((r) => [r.runId, r.status]),
    [
      ['20260103T000000Z-0003', 'success'],
      ['20260102T000000Z-0002', 'failed'],
      ['20260101T000000Z-0001', 'success'],
    ],
  );
  utimesSync(runs, settled, settled);
  index.sync();
  index.sync();
  rmSync(path.join(runs, '20260101T000000Z-0001'), { recursive: true });
  index.sync();
  assert.deepEqual(index.pipelines(), ['a', 'b']);
  assert.deepEqual(
    index.finishedRuns().map((r) => r.runId),
    ['20260102T000000Z-0002', '20260103T000000Z-0003'],
  );
});
