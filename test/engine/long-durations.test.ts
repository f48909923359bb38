// Durations past 2^31 ms (about 24.8 days): Node's setTimeout fires those at once; dbflow waits them out.
import assert from 'node:assert/strict';
import { it, mock } from 'node:test';
import { setLongTimeout, timeoutSignal, runPipeline, type EngineEvent } from '../../src/index.js';
import { ofType, prepare, runYaml, statuses, yaml } from './helpers.js';

const DAY = 86_400_000;

it('a step and a pipeline with timeout: 30d run to the end instead of timing out at once', async (t) => {
  const steps = '  - { id: slow, uses: sleep, timeout: 30d, with: { ms: 200 } }\n  - { id: after, uses: noop, needs: slow }\n';
  const { result } = await runYaml(t, yaml(steps, 'timeout: 30d\n'));
  assert.equal(result.error, undefined);
  assert.deepEqual(statuses(result), { slow: 'success', after: 'success' });
});

it('a retry delay of 30d waits: the second attempt has not started when the run is cancelled', async (t) => {
  const p = await prepare(
    t,
    yaml('  - { id: flaky, uses: fail, retry: { max_attempts: 2, delay: 30d }, with: { message: "try again", fail_times: 1 } }\n'),
  );
  const controller = new AbortController();
  const events: EngineEvent[] = [];
  const result = await runPipeline(p.loaded, {
    stateDir: p.stateDir,
    env: p.env,
    signal: controller.signal,
    onEvent: (e) => {
      events.push(e);
      // The retry is announced just before its wait: cancel once the wait has had time to go wrong.
      if (e.type === 'step:retry') setImmediate(() => setTimeout(() => controller.abort(), 100));
    },
  });
  assert.deepEqual(
    ofType(events, 'step:retry').map((e) => e.delayMs),
    [30 * DAY],
  );
  assert.deepEqual(
    ofType(events, 'step:start').map((e) => e.attempt),
    [1],
    'the second attempt waits its 30 days',
  );
  assert.equal(result.status, 'cancelled');
});

it('setLongTimeout and timeoutSignal fire at their time, not before, however long', (t) => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  t.after(() => mock.timers.reset());
  let fired = 0;
  setLongTimeout(() => fired++, 30 * DAY);
  const signal = timeoutSignal(40 * DAY);
  mock.timers.tick(2 ** 31);
  assert.equal(fired, 0, 'not at 2^31 ms');
  mock.timers.tick(30 * DAY - 2 ** 31 - 1);
  assert.equal(fired, 0, 'not a millisecond early');
  mock.timers.tick(1);
  assert.equal(fired, 1, 'at 30 days');
  assert.equal(signal.aborted, false);
  mock.timers.tick(10 * DAY);
  assert.equal(signal.aborted, true, 'the signal at 40 days');
  const cleared = setLongTimeout(() => fired++, 50 * DAY);
  cleared.clear();
  mock.timers.tick(60 * DAY);
  assert.equal(fired, 1, 'a cleared timer never fires');
});
