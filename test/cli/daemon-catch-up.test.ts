// `dbflow daemon` catching up a due time missed while no daemon ran (`catch_up:`): once, only for a pipeline that ran
// before, never after a run that did its work, never beyond `catch_up: <duration>`, and not at all with `false`.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import { onceAt, OPS_STEPS_PLUGIN, parseMetrics, sampleOf, sleepLog } from '../helpers/ops.js';
import { waitFor } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * A pipeline due once a year at `due` (UTC, to the second) whose one step logs its run to `<name>.log`; the step ends
 * at once, or (`name` "cancelled") once the file `release` exists.
 */
function writePipeline(dir: string, name: string, due: Date, catchUp?: string): void {
  const hold = name === 'cancelled' ? `ms: 60000, until_file: ${JSON.stringify(path.join(dir, 'release'))}` : 'ms: 10';
  writeFileSync(
    path.join(dir, 'pipelines', `${name}.yaml`),
    `version: 1
name: ${name}
schedule: "${onceAt(due)}"
timezone: UTC
${catchUp === undefined ? '' : `catch_up: ${catchUp}\n`}plugins: [${JSON.stringify(OPS_STEPS_PLUGIN)}]
steps:
  - { id: nap, uses: sleep, with: { ${hold}, log: ${JSON.stringify(path.join(dir, `${name}.log`))} } }
`,
  );
}

/** How many runs of `name` its step logged. */
function runsOf(dir: string, name: string): number {
  return sleepLog(path.join(dir, `${name}.log`)).filter((l) => l.what === 'end').length;
}

void test(
  'daemon: a due time missed while no daemon ran is run once at start (catch_up), also after a cancelled run; not when it never ran, with catch_up: false, or later than catch_up: <duration>',
  { timeout: 120_000 },
  async (t) => {
    const dir = tmpDir(t);
    mkdirSync(path.join(dir, 'pipelines'));
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks'), DBFLOW_STATE_DIR: path.join(dir, 'state') };
    // Each pipeline but "never" ran once, by hand, before its due time.
    const names = ['missed', 'off', 'late'];
    const ahead = new Date(Date.now() + 3_600_000);
    const pipelines = [['missed'], ['off', 'false'], ['late', '1s'], ['never'], ['cancelled']] as const;
    for (const [name, catchUp] of pipelines) writePipeline(dir, name, ahead, catchUp);
    for (const name of names) {
      const r = await dbflow(['run', path.join('pipelines', `${name}.yaml`)], { cwd: dir, env });
      assert.equal(r.exitCode, 0, r.stderr);
    }
    // Then their due time passes while no daemon runs.
    const due = new Date(Math.ceil((Date.now() + 500) / 1000) * 1000);
    for (const [name, catchUp] of pipelines) writePipeline(dir, name, due, catchUp);
    await sleep(due.getTime() + 2500 - Date.now());
    // "cancelled" ran only after its due time, and was cancelled (SIGTERM) before its work was done.
    const cancelled = spawnDbflow(['run', path.join('pipelines', 'cancelled.yaml')], { cwd: dir, env });
    await waitFor('the run of "cancelled" to start its step', () => existsSync(path.join(dir, 'cancelled.log')), 30_000);
    cancelled.kill('SIGTERM');
    assert.match(String((await cancelled).stdout), /cancelled/);
    writeFileSync(path.join(dir, 'release'), '');

    const start = () => {
      const daemon = spawnDbflow(['daemon', 'pipelines', '--listen', '127.0.0.1:0'], { cwd: dir, env });
      t.after(() => daemon.kill('SIGKILL'));
      let stderr = '';
      daemon.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      return { daemon, said: () => stderr };
    };
    const first = start();
    const caughtUp = (): boolean => /\[missed\] run \S+ success/.test(first.said()) && /\[cancelled\] run \S+ success/.test(first.said());
    await waitFor('the missed runs to be caught up', caughtUp, 30_000).catch((err: Error) =>
      assert.fail(`${err.message}\n${first.said()}`),
    );
    const dueIso = due.toISOString();
    for (const name of ['missed', 'cancelled'])
      assert.match(first.said(), new RegExp(`\\[${name}\\] catching up: the run due at ${dueIso} was missed while no daemon ran \\(\\d`));
    await waitFor('the late one to be reported', () => /\[late\] /.test(first.said()), 10_000);
    assert.match(
      first.said(),
      new RegExp(
        `\\[late\\] the run due at ${dueIso} was missed while no daemon ran; not caught up: it is \\S+ late, more than catch_up: 1(\\.0)?s`,
      ),
    );
    await sleep(1000);
    assert.doesNotMatch(first.said(), /\[(off|never)\] catching up/);
    const metrics = parseMetrics(await (await fetch(/metrics on (http:\/\/\S+\/metrics)/.exec(first.said())![1]!)).text());
    assert.deepEqual(
      pipelines.map(([n]) => sampleOf(metrics, 'dbflow_daemon_runs_caught_up_total', { pipeline: n }) ?? 0),
      [1, 0, 0, 0, 1],
    );
    assert.deepEqual(
      pipelines.map(([n]) => runsOf(dir, n)),
      [2, 1, 1, 0, 1],
    );
    first.daemon.kill('SIGTERM');
    await first.daemon;

    // Started again: the caught-up run did the due time's work, so nothing more runs.
    const second = start();
    await waitFor(
      'the daemon to schedule its pipelines',
      () => (second.said().match(/: scheduled "/g) ?? []).length === pipelines.length,
      20_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${second.said()}`));
    await sleep(2000);
    assert.doesNotMatch(second.said(), /catching up/);
    assert.deepEqual(
      pipelines.map(([n]) => runsOf(dir, n)),
      [2, 1, 1, 0, 1],
    );
    second.daemon.kill('SIGTERM');
    await second.daemon;
  },
);
