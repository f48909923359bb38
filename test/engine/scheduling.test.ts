// Scheduling: parallelism up to the concurrency limit, failure propagation, conditions, finally.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ofType, runYaml, statuses, stepState, yaml } from './helpers.js';

const sleepers = (n: number, ms: number): string =>
  Array.from({ length: n }, (_, i) => `  - { id: s${i}, uses: sleep, with: { ms: ${ms} } }\n`).join('');

describe('parallelism', () => {
  it('runs independent steps at once, up to the pipeline concurrency', async (t) => {
    const started = Date.now();
    const { result, state } = await runYaml(t, yaml(sleepers(6, 100), 'concurrency: 2\n'));
    assert.equal(result.status, 'success');
    assert.equal(state.maxRunning, 2);
    assert.ok(Date.now() - started >= 300, 'six 100ms steps two at a time take three rounds');
  });

  it('lets the run option override the pipeline concurrency', async (t) => {
    const { result, state } = await runYaml(t, yaml(sleepers(6, 100), 'concurrency: 2\n'), { concurrency: 3 });
    assert.equal(result.status, 'success');
    assert.equal(state.maxRunning, 3);
  });

  it('defaults to four at once', async (t) => {
    const { state } = await runYaml(t, yaml(sleepers(7, 80)));
    assert.equal(state.maxRunning, 4);
  });

  it('runs everything at once when the limit allows', async (t) => {
    const { state } = await runYaml(t, yaml(sleepers(5, 150)), { concurrency: 10 });
    assert.equal(state.maxRunning, 5);
  });

  it('never starts a step before what it needs has finished', async (t) => {
    const steps = `  - { id: a, uses: sleep, with: { ms: 60 } }
  - { id: b, uses: sleep, needs: a, with: { ms: 10 } }
  - { id: c, uses: sleep, needs: [a, b], with: { ms: 10 } }
`;
    const { state } = await runYaml(t, yaml(steps), { concurrency: 8 });
    assert.deepEqual(state.order, ['start:a', 'end:a', 'start:b', 'end:b', 'start:c', 'end:c']);
  });
});

describe('failure', () => {
  const steps = `  - { id: bad, uses: fail, with: { message: boom } }
  - { id: child, uses: noop, needs: bad }
  - { id: grandchild, uses: noop, needs: child }
  - { id: always, uses: noop, needs: child, if: always() }
  - { id: on_failure, uses: noop, needs: bad, if: failure() }
  - { id: independent, uses: sleep, with: { ms: 30 } }
finally:
  - { id: fin, uses: noop }
  - { id: fin_if_ok, uses: noop, if: success() }
`;

  it('fails the dependents of a failed step, and still runs always(), failure() and finally steps', async (t) => {
    const { result, events } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'failed');
    assert.equal(result.error, '"bad" failed — "bad": boom');
    assert.deepEqual(statuses(result), {
      bad: 'failed',
      child: 'skipped',
      grandchild: 'skipped',
      always: 'success',
      on_failure: 'success',
      independent: 'success',
      fin: 'success',
      fin_if_ok: 'skipped',
    });
    assert.equal(stepState(result, 'bad').error, 'boom');
    const ends = new Map(ofType(events, 'step:end').map((e) => [e.id, e]));
    assert.equal(ends.get('child')?.reason, '"bad" failed');
    assert.equal(ends.get('grandchild')?.reason, '"child" was skipped');
    assert.equal(ends.get('fin_if_ok')?.reason, 'a step failed');
  });

  it('runs finally steps last', async (t) => {
    const { state } = await runYaml(t, yaml(steps));
    assert.equal(state.order.at(-2), 'start:fin');
    assert.ok(state.order.indexOf('end:independent') < state.order.indexOf('start:fin'));
  });

  it('skips failure() steps when nothing failed', async (t) => {
    const { result, events } = await runYaml(
      t,
      yaml('  - { id: ok, uses: noop }\n  - { id: rescue, uses: noop, needs: ok, if: failure() }\n'),
    );
    assert.equal(result.status, 'success');
    assert.equal(stepState(result, 'rescue').status, 'skipped');
    assert.equal(ofType(events, 'step:end').find((e) => e.id === 'rescue')?.reason, 'nothing failed');
  });

  it('lets the run go on after a continue_on_error step failed', async (t) => {
    const { result } = await runYaml(
      t,
      yaml('  - { id: flaky, uses: fail, continue_on_error: true, with: { message: meh } }\n  - { id: after, uses: noop, needs: flaky }\n'),
    );
    assert.deepEqual(statuses(result), { flaky: 'failed', after: 'success' });
    assert.equal(result.status, 'success');
    assert.equal(result.error, undefined);
  });

  it('fails a matrix cell without failing the other cells', async (t) => {
    // fail_times is the cell's value, kept an integer: cell[0] succeeds, cell[1] fails its only attempt.
    const steps = `  - id: cell
    uses: fail
    matrix: { n: [0, 1] }
    with: { message: "cell {{ matrix.n }} failed", fail_times: "{{ matrix.n }}" }
  - { id: per_cell, uses: noop, matrix: { n: [0, 1] }, needs: cell }
`;
    const { result } = await runYaml(t, yaml(steps));
    assert.deepEqual(statuses(result), { 'cell[0]': 'success', 'cell[1]': 'failed', 'per_cell[0]': 'success', 'per_cell[1]': 'skipped' });
    assert.equal(stepState(result, 'cell[1]').error, 'cell 1 failed');
    assert.equal(result.status, 'failed');
  });
});
