// SIGINT during a streaming run: exit 130, cleanup ran, no artifact published, run recorded as cancelled; also at a terminal.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { hasStackTrace, spawnDbflow } from '../helpers/cli.js';
import { waitFor } from '../helpers/processes.js';
import { dbflowAtTerminal } from '../helpers/pty.js';
import { writeSlowPipeline } from '../helpers/slow-pipeline.js';
import { tmpDir } from '../helpers/tmp.js';

/** A pipeline streaming 100 MB slowly from the fixture source into a folder; the source leaves marker files. */
function slowPipeline(t: TestContext): { file: string; target: string; stateDir: string; marker: string } {
  const dir = tmpDir(t);
  const target = path.join(dir, 'target');
  const stateDir = path.join(dir, 'state');
  const marker = path.join(dir, 'marker');
  mkdirSync(target);
  const file = writeSlowPipeline(dir, { name: 'slow', size: 100_000_000, delayMs: 10, marker, to: `file://${target}/artifact.bin` });
  return { file, target, stateDir, marker };
}

/** What an interrupted run must leave: the cleanup ran once, nothing published, result.json and the audit line say cancelled. */
function assertCleanlyCancelled(p: ReturnType<typeof slowPipeline>): void {
  assert.ok(existsSync(`${p.marker}.cleanup`), 'the cleanup of the source ran');
  assert.equal(readFileSync(`${p.marker}.cleanup`, 'utf8'), 'produce\n', 'exactly once');
  assert.deepEqual(readdirSync(p.target), [], 'nothing was published in the target folder');

  const runs = readdirSync(path.join(p.stateDir, 'runs'));
  assert.equal(runs.length, 1);
  const result = JSON.parse(readFileSync(path.join(p.stateDir, 'runs', runs[0]!, 'result.json'), 'utf8')) as {
    status: string;
    steps: Record<string, { status: string }>;
  };
  assert.equal(result.status, 'cancelled');
  assert.deepEqual(result.steps, {
    produce: { ...result.steps.produce, status: 'cancelled' },
    store: { ...result.steps.store, status: 'cancelled' },
  });
  const audit = readFileSync(path.join(p.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n');
  assert.equal(audit.length, 1, 'one audit line');
  assert.deepEqual(
    (({ command, outcome, exit_code, run_id }) => ({ command, outcome, exit_code, run_id }))(
      JSON.parse(audit[0]!) as Record<string, unknown>,
    ),
    { command: 'run', outcome: 'cancelled', exit_code: 130, run_id: runs[0] },
  );
}

describe('dbflow run, interrupted', () => {
  it('stops on SIGINT: exit 130, cleanup ran, no artifact, result.json says cancelled', async (t) => {
    const p = slowPipeline(t);
    const child = spawnDbflow(['run', p.file, '--state-dir', p.stateDir]);
    try {
      await waitFor('the stream to start', () => existsSync(`${p.marker}.started`));
      await delay(300); // mid-stream
      assert.equal(child.exitCode, null, 'still running when interrupted');
      child.kill('SIGINT');
      const r = await child;
      const stderr = String(r.stderr);
      assert.equal(r.exitCode, 130, `exit code 130; stderr:\n${stderr}`);
      assert.match(stderr, /dbflow: SIGINT: stopping/);
      assert.equal(hasStackTrace(stderr), false, stderr);
      assertCleanlyCancelled(p);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('stops on Ctrl-C at a terminal, with the live view on: exit 130, cleanup ran, cancelled, audited', async (t) => {
    const p = slowPipeline(t);
    const { child, interrupt } = dbflowAtTerminal(['run', p.file, '--state-dir', p.stateDir]);
    try {
      await waitFor(
        'the stream to start',
        () => existsSync(`${p.marker}.started`),
        30_000,
        () => child.exitCode !== null,
      );
      await delay(300); // mid-stream
      interrupt();
      const r = await child;
      const screen = String(r.stdout);
      assert.equal(r.exitCode, 130, `exit code 130; terminal:\n${screen}`);
      assert.match(screen, /dbflow: SIGINT: stopping/);
      assert.match(screen, /slow: cancelled in /, 'the summary is printed');
      assert.equal(hasStackTrace(screen), false, screen);
      assertCleanlyCancelled(p);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
