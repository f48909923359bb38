// The fleet's commands refuse bad usage with exit 2 and a message that says what to do (no Redis needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

void test('worker, workers, runs --queue: usage errors (exit 2) name the fix and never print a queue password', async (t) => {
  const cwd = tmpDir(t);
  const env = { DBFLOW_QUEUE: undefined };
  const cases: [string[], RegExp][] = [
    [['worker'], /dbflow worker needs the fleet's Redis: --queue redis:\/\/host:6379 \(or set DBFLOW_QUEUE\)/],
    [['workers'], /dbflow workers needs the fleet's Redis/],
    [['worker', '--queue', 'redis://127.0.0.1:1', '--labels', 'region=eu west'], /--labels: "region=eu west" is not key=value/],
    [['worker', '--queue', 'redis://127.0.0.1:1', '--concurrency', '0'], /--concurrency must be at least 1/],
    [['worker', '--queue', 'redis://127.0.0.1:1', '--lease', '100ms'], /--lease must be at least 1s/],
    [['worker', '--queue', 'http://user:topsecret@h:6379'], /--queue must be a redis:\/\/ or rediss:\/\/ URL/],
    [['runs', '--queue', 'redis://user:topsecret@h/x'], /--queue: the database of redis:\/\/h\/x must be a number/],
  ];
  for (const [args, message] of cases) {
    const r = await dbflow(args, { cwd, env });
    assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.ok(!r.stderr.includes('topsecret'), r.stderr);
    assert.ok(!/^\s+at /m.test(r.stderr), r.stderr);
  }
});
