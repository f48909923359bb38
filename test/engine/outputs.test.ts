// Outputs of one step flowing into the `with` of another through templates, rendered at run time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fakeBytes, sha256 } from '../helpers/fake-plugin.js';
import { runYaml, statuses, stepState, yaml } from './helpers.js';

describe('steps.X.outputs.Y in with', () => {
  // The consumer is written first: only the template reference orders it after the producer.
  const steps = `  - id: consume
    uses: noop
    with:
      value: "{{ steps.produce.outputs.list }}"
      log: "name={{ steps.produce.outputs.name }} n={{ steps.produce.outputs.n }}"
  - id: produce
    uses: emit
    with: { outputs: { list: [1, 2, 3], name: nightly, n: 7, nested: { ok: true } } }
`;

  it('renders outputs into with, keeping the type of a whole reference', async (t) => {
    const { result, state } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'success');
    assert.deepEqual(state.withs.get('consume'), { value: [1, 2, 3], log: 'name=nightly n=7' });
  });

  it('makes the referencing step depend on the referenced one', async (t) => {
    const { loaded, state } = await runYaml(t, yaml(steps));
    assert.deepEqual(loaded.plan.steps.get('consume')?.deps, ['produce']);
    assert.deepEqual(state.order, ['start:produce', 'end:produce', 'start:consume', 'end:consume']);
  });

  it('skips the referencing step when the referenced one failed', async (t) => {
    const failing = `  - { id: produce, uses: fail, with: { message: no outputs } }
  - { id: consume, uses: noop, with: { log: "{{ steps.produce.outputs.attempts }}" } }
`;
    const { result } = await runYaml(t, yaml(failing));
    assert.deepEqual(statuses(result), { produce: 'failed', consume: 'skipped' });
  });

  it('fails a step whose template refers to an output the step did not produce', async (t) => {
    const missing = `  - { id: produce, uses: emit, with: { outputs: { a: 1 } } }
  - { id: consume, uses: noop, with: { log: "b={{ steps.produce.outputs.b }}" } }
`;
    const { result, state } = await runYaml(t, yaml(missing));
    assert.equal(stepState(result, 'consume').status, 'failed');
    assert.match(stepState(result, 'consume').error ?? '', /steps\.produce\.outputs\.b|"b"/);
    assert.equal(state.withs.has('consume'), false, 'the step did not run with an empty value');
  });

  it("gives every matrix cell of a fan-in the list of the cells' outputs", async (t) => {
    const fanIn = `  - { id: produce, uses: emit, matrix: { db: [a, b] }, with: { outputs: { name: "db-{{ matrix.db }}" } } }
  - { id: consume, uses: noop, with: { value: "{{ steps.produce.outputs.name }}" } }
`;
    const { state } = await runYaml(t, yaml(fanIn));
    assert.deepEqual(state.withs.get('consume'), { value: ['db-a', 'db-b'] });
  });

  it('exposes bytes and sha256 of a stream edge as outputs', async (t) => {
    const chain = `  - { id: src, uses: bytes, with: { size: 5000, chunk: 700 } }
  - { id: sink, uses: collect, input: src }
  - { id: report, uses: noop, with: { log: "{{ steps.src.outputs.bytes }} {{ steps.src.outputs.sha256 }}" } }
`;
    const { state } = await runYaml(t, yaml(chain));
    assert.equal(state.withs.get('report')?.log, `5000 ${sha256(fakeBytes(5000))}`);
  });

  it('renders run, pipeline, vars and the date helper', async (t) => {
    const text = yaml(
      `  - id: info
    uses: noop
    with: { log: "{{ pipeline.name }}/{{ vars.where }}/{{ run.id }}/{{ date run.started_at \\"%Y%m%dT%H%M%SZ\\" }}" }
`,
      'vars:\n  where: "{{ pipeline.name }}-repo"\n',
    );
    const { result, state } = await runYaml(t, text);
    const [name, where, runId, date] = String(state.withs.get('info')?.log).split('/');
    assert.equal(name, 'engine');
    assert.equal(where, 'engine-repo');
    assert.equal(runId, result.runId);
    assert.equal(date, result.runId.split('-')[0], 'the date of run.started_at, in UTC, as in the run id');
  });
});
