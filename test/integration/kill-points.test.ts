// Kill points: runs and prunes killed (SIGKILL, SIGINT) at points of their own event stream, over PostgreSQL,
// MariaDB and SQLite, to file:// and S3. After each: every backup listed as verified passes `dbflow verify` and
// restores with stock tools to the manifest's counts, nothing partial is listed, the lock is free, and the next
// run succeeds and reaps what the killed one left (scratch databases, temporary folders; its record reads killed).
// With several copies (file:// and S3 at once), each repository holds what the other does.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { listRuns, loadPipeline, lockedRun, type EngineEvent } from '../../src/index.js';
import {
  checkRepository,
  leftovers,
  makeSources,
  setupCase,
  signalAt,
  type CaseSetup,
  type Driver,
  type Sources,
  type Store,
  type Trigger,
} from '../helpers/kill-case.js';
import { requireMyBackupTools } from '../helpers/mysql.js';
import { requireBackupTools } from '../helpers/postgres.js';
import { requireS3, setEnv, stopS3 } from '../helpers/s3.js';
import { tmpDir } from '../helpers/tmp.js';

type Event = EngineEvent | { type: 'line'; text: string };

const stepStart = (id: string) => (e: Event) => e.type === 'step:start' && e.id === id;
const stepEnd = (id: string) => (e: Event) => e.type === 'step:end' && e.id === id;
const is = (type: string) => (e: Event) => e.type === type;
const deletedLine = (n: number) => {
  let seen = 0;
  return (e: Event) => e.type === 'line' && /^\s+deleted /.test(e.text) && ++seen === n;
};

// The program a restore-test runs to restore (while it runs, the scratch database exists and holds part of the dump).
const RESTORE_TOOL: Record<Driver, string | undefined> = { postgres: 'pg_restore', mysql: 'mariadb', sqlite: undefined };

/** Points in a run, for every driver and storage. */
const RUN_POINTS: { name: string; trigger: (d: Driver) => Trigger }[] = [
  { name: 'at run:start', trigger: () => ({ at: is('run:start'), signal: 'SIGKILL' }) },
  { name: 'at step:start of snapshot', trigger: () => ({ at: stepStart('snapshot'), signal: 'SIGKILL' }) },
  { name: 'at step:start of dump (snapshot held)', trigger: () => ({ at: stepStart('dump'), signal: 'SIGKILL' }) },
  { name: '40 ms into upload', trigger: () => ({ at: stepStart('upload'), delayMs: 40, signal: 'SIGKILL' }) },
  {
    name: 'during restore-test (restore tool running)',
    trigger: (d) =>
      RESTORE_TOOL[d]
        ? { at: stepStart('restore_test'), child: RESTORE_TOOL[d], signal: 'SIGKILL' }
        : { at: stepStart('restore_test'), delayMs: 5, signal: 'SIGKILL' },
  },
  { name: 'at step:end of restore_test', trigger: () => ({ at: stepEnd('restore_test'), signal: 'SIGKILL' }) },
  {
    name: 'at step:end of rowcount_check (before the manifest is published)',
    trigger: () => ({ at: stepEnd('rowcount_check'), signal: 'SIGKILL' }),
  },
  { name: 'right after run:end', trigger: () => ({ at: is('run:end'), signal: 'SIGKILL' }) },
];

/** SIGINT points (file storage): the engine's cancel path must leave nothing, before any next run. */
const SIGINT_POINTS: { name: string; trigger: (d: Driver) => Trigger }[] = [
  {
    name: 'SIGINT during restore-test',
    trigger: (d) =>
      RESTORE_TOOL[d]
        ? { at: stepStart('restore_test'), child: RESTORE_TOOL[d], signal: 'SIGINT' }
        : { at: stepStart('restore_test'), delayMs: 5, signal: 'SIGINT' },
  },
];

/** Points in `dbflow prune --keep-last 1` over two backups (after a run killed in its restore-test, which prune reaps). */
const PRUNE_POINTS: { name: string; driver: Driver; store: Store; trigger: Trigger }[] = [
  {
    name: 'prune: SIGKILL after its first deletion',
    driver: 'postgres',
    store: 'file',
    trigger: { at: deletedLine(1), signal: 'SIGKILL' },
  },
  { name: 'prune: SIGKILL after its first deletion', driver: 'mysql', store: 's3', trigger: { at: deletedLine(1), signal: 'SIGKILL' } },
  { name: 'prune: SIGKILL after its second deletion', driver: 'sqlite', store: 'file', trigger: { at: deletedLine(2), signal: 'SIGKILL' } },
  { name: 'prune: SIGINT after its first deletion', driver: 'sqlite', store: 's3', trigger: { at: deletedLine(1), signal: 'SIGINT' } },
];

