// The run record on disk (result.json, events.jsonl, logs/), listRuns, and secrets kept out of all of it.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { listRuns, type EngineEvent } from '../../src/index.js';
import { tmpDir as tmp } from '../helpers/tmp.js';
import { prepare, run, runYaml, yaml } from './helpers.js';

const readJson = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

describe('the run record', () => {
  const steps = `  - { id: hello, uses: noop, with: { log: "hello from a step" } }
  - { id: cell, uses: noop, matrix: { db: [app] }, with: { log: "cell {{ matrix.db }}" } }
  - { id: broken, uses: fail, continue_on_error: true, with: { message: "it broke" } }
`;

  it('writes result.json, pipeline.json, events.jsonl and one log per step under runs/<id>', async (t) => {
    const { result, stateDir } = await runYaml(t, yaml(steps));
    const dir = path.join(stateDir, 'runs', result.runId);
    assert.equal(result.dir, dir);
    assert.match(result.runId, /^\d{8}T\d{6}Z-[0-9a-f]{4}$/);

    const res = readJson(path.join(dir, 'result.json'));
    assert.equal(res.run_id, result.runId);
    assert.equal(res.pipeline, 'engine');
    assert.equal(res.status, 'success');
    assert.equal(typeof res.duration_ms, 'number');
    const stepsJson = res.steps as Record<string, { status: string; error?: string }>;
    assert.deepEqual(Object.keys(stepsJson).sort(), ['broken', 'cell[app]', 'hello']);
    assert.equal(stepsJson.broken?.status, 'failed');
    assert.equal(stepsJson.broken?.error, 'it broke');

    const meta = readJson(path.join(dir, 'pipeline.json'));
    assert.equal(meta.name, 'engine');
    assert.match(String(meta.sha256), /^[0-9a-f]{64}$/);
    assert.equal((meta.pipeline as { steps: unknown[] }).steps.length, 3, 'the normalized pipeline is kept with the run');

    const events = readFileSync(path.join(dir, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as EngineEvent);
    assert.equal(events[0]?.type, 'run:start');
    assert.equal(events.at(-1)?.type, 'run:end');
    const ends = events
      .filter((e) => e.type === 'step:end')
      .map((e) => e.id)
      .sort();
    assert.deepEqual(ends, ['broken', 'cell[app]', 'hello']);

    const logs = readdirSync(path.join(dir, 'logs')).sort();
    assert.ok(logs.includes('hello.log') && logs.includes('cell_app_.log'), logs.join(', '));
    assert.match(readFileSync(path.join(dir, 'logs', 'hello.log'), 'utf8'), /^\S+Z INFO hello from a step$/m);
    assert.match(readFileSync(path.join(dir, 'logs', 'broken.log'), 'utf8'), /WARN failed: it broke/);
  });

  it('writes the events it reports to onEvent, except progress', async (t) => {
    const { result, events } = await runYaml(t, yaml(steps));
    const onDisk = readFileSync(path.join(result.dir, 'events.jsonl'), 'utf8').trim().split('\n');
    assert.deepEqual(
      onDisk.map((l) => JSON.parse(l) as EngineEvent),
      events.filter((e) => e.type !== 'step:progress'),
    );
  });
});

describe('listRuns', () => {
  it('lists nothing in a fresh state dir', (t) => {
    assert.deepEqual(listRuns(path.join(tmp(t), 'nothing-here')), []);
  });

  it('lists runs newest first, with status and duration', async (t) => {
    const p = await prepare(t, yaml('  - { id: a, uses: noop }\n'));
    await run(p, { runId: '20260101T000000Z-0001' });
    const failing = await prepare(t, yaml('  - { id: a, uses: fail, with: { message: x } }\n'));
    await run({ ...failing, stateDir: p.stateDir }, { runId: '20260101T000001Z-0002' });
    const runs = listRuns(p.stateDir);
    assert.deepEqual(
      runs.map((r) => [r.id, r.pipeline, r.status]),
      [
        ['20260101T000001Z-0002', 'engine', 'failed'],
        ['20260101T000000Z-0001', 'engine', 'success'],
      ],
    );
    assert.equal(typeof runs[0]?.durationMs, 'number');
    assert.equal(runs[1]?.dir, path.join(p.stateDir, 'runs', '20260101T000000Z-0001'));
    assert.deepEqual(
      listRuns(p.stateDir, 1).map((r) => r.id),
      ['20260101T000001Z-0002'],
    );
  });

  it('shows a run without result.json as running', (t) => {
    const stateDir = tmp(t);
    const dir = path.join(stateDir, 'runs', '20260101T000000Z-abcd');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'pipeline.json'), JSON.stringify({ name: 'nightly', started_at: '2026-01-01T00:00:00.000Z' }));
    assert.deepEqual(listRuns(stateDir), [
      { id: '20260101T000000Z-abcd', pipeline: 'nightly', status: 'running', startedAt: '2026-01-01T00:00:00.000Z', dir },
    ]);
  });
});

describe('secrets', () => {
  const secret = 'Sup3r-S3cret value/42';
  const env = { DBFLOW_ENGINE_TEST_TOKEN: secret };
  const text = yaml(
    `  - { id: talk, uses: noop, with: { log: "token={{ secrets.token }}" } }
  - { id: leak, uses: fail, continue_on_error: true, with: { message: "bad token {{ secrets.token }}" } }
  - { id: echo, uses: emit, with: { outputs: { token: "{{ secrets.token }}" } } }
`,
    'secrets:\n  token: { env: DBFLOW_ENGINE_TEST_TOKEN }\n',
  );

  it('gives the step the real value', async (t) => {
    const { state } = await runYaml(t, text, { env });
    assert.equal(state.withs.get('talk')?.log, `token=${secret}`);
  });

  it('masks it as *** in events, logs, result.json and the returned result', async (t) => {
    const { result, events } = await runYaml(t, text, { env });
    assert.equal(result.status, 'success');
    const errors = [result.error, ...[...result.steps.values()].map((s) => s.error)];
    const everything = [JSON.stringify(events), JSON.stringify(errors), JSON.stringify(result.summary)];
    for (const file of filesUnder(result.dir)) everything.push(readFileSync(file, 'utf8'));
    for (const [i, text] of everything.entries()) assert.equal(text.includes(secret), false, `the secret leaked into #${i}`);
    assert.equal(text.includes(encodeURIComponent(secret)), false);
    assert.match(readFileSync(path.join(result.dir, 'logs', 'talk.log'), 'utf8'), /INFO token=\*\*\*$/m);
    const logged = events.find((e) => e.type === 'step:log' && e.id === 'talk');
    assert.equal(logged?.type === 'step:log' && logged.message, 'token=***');
    assert.equal(result.steps.get('leak')?.error, 'bad token ***');
  });

  it('fails the run before any step when a secret cannot be read', async (t) => {
    const p = await prepare(t, text, env);
    const { result, state } = await run({ ...p, env: {} });
    assert.equal(result.status, 'failed');
    assert.match(result.error ?? '', /secret "token": environment variable "DBFLOW_ENGINE_TEST_TOKEN" is not set/);
    assert.deepEqual(state.order, []);
    assert.ok(existsSync(path.join(result.dir, 'result.json')));
  });
});
