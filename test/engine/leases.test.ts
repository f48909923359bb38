// Leases: a resource held until every step that depends on its step has finished, then released once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prepare, run, runYaml, statuses, until, yaml } from './helpers.js';

const count = (list: string[], item: string): number => list.filter((x) => x === item).length;

describe('leases', () => {
  it('releases only after every dependent has finished', async (t) => {
    const steps = `  - { id: hold, uses: lease }
  - { id: short, uses: use-lease, with: { lease: hold, ms: 20 } }
  - { id: long, uses: use-lease, with: { lease: hold, ms: 200 } }
`;
    const { result, state } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'success');
    assert.equal(count(state.order, 'release:hold'), 1, 'released exactly once');
    const release = state.order.indexOf('release:hold');
    assert.ok(release > state.order.indexOf('end:short'), state.order.join(' '));
    assert.ok(release > state.order.indexOf('end:long'), state.order.join(' '));
    assert.deepEqual(result.steps.get('long')?.outputs, { resource: 'hold' }, 'the dependent read the leased resource');
  });

  it('releases before the run ends when no step depends on it', async (t) => {
    const { state } = await runYaml(t, yaml('  - { id: hold, uses: lease }\n  - { id: other, uses: sleep, with: { ms: 100 } }\n'));
    assert.ok(state.order.indexOf('release:hold') < state.order.indexOf('end:other'), state.order.join(' '));
  });

  it('releases after the dependents also when one of them fails', async (t) => {
    const steps = `  - { id: hold, uses: lease }
  - { id: short, uses: use-lease, with: { lease: hold, ms: 10, fail: "no luck" } }
  - { id: long, uses: use-lease, with: { lease: hold, ms: 200 } }
`;
    const { result, state } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'failed');
    assert.equal(count(state.order, 'release:hold'), 1);
    assert.ok(state.order.indexOf('release:hold') > state.order.indexOf('end:long'), state.order.join(' '));
  });

  it('releases when its dependents are skipped', async (t) => {
    const steps = `  - { id: hold, uses: lease }
  - { id: broken, uses: fail, with: { message: x } }
  - { id: user, uses: use-lease, needs: broken, with: { lease: hold, ms: 1 } }
`;
    const { result, state } = await runYaml(t, yaml(steps));
    assert.deepEqual(statuses(result), { hold: 'success', broken: 'failed', user: 'skipped' });
    assert.equal(count(state.order, 'release:hold'), 1);
  });

  it('releases on cancel', async (t) => {
    const steps = `  - { id: hold, uses: lease }
  - { id: user, uses: use-lease, with: { lease: hold, ms: 10000 } }
`;
    const p = await prepare(t, yaml(steps));
    const controller = new AbortController();
    const running = run(p, { signal: controller.signal });
    await until(() => p.state.order.includes('start:user'), 'the dependent to start');
    assert.equal(p.state.order.includes('release:hold'), false, 'held while the dependent runs');
    controller.abort();
    const { result } = await running;
    assert.equal(result.status, 'cancelled');
    assert.equal(count(p.state.order, 'release:hold'), 1);
  });

  it('gives each matrix cell the lease of its own cell', async (t) => {
    const steps = `  - { id: hold, uses: lease, matrix: { db: [a, b] } }
  - { id: user, uses: use-lease, matrix: { db: [a, b] }, with: { lease: hold, ms: 1 } }
`;
    const { result, state } = await runYaml(t, yaml(steps));
    assert.equal(result.status, 'success');
    assert.deepEqual(result.steps.get('user[b]')?.outputs, { resource: 'hold[b]' });
    assert.equal(count(state.order, 'release:hold[a]'), 1);
    assert.equal(count(state.order, 'release:hold[b]'), 1);
  });
});