/**
 * Cases that fail because of work outside reaping and the engine's cancel paths (the repository listing, prune):
 * kept here, run as `todo`, to be enabled once that work is merged. Names as `<driver> <store> <point>`.
 */
const pendingOnOtherWork: string[] = [];

const DRIVERS: Driver[] = ['postgres', 'mysql', 'sqlite'];
const STORES: Store[] = ['file', 's3'];
// Several copies (file:// and S3 from one upload) at every run point: the copying is the same for every driver.
const COPIES_DRIVERS: Driver[] = ['sqlite'];

const figures = { tried: 0, violations: 0, leftScratch: 0, leftTmpdirs: 0, reapedRecords: 0, verifiedChecked: 0 };
const violations: string[] = [];
let sources: Sources | undefined;
const started = Date.now();

after(() => {
  const line = `kill points: ${figures.tried} tried, ${figures.violations} violations; a killed run left ${figures.leftScratch} scratch databases and ${figures.leftTmpdirs} temporary folders, all reaped; ${figures.reapedRecords} records read killed; ${figures.verifiedChecked} verified backups checked with dbflow verify and stock tools; ${((Date.now() - started) / 1000).toFixed(1)} s`;
  console.log(line);
  for (const v of violations) console.log(`  violation: ${v}`);
});

function record(name: string, found: string[]): void {
  for (const v of found) violations.push(`${name}: ${v}`);
  figures.violations += found.length;
  assert.deepEqual(found, [], `${name}: violations`);
}

// The next run, in this process through the public API (a CLI start per run would double the suite's time): it must get the lock at once and succeed.
async function nextRun(c: CaseSetup): Promise<void> {
  const env = { ...process.env, ...c.env };
  const loaded = await loadPipeline(c.file, { env });
  const notices: string[] = [];
  const result = await lockedRun(loaded, {
    by: 'kill-points test',
    env,
    stateDir: path.join(c.cwd, '.dbflow'),
    lockWaitMs: 0,
    notice: (m) => notices.push(m),
  });
  assert.equal(result.status, 'success', `the next run succeeds: ${result.error ?? ''}\n${notices.join('\n')}`);
}

// A killed or interrupted run, then the next run, then what must hold.
async function runCase(t: TestContext, name: string, driver: Driver, store: Store, trigger: Trigger): Promise<void> {
  const c = await setupCase(tmpDir(t), driver, store, sources!);
  figures.tried++;
  const killed = await signalAt(['run', c.file, '--json'], c, trigger, true);
  assert.ok(killed.signalled, `the trigger fired (${name}); stderr:\n${killed.stderr}`);
  assert.ok(killed.runId, 'the killed run printed its id');
  const runId = killed.runId;
  const finished = existsSync(path.join(c.cwd, '.dbflow', 'runs', runId, 'result.json'));
  const left = await leftovers(c, runId);
  figures.leftScratch += left.scratch.length;
  figures.leftTmpdirs += left.tmpdirs.length;
  if (trigger.signal === 'SIGINT') {
    assert.ok(
      killed.exitCode === 130 || (killed.ended && killed.exitCode === 0),
      `an interrupted run exits 130, not ${killed.exitCode}: ${killed.stderr}`,
    );
    assert.deepEqual(left, { tmpdirs: [], scratch: [] }, 'an interrupted run cleans up after itself');
  } else if (trigger.child) {
    // Killed while the restore tool ran: its scratch database and its step's temporary folder are there.
    if (driver !== 'sqlite') assert.equal(left.scratch.length, 1, `the scratch database of ${runId} is left by the kill`);
    assert.ok(left.tmpdirs.length > 0, `a temporary folder of ${runId} is left by the kill`);
  }

  await nextRun(c);
  assert.deepEqual(await leftovers(c, runId), { tmpdirs: [], scratch: [] }, 'the next run reaped what the killed one left');

  const status = listRuns(path.join(c.cwd, '.dbflow')).find((r) => r.id === runId)?.status;
  if (!finished && trigger.signal === 'SIGKILL') {
    assert.equal(status, 'killed', `dbflow runs says the killed run ${runId} was killed`);
    figures.reapedRecords++;
  } else assert.notEqual(status, 'running', 'a finished run does not read running');

  const repo = await checkRepository(t, c);
  figures.verifiedChecked += repo.verified;
  record(name, repo.violations);
  assert.ok(repo.verified >= 1, 'the next run left a verified backup');
}

