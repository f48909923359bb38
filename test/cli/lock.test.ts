// The run lock through the CLI: two runs of one pipeline never overlap, and a killed holder's lock is taken over.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ExitCode } from '../../src/errors.js';
import { hasStackTrace, repoRoot, spawnDbflow } from '../helpers/cli.js';
import { sleepLog } from '../helpers/ops.js';
import { waitFor } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const WAIT_MS = 90_000;

const OPS_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'ops-steps.ts');

/** A pipeline whose one step sleeps `ms` (or until the file `release` exists) and logs "start <run>" / "end <run>" lines to `log`. */
function napPipeline(dir: string, ms: number, extra = ''): { file: string; log: string; release: string } {
  const file = path.join(dir, 'nap.yaml');
  const log = path.join(dir, 'nap.log');
  const release = path.join(dir, 'release');
  writeFileSync(
    file,
    `version: 1
name: nap
${extra}plugins: [${JSON.stringify(OPS_PLUGIN)}]
steps:
  - { id: nap, uses: sleep, with: { ms: ${ms}, log: ${JSON.stringify(log)}, until_file: ${JSON.stringify(release)} } }
`,
  );
  return { file, log, release };
}

void test(
  'two concurrent runs of one pipeline: exactly one runs, the other exits 75 naming the holder',
  { timeout: 180_000 },
  async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { file, log, release } = napPipeline(dir, 90_000);
    const procs = [spawnDbflow(['run', file], { cwd: dir, env }), spawnDbflow(['run', file], { cwd: dir, env })];
    // The holder's step waits for the release file: the other run meets the lock whatever the machine's speed.
    await Promise.race(procs);
    writeFileSync(release, '');
    const [a, b] = await Promise.all(procs);
    const codes = [a!.exitCode, b!.exitCode].sort();
    assert.deepEqual(codes, [ExitCode.ok, ExitCode.locked], `${String(a!.stderr)}\n${String(b!.stderr)}`);
    const loser = a!.exitCode === ExitCode.locked ? a! : b!;
    const winnerPid = (loser === a ? procs[1] : procs[0])!.pid;
    assert.match(
      String(loser.stderr),
      new RegExp(`pipeline "nap" \\(repository file://.*nap\\.yaml\\) is already running: pid ${winnerPid} \\(dbflow run\\)`),
    );
    assert.match(String(loser.stderr), /lock_wait|--lock-wait/);
    assert.ok(!hasStackTrace(String(loser.stderr)), String(loser.stderr));
    assert.equal(sleepLog(log).filter((l) => l.what === 'start').length, 1, 'one run started its step');
  },
);

void test('--lock-wait: the second run waits for the first to end, then runs', { timeout: 180_000 }, async (t) => {
  const dir = tmpDir(t);
  const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
  const { file, log, release } = napPipeline(dir, 90_000);
  const first = spawnDbflow(['run', file], { cwd: dir, env });
  await waitFor('the first run has started its step', () => sleepLog(log).length >= 1, WAIT_MS);
  const waiting = spawnDbflow(['run', file, '--lock-wait', '2m'], { cwd: dir, env });
  let stderr = '';
  waiting.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitFor('the second run waits', () => stderr.includes('waiting for the running nap to finish'), WAIT_MS);
  assert.match(stderr, new RegExp(`waiting for the running nap to finish \\(pid ${first.pid} \\(dbflow run\\)`));
  writeFileSync(release, '');
  assert.equal((await first).exitCode, 0);
  const second = await waiting;
  assert.equal(second.exitCode, 0, String(second.stderr));
  const steps = sleepLog(log);
  assert.deepEqual(
    steps.map((l) => l.what),
    ['start', 'end', 'start', 'end'],
  );
  assert.ok(steps[2]!.at >= steps[1]!.at, 'the second started after the first ended');
});

void test('the pipeline lock_wait applies; an unknown --lock-wait value is a usage error', { timeout: 180_000 }, async (t) => {
  const dir = tmpDir(t);
  const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
  const { file, log, release } = napPipeline(dir, 90_000, 'lock_wait: 2m\n');
  const first = spawnDbflow(['run', file], { cwd: dir, env });
  await waitFor('the first run has started its step', () => sleepLog(log).length >= 1, WAIT_MS);
  const waiting = spawnDbflow(['run', file], { cwd: dir, env });
  let stderr = '';
  waiting.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitFor('the second run waits', () => stderr.includes('waiting for the running nap to finish'), WAIT_MS);
  writeFileSync(release, '');
  assert.equal((await first).exitCode, 0);
  const second = await waiting;
  assert.equal(second.exitCode, 0, String(second.stderr));
  assert.equal(sleepLog(log).filter((l) => l.what === 'end').length, 2);
  const bad = await spawnDbflow(['run', file, '--lock-wait', 'soon'], { cwd: dir, env });
  assert.equal(bad.exitCode, ExitCode.usage);
  assert.match(String(bad.stderr), /--lock-wait must be a duration such as/);
});

void test(
  'a holder killed with SIGKILL leaves a stale lock: the next run takes it over at once and says so',
  { timeout: 180_000 },
  async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { file, log } = napPipeline(dir, 90_000);
    const holder = spawnDbflow(['run', file], { cwd: dir, env });
    await waitFor('the holder has started its step', () => sleepLog(log).length >= 1, WAIT_MS);
    holder.kill('SIGKILL');
    await holder;
    napPipeline(dir, 100);
    const next = await spawnDbflow(['run', file], { cwd: dir, env });
    assert.equal(next.exitCode, 0, String(next.stderr));
    assert.match(
      String(next.stderr),
      new RegExp(`took over the lock of pid ${holder.pid} \\(dbflow run\\) of .*, which ended without releasing it`),
    );
    // With no lock_wait, a lock still taken would have made it exit 75 at once: there is no stale-lock timeout to wait out.
    assert.doesNotMatch(String(next.stderr), /waiting for/);
    assert.equal(sleepLog(log).filter((l) => l.what === 'end').length, 1, 'the killed run never ended; the next one did');
  },
);
