// Retries with backoff, per-step timeouts and the pipeline timeout, on a clock the tests control (no real waits).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ofType, runYaml, statuses, stepState, testClock, yaml } from './helpers.js';

// Retry delays end at once; cleanup deadlines (60 s) never come.
const retries = () => testClock((ms) => ms !== 60_000);

const flaky = (retry: string, failTimes: number) => `  - id: flaky
    uses: fail
    retry: ${retry}
    with: { message: "try again", fail_times: ${failTimes} }
`;

describe('retry', () => {
  it('retries with exponential backoff until an attempt succeeds', async (t) => {
    const { clock, waits } = retries();
    const { result, events, state } = await runYaml(t, yaml(flaky('{ max_attempts: 3, delay: 30ms }', 2)), { clock });
    assert.equal(result.status, 'success');
    assert.equal(state.attempts.get('flaky'), 3);
    assert.deepEqual(stepState(result, 'flaky').outputs, { attempts: 3 });
    const retried = ofType(events, 'step:retry');
    assert.deepEqual(
      retried.map((e) => [e.id, e.attempt, e.delayMs, e.error]),
      [
        ['flaky', 1, 30, 'try again'],
        ['flaky', 2, 60, 'try again'],
      ],
    );
    assert.deepEqual(
      ofType(events, 'step:start').map((e) => e.attempt),
      [1, 2, 3],
    );
    assert.deepEqual(
      waits.filter((ms) => ms !== 60_000),
      [30, 60],
      'the run waited 30ms, then 60ms, between attempts (and set a 60 s deadline for each cleanup)',
    );
  });

  it('waits the same delay each time with constant backoff, and a growing one with linear', async (t) => {
    const c = retries();
    const constant = await runYaml(t, yaml(flaky('{ max_attempts: 4, backoff: constant, delay: 10ms }', 3)), { clock: c.clock });
    assert.deepEqual(
      ofType(constant.events, 'step:retry').map((e) => e.delayMs),
      [10, 10, 10],
    );
    assert.deepEqual(
      c.waits.filter((ms) => ms !== 60_000),
      [10, 10, 10],
    );
    const l = retries();
    const linear = await runYaml(t, yaml(flaky('{ max_attempts: 4, backoff: linear, delay: 10ms }', 3)), { clock: l.clock });
    assert.deepEqual(
      ofType(linear.events, 'step:retry').map((e) => e.delayMs),
      [10, 20, 30],
    );
    assert.deepEqual(
      l.waits.filter((ms) => ms !== 60_000),
      [10, 20, 30],
    );
    assert.equal(linear.result.status, 'success');
  });

  it('waits a whole day between attempts when told to, without the test waiting', async (t) => {
    const { clock, waits } = retries();
    const { result } = await runYaml(t, yaml(flaky('{ max_attempts: 3, backoff: exponential, delay: 12h }', 2)), { clock });
    assert.equal(result.status, 'success');
    assert.deepEqual(
      waits.filter((ms) => ms !== 60_000),
      [12 * 3600_000, 24 * 3600_000],
    );
  });

  it('fails the step when every attempt failed', async (t) => {
    const { result, events, state } = await runYaml(t, yaml(flaky('{ max_attempts: 2, delay: 5ms }', 99)), { clock: retries().clock });
    assert.equal(result.status, 'failed');
    assert.equal(state.attempts.get('flaky'), 2);
    assert.equal(ofType(events, 'step:retry').length, 1);
    assert.equal(stepState(result, 'flaky').error, 'try again');
  });

  it('does not retry without a retry policy', async (t) => {
    const { result, events, state } = await runYaml(t, yaml(flaky('{ max_attempts: 1 }', 1)));
    assert.equal(result.status, 'failed');
    assert.equal(state.attempts.get('flaky'), 1);
    assert.equal(ofType(events, 'step:retry').length, 0);
  });

  it('runs cleanup after each failed attempt', async (t) => {
    const { state } = await runYaml(t, yaml(flaky('{ max_attempts: 3, delay: 1ms }', 2)), { clock: retries().clock });
    assert.deepEqual(state.cleanups, ['flaky', 'flaky']);
  });
});