// Two backups and a run killed in its restore-test; prune is signalled at `trigger`; then what must hold.
async function pruneCase(t: TestContext, name: string, driver: Driver, store: Store, trigger: Trigger): Promise<void> {
  const c = await setupCase(tmpDir(t), driver, store, sources!);
  figures.tried++;
  for (let i = 0; i < 2; i++) await nextRun(c);
  // A run killed in its restore-test. One that ended before the kill landed (a fast SQLite restore on a busy
  // machine) is no dead run: take another, up to three times.
  let deadRun: string | undefined;
  for (let attempt = 1; attempt <= 3 && !deadRun; attempt++) {
    const dead = await signalAt(['run', c.file, '--json'], c, { at: stepStart('restore_test'), delayMs: 5, signal: 'SIGKILL' }, true);
    if (listRuns(path.join(c.cwd, '.dbflow')).find((r) => r.id === dead.runId)?.status === 'killed') deadRun = dead.runId;
  }
  assert.ok(deadRun, 'a run was killed in its restore-test (three tries)');
  const prune = await signalAt(['prune', c.repo, '--keep-last', '1', '--orphan-grace', '0s'], c, trigger, false);
  assert.ok(prune.signalled, `the trigger fired (${name}): ${prune.stdout}\n${prune.stderr}`);
  const tmpLeft = (await leftovers(c, deadRun)).tmpdirs;
  assert.deepEqual(tmpLeft, [], 'prune reaped the temporary folders of the dead run before deleting anything');
  assert.equal(listRuns(path.join(c.cwd, '.dbflow')).find((r) => r.id === deadRun)?.status, 'killed');
  figures.reapedRecords++;

  await nextRun(c);
  assert.deepEqual(await leftovers(c, deadRun), { tmpdirs: [], scratch: [] }, 'nothing of the dead run is left');
  const repo = await checkRepository(t, c);
  figures.verifiedChecked += repo.verified;
  record(name, repo.violations);
  assert.ok(repo.verified >= 1, 'a verified backup is listed');
}

test('kill points', { concurrency: 4, timeout: 1_200_000 }, async (t) => {
  assert.ok((await requireBackupTools(t)) && (await requireMyBackupTools(t)), 'PostgreSQL, MariaDB and their tools are available');
  const s3 = await requireS3(t);
  assert.ok(s3, 's3rver is available');
  t.after(stopS3);
  // The S3 storage reads its endpoint and keys from the environment of the process that runs: here, for the next runs.
  t.after(setEnv(s3.env));
  sources = await makeSources(t, tmpDir(t), s3);
  const cases: { name: string; fn: (t: TestContext) => Promise<void> }[] = [];
  for (const driver of DRIVERS) {
    for (const store of STORES) {
      for (const p of RUN_POINTS)
        cases.push({ name: `${driver} ${store} ${p.name}`, fn: (tt) => runCase(tt, p.name, driver, store, p.trigger(driver)) });
    }
    for (const p of SIGINT_POINTS)
      cases.push({ name: `${driver} file ${p.name}`, fn: (tt) => runCase(tt, p.name, driver, 'file', p.trigger(driver)) });
    if (COPIES_DRIVERS.includes(driver))
      for (const p of [...RUN_POINTS, ...SIGINT_POINTS])
        cases.push({ name: `${driver} copies ${p.name}`, fn: (tt) => runCase(tt, p.name, driver, 'copies', p.trigger(driver)) });
  }
  for (const p of PRUNE_POINTS)
    cases.push({ name: `${p.driver} ${p.store} ${p.name}`, fn: (tt) => pruneCase(tt, p.name, p.driver, p.store, p.trigger) });
  // DBFLOW_KILL_POINTS=<regular expression> runs only the cases whose names match (when working on one).
  const only = process.env.DBFLOW_KILL_POINTS ? new RegExp(process.env.DBFLOW_KILL_POINTS) : undefined;
  await Promise.all(
    cases
      .filter((c) => !only || only.test(c.name))
      .map((c) => t.test(c.name, pendingOnOtherWork.includes(c.name) ? { todo: 'pending on work outside this suite' } : {}, c.fn)),
  );
  t.diagnostic(`kill points: ${figures.tried} tried, ${figures.violations} violations`);
});
