// Cancelling a run through its signal: child processes die, cleanup runs, nothing new starts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alive, ofType, prepare, run, statuses, until, yaml } from './helpers.js';

// Runs the steps, cancels once the step "slow" has started, and returns the run's result.
async function cancelOnceSlowStarts(t: Parameters<typeof prepare>[0], steps: string) {
  const p = await prepare(t, yaml(steps));
  const controller = new AbortController();
  const running = run(p, { signal: controller.signal });
  await until(() => p.state.order.includes('start:slow'), 'the slow step to start');
  controller.abort();
  return (await running).result;
}

describe('cancel', () => {
  it('kills a child process started with ctx.exec and ends the run as cancelled', async (t) => {
    const steps = `  - { id: child, uses: spawn-sleep }
  - { id: later, uses: noop, needs: child }
`;
    const p = await prepare(t, yaml(steps));
    const controller = new AbortController();
    const started = Date.now();
    const running = run(p, { signal: controller.signal });
    await until(() => p.state.pids.length === 1, 'the child process to start');
    const pid = p.state.pids[0]!;
    assert.ok(alive(pid), 'the child runs before the cancel');
    controller.abort();
    const { result, events } = await running;
    assert.ok(Date.now() - started < 10_000, 'the run did not wait for `sleep 60`');
    assert.equal(result.status, 'cancelled');
    assert.deepEqual(statuses(result), { child: 'cancelled', later: 'cancelled' });
    await until(() => !alive(pid), `process ${pid} to be gone`, 3000);
    assert.deepEqual(p.state.cleanups, ['child']);
    assert.equal(ofType(events, 'run:end')[0]?.status, 'cancelled');
    assert.equal(p.state.withs.has('later'), false, 'nothing started after the cancel');
  });

  it('stops a running stream chain and cleans up every member', async (t) => {
    const steps = `  - { id: src, uses: bytes, with: { size: 1000000000, chunk: 1000, delay_ms: 5 } }
  - { id: mid, uses: passthrough, input: src }
  - { id: sink, uses: collect, input: mid }
`;
    const p = await prepare(t, yaml(steps));
    const controller = new AbortController();
    const running = run(p, { signal: controller.signal });
    await until(() => p.state.produced > 5000, 'bytes to flow');
    controller.abort();
    const { result } = await running;
    assert.equal(result.status, 'cancelled');
    assert.deepEqual(statuses(result), { src: 'cancelled', mid: 'cancelled', sink: 'cancelled' });
    assert.deepEqual([...p.state.cleanups].sort(), ['mid', 'sink', 'src']);
    assert.equal(p.state.collected.has('sink'), false, 'the sink never saw the end of its input');
  });

  it('runs nothing when the signal is already aborted', async (t) => {
    const p = await prepare(t, yaml('  - { id: a, uses: noop }\n  - { id: b, uses: sleep, with: { ms: 10 } }\n'));
    const { result } = await run(p, { signal: AbortSignal.abort() });
    assert.equal(result.status, 'cancelled');
    assert.deepEqual(statuses(result), { a: 'cancelled', b: 'cancelled' });
    assert.deepEqual(p.state.order, []);
  });

  it('still runs cancelled() steps', async (t) => {
    const steps = `  - { id: slow, uses: sleep, with: { ms: 10000 } }
  - { id: on_cancel, uses: noop, needs: slow, if: cancelled() }
  - { id: on_success, uses: noop, needs: slow }
`;
    const result = await cancelOnceSlowStarts(t, steps);
    assert.deepEqual(statuses(result), { slow: 'cancelled', on_cancel: 'success', on_success: 'cancelled' });
    assert.equal(result.status, 'cancelled');
  });

  it('gives steps that run because of the cancel a signal that is not aborted', async (t) => {
    const steps = `  - { id: slow, uses: sleep, with: { ms: 10000 } }
finally:
  - { id: notify, uses: sleep, with: { ms: 30 } }
`;
    const result = await cancelOnceSlowStarts(t, steps);
    assert.deepEqual(statuses(result), { slow: 'cancelled', notify: 'success' });
    assert.equal(result.status, 'cancelled');
  });
});