describe('timeouts', () => {
  it('fails a step that runs past its timeout, and its dependents', async (t) => {
    const started = Date.now();
    const steps = `  - { id: slow, uses: sleep, timeout: 100ms, with: { ms: 10000 } }
  - { id: after, uses: noop, needs: slow }
`;
    const { clock, waits } = testClock((ms) => ms === 100); // the step's deadline comes; nothing else does
    const { result } = await runYaml(t, yaml(steps), { clock });
    assert.deepEqual(
      waits.filter((ms) => ms !== 60_000),
      [100],
      "the step's deadline (and its cleanup's)",
    );
    assert.ok(Date.now() - started < 3000, 'the run did not wait for the step');
    assert.deepEqual(statuses(result), { slow: 'failed', after: 'skipped' });
    assert.equal(stepState(result, 'slow').error, 'step "slow" timed out after 100ms');
    assert.equal(result.status, 'failed');
  });

  it('fails a step at its timeout even when the step ignores its signal', async (t) => {
    const started = Date.now();
    const steps = '  - { id: deaf, uses: stubborn, timeout: 50ms, with: { ms: 8000 } }\n';
    const { result } = await runYaml(t, yaml(steps), { clock: testClock((ms) => ms === 50).clock });
    assert.equal(stepState(result, 'deaf').status, 'failed');
    assert.equal(stepState(result, 'deaf').error, 'step "deaf" timed out after 50ms');
    assert.ok(Date.now() - started < 4000, `the engine did not wait for the step (${Date.now() - started}ms)`);
  });

  it('removes what a step that ignores its signal writes to its tmpdir after its timeout, once it has ended', async (t) => {
    const steps = '  - { id: deaf, uses: stubborn, timeout: 50ms, with: { ms: 400, remake_tmpdir: true } }\n';
    const { result, state } = await runYaml(t, yaml(steps));
    assert.equal(stepState(result, 'deaf').status, 'failed');
    const dir = state.tmpdirs.get('deaf');
    assert.ok(dir, 'the step made its tmpdir');
    await new Promise((resolve) => setTimeout(resolve, 600)); // past the step's own end
    assert.equal(existsSync(dir), false, 'its tmpdir, made again after the timeout, is gone');
  });

  it('retries a step that timed out', async (t) => {
    const steps = '  - { id: slow, uses: sleep, timeout: 50ms, retry: { max_attempts: 2, delay: 1ms }, with: { ms: 10000 } }\n';
    const { clock, waits } = testClock((ms) => ms < 60_000);
    const { result, events } = await runYaml(t, yaml(steps), { clock });
    assert.deepEqual(
      waits.filter((ms) => ms !== 60_000),
      [50, 1, 50],
      'deadline, backoff, deadline',
    );
    assert.equal(result.status, 'failed');
    assert.deepEqual(
      ofType(events, 'step:retry').map((e) => e.error),
      ['step "slow" timed out after 50ms'],
    );
  });

  it('stops the whole run at the pipeline timeout', async (t) => {
    const started = Date.now();
    const steps = `  - { id: slow, uses: sleep, with: { ms: 10000 } }
  - { id: after, uses: noop, needs: slow }
`;
    const { result } = await runYaml(t, yaml(steps, 'timeout: 150ms\n'), { clock: testClock((ms) => ms === 150).clock });
    assert.ok(Date.now() - started < 3000, 'the run stopped at its timeout');
    assert.equal(result.status, 'failed');
    assert.match(result.error ?? '', /^pipeline timed out after 150ms$/);
    assert.equal(stepState(result, 'slow').status, 'failed');
    assert.equal(stepState(result, 'slow').error, 'pipeline timed out after 150ms');
    assert.notEqual(stepState(result, 'after').status, 'success');
  });
});
