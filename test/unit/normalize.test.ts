// Normalization: what the user wrote becomes a Pipeline with defaults filled in and durations in ms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { load, pipeline, problems } from './helpers.js';

describe('normalize', () => {
  it('fills in step defaults', async () => {
    const { pipeline: p } = await load(pipeline('  - id: a\n    uses: noop\n'));
    const [a] = p.steps;
    assert.ok(a);
    assert.equal(a.id, 'a');
    assert.equal(a.uses, 'noop');
    assert.deepEqual(a.with, {});
    assert.deepEqual(a.needs, []);
    assert.equal(a.input, undefined);
    assert.equal(a.matrix, undefined);
    assert.equal(a.if, 'success()');
    assert.equal(a.continueOnError, false);
    assert.deepEqual(a.retry, { maxAttempts: 1, backoff: 'exponential', delayMs: 1000 });
    assert.equal(a.timeoutMs, undefined);
    assert.equal(a.finally, false);
    assert.deepEqual(a.path, ['steps', 0]);
  });

  it('fills in pipeline defaults', async () => {
    const { pipeline: p } = await load(pipeline('  - id: a\n    uses: noop\n'));
    assert.equal(p.name, 'unit');
    assert.equal(p.file, 'inline.yaml');
    assert.match(p.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(p.plugins, []);
    assert.deepEqual(p.secrets, {});
    assert.deepEqual(p.vars, {});
    assert.deepEqual(p.databases, {});
    assert.equal(p.timeoutMs, undefined);
    assert.equal(p.concurrency, undefined);
  });

  it('turns durations into milliseconds', async () => {
    const text = `version: 1
name: unit
timeout: 1d
concurrency: 3
steps:
  - { id: a, uses: noop, timeout: 500ms }
  - { id: b, uses: noop, timeout: 1.5s }
  - { id: c, uses: noop, timeout: 2m, retry: { max_attempts: 4, backoff: linear, delay: 250ms } }
  - { id: d, uses: noop, timeout: 1h, retry: { max_attempts: 2, delay: 0.5m } }
`;
    const { pipeline: p } = await load(text);
    assert.equal(p.timeoutMs, 86_400_000);
    assert.equal(p.concurrency, 3);
    assert.deepEqual(
      p.steps.map((s) => s.timeoutMs),
      [500, 1500, 120_000, 3_600_000],
    );
    assert.deepEqual(p.steps[2]?.retry, { maxAttempts: 4, backoff: 'linear', delayMs: 250 });
    assert.deepEqual(p.steps[3]?.retry, { maxAttempts: 2, backoff: 'exponential', delayMs: 30_000 });
  });

  it('refuses durations without a unit or with words', async () => {
    for (const bad of ['10', '10 minutes', '-1s', '1.s', '5 m', '2w']) {
      const found = await problems(pipeline(`  - { id: a, uses: noop, timeout: "${bad}" }\n`));
      assert.equal(found.length, 1, `"${bad}" is refused once`);
      assert.equal(found[0]?.message, `"timeout" of step "a" is "${bad}", which is not a duration such as 30s, 5m or 2h.`);
    }
  });

  it('accepts needs as a string or a list, and keeps the order of steps', async () => {
    const { pipeline: p } = await load(
      pipeline('  - { id: a, uses: noop }\n  - { id: b, uses: noop, needs: a }\n  - { id: c, uses: noop, needs: [a, b] }\n'),
    );
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(p.steps[1]?.needs, ['a']);
    assert.deepEqual(p.steps[2]?.needs, ['a', 'b']);
  });

  it('puts finally steps last, running always() by default', async () => {
    const text = `${pipeline('  - { id: a, uses: noop }\n')}finally:\n  - { id: z, uses: noop }\n  - { id: y, uses: noop, if: failure() }\n`;
    const { pipeline: p } = await load(text);
    assert.deepEqual(
      p.steps.map((s) => [s.id, s.finally, s.if]),
      [
        ['a', false, 'success()'],
        ['z', true, 'always()'],
        ['y', true, 'failure()'],
      ],
    );
    assert.deepEqual(p.steps[1]?.path, ['finally', 0]);
  });

  it('keeps secrets, vars and databases with their options', async () => {
    const text = `version: 1
name: unit
secrets:
  token: { env: DBFLOW_UNIT_TOKEN }
  key: { file: ./package.json }
vars:
  repo: file://./backups
  list: [1, 2]
databases:
  app: { driver: sqlite, url: "sqlite:./app.sqlite3" }
steps:
  - { id: a, uses: noop, continue_on_error: true, if: always() }
`;
    const { pipeline: p } = await load(text, { DBFLOW_UNIT_TOKEN: 'x' });
    assert.deepEqual(p.secrets, { token: { env: 'DBFLOW_UNIT_TOKEN' }, key: { file: './package.json' } });
    assert.deepEqual(p.vars, { repo: 'file://./backups', list: [1, 2] });
    assert.deepEqual(p.databases, { app: { driver: 'sqlite', url: 'sqlite:./app.sqlite3', options: {} } });
    assert.equal(p.steps[0]?.continueOnError, true);
    assert.equal(p.steps[0]?.if, 'always()');
  });
});
