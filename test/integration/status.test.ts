// `dbflow status`: each pipeline's newest verified backup against its RPO, as a monitoring check.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { writePipeline } from '../helpers/backup-run.js';
import { dbflow } from '../helpers/cli.js';
import { failingPipeline, OPS_PASSPHRASE, resultsIn, sqlitePipeline } from '../helpers/ops.js';
import { tmpDir } from '../helpers/tmp.js';

const env = { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: undefined };

interface StatusLine {
  pipeline: string | null;
  file: string;
  rpo_ms: number | null;
  last_verified_at: string | null;
  age_ms: number | null;
  state: string;
}

test('status: ok, STALE, never and "no rpo" from the run records; invalid files reported; exit codes for a monitoring check', async (t) => {
  const cwd = tmpDir(t);
  const dir = path.join(cwd, 'pipelines');
  mkdirSync(dir);
  const fresh = writePipeline(dir, sqlitePipeline('fresh', 'rpo: 1h'), 'fresh.yaml');
  const tight = writePipeline(dir, sqlitePipeline('tight', 'rpo: 1s'), 'tight.yaml');
  const unverified = writePipeline(dir, sqlitePipeline('unverified', 'rpo: 1h', false), 'unverified.yaml');
  const failing = writePipeline(dir, failingPipeline('failing', 'no disk', 'boom', 'rpo: 1h'), 'failing.yaml');
  writePipeline(dir, sqlitePipeline('never', 'rpo: 26h'), 'never.yaml');
  const norpo = writePipeline(dir, sqlitePipeline('norpo'), 'norpo.yml');
  for (const [file, code] of [
    [fresh, 0],
    [tight, 0],
    [unverified, 0],
    [failing, 1],
    [norpo, 0],
  ] as const) {
    const r = await dbflow(['run', file], { cwd, env });
    assert.equal(r.exitCode, code, `${file}\n${r.stderr}`);
  }
  const finished = (name: string): string => resultsIn(path.join(cwd, '.dbflow')).find((r) => r.pipeline === name)!.finished_at;
  const tightAge = Date.now() - Date.parse(finished('tight'));
  if (tightAge < 1100) await sleep(1100 - tightAge);

  // Fresh: exit 0, state ok.
  const ok = await dbflow(['status', 'pipelines/fresh.yaml'], { cwd, env });
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.equal(ok.stderr, '');
  const lines = ok.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^PIPELINE +RPO +LAST VERIFIED +AGE +STATE$/);
  assert.match(lines[1]!, new RegExp(`^fresh +1h +${finished('fresh').replace(/\.\d+Z$/, 'Z')} +\\S+( \\S+)? +ok$`));
  // A monitoring user without the runs' environment (the passphrase variable) gets the same answer.
  const bare = await dbflow(['status', 'pipelines/fresh.yaml'], { cwd, env: { ...env, TEST_PASSPHRASE: undefined } });
  assert.equal(bare.exitCode, 0, bare.stderr);
  assert.match(bare.stdout, /^fresh +1h .* ok$/m);
  const okJson = JSON.parse((await dbflow(['status', '--json', 'pipelines/fresh.yaml'], { cwd, env })).stdout) as StatusLine[];
  assert.equal(okJson.length, 1);
  assert.equal(okJson[0]!.state, 'ok');
  assert.equal(okJson[0]!.rpo_ms, 3_600_000);
  assert.equal(okJson[0]!.last_verified_at, finished('fresh'));
  assert.ok(okJson[0]!.age_ms! >= 0 && okJson[0]!.age_ms! < 3_600_000);

  // Stale: exit 1, STALE, and a line on stderr saying by how much.
  const stale = await dbflow(['status', 'pipelines/tight.yaml'], { cwd, env });
  assert.equal(stale.exitCode, 1);
  assert.match(stale.stdout, /^tight +1s +\S+ +\S+( \S+)? +STALE$/m);
  assert.match(
    stale.stderr,
    /^dbflow: pipeline "tight" is STALE: its last verified backup is \S+( \S+)? old, \S+( \S+)? over its RPO of 1s \(pipelines\/tight\.yaml\)\.$/m,
  );

  // A folder (the default "pipelines"): every pipeline judged; no verified backup is "never" (a failed run or one
  // without a restore test does not count); without an rpo it is listed, not judged.
  const all = await dbflow(['status', '--json'], { cwd, env });
  assert.equal(all.exitCode, 1);
  const states = Object.fromEntries((JSON.parse(all.stdout) as StatusLine[]).map((s) => [s.pipeline, s.state]));
  assert.deepEqual(states, { failing: 'never', fresh: 'ok', never: 'never', norpo: 'no_rpo', tight: 'stale', unverified: 'never' });
  for (const name of ['never', 'failing', 'unverified'])
    assert.match(all.stderr, new RegExp(`^dbflow: pipeline "${name}" has no verified backup in .*; its RPO is \\S+`, 'm'));
  assert.match(all.stderr, /pipeline "never" has no verified backup .*; its RPO is 1d 2h/);
  assert.doesNotMatch(all.stderr, /"fresh"|"norpo"/);
  const table = await dbflow(['status', 'pipelines'], { cwd, env });
  assert.match(table.stdout, /^never +1d 2h +never +- +never$/m);
  assert.match(table.stdout, /^norpo +- +\S+Z +\S+( \S+)? +no rpo$/m);
  const notJudged = await dbflow(['status', 'pipelines/norpo.yml', 'pipelines/fresh.yaml'], { cwd, env });
  assert.equal(notJudged.exitCode, 0, notJudged.stderr);

  // An invalid file: its file:line:col error, exit 2 — unless something is stale, which wins with 1.
  writePipeline(cwd, 'version: 1\nname: broken\nstepz: []\n', 'broken.yaml');
  const invalid = await dbflow(['status', 'pipelines/fresh.yaml', 'broken.yaml'], { cwd, env });
  assert.equal(invalid.exitCode, 2);
  assert.match(invalid.stderr, /broken\.yaml:3:1: /);
  assert.match(invalid.stdout, /^broken\.yaml +- +- +- +INVALID$/m);
  assert.match(invalid.stdout, /^fresh .* ok$/m);
  const staleWins = await dbflow(['status', 'broken.yaml', 'pipelines/tight.yaml'], { cwd, env });
  assert.equal(staleWins.exitCode, 1);

  // Another state folder has no runs: never.
  const elsewhere = await dbflow(['status', 'pipelines/fresh.yaml', '--state-dir', path.join(cwd, 'other')], { cwd, env });
  assert.equal(elsewhere.exitCode, 1);
  assert.match(elsewhere.stdout, /^fresh +1h +never +- +never$/m);
});

test('status: the environment of the runs is not needed, and a folder without pipelines is a usage error', async (t) => {
  const cwd = tmpDir(t);
  // The pipeline reads its database URL from an environment variable this check does not have.
  writePipeline(cwd, sqlitePipeline('fromenv', 'rpo: 1h').replace('"sqlite:./fromenv.sqlite3"', '"{{ env.FROMENV_URL }}"'), 'fromenv.yaml');
  const r = await dbflow(['status', 'fromenv.yaml'], { cwd, env: { ...env, FROMENV_URL: undefined } });
  assert.equal(r.exitCode, 1, r.stderr);
  assert.match(r.stdout, /^fromenv +1h +never +- +never$/m);
  const none = await dbflow(['status'], { cwd, env });
  assert.equal(none.exitCode, 2);
  mkdirSync(path.join(cwd, 'empty'));
  const empty = await dbflow(['status', 'empty'], { cwd, env });
  assert.equal(empty.exitCode, 2);
  assert.match(empty.stderr, /no pipeline files/);
});

test('status: the measured restore time of the last verified backup against rto: ok, SLOW (exit 1), unmeasured; in the manifest and the metrics', async (t) => {
  const cwd = tmpDir(t);
  const dir = path.join(cwd, 'pipelines');
  mkdirSync(dir);
  const roomy = writePipeline(dir, sqlitePipeline('roomy', 'rpo: 1h\nrto: 1h'), 'roomy.yaml');
  const tight = writePipeline(dir, sqlitePipeline('tightrto', 'rpo: 1h\nrto: 1ms'), 'tightrto.yaml');
  writePipeline(dir, sqlitePipeline('unrun', 'rto: 1h'), 'unrun.yaml');
  for (const file of [roomy, tight]) {
    const r = await dbflow(['run', file], { cwd, env });
    assert.equal(r.exitCode, 0, `${file}\n${r.stderr}`);
  }
  // The manifest records how long the restore-test took.
  const result = resultsIn(path.join(cwd, '.dbflow')).find((r) => r.pipeline === 'roomy')!;
  const manifest = JSON.parse(readFileSync(new URL(result.summary.manifest as string), 'utf8')) as {
    verification: { check: string; duration_ms?: number }[];
  };
  const restore = manifest.verification.find((v) => v.check === 'restore')!;
  assert.ok(typeof restore.duration_ms === 'number' && restore.duration_ms > 0, JSON.stringify(manifest.verification));

  const ok = await dbflow(['status', 'pipelines/roomy.yaml'], { cwd, env });
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.match(ok.stdout, /^PIPELINE +RPO +LAST VERIFIED +AGE +STATE +RESTORE +RTO +RTO STATE$/m);
  assert.match(ok.stdout, /^roomy +1h +\S+ +\S+( \S+)? +ok +\S+ +1h +ok$/m);
  const slow = await dbflow(['status', 'pipelines/tightrto.yaml', 'pipelines/unrun.yaml'], { cwd, env });
  assert.equal(slow.exitCode, 1, slow.stdout + slow.stderr);
  assert.match(slow.stdout, /^tightrto .* 1ms +SLOW$/m);
  assert.match(slow.stdout, /^unrun .* +- +1h +unmeasured$/m);
  assert.match(
    slow.stderr,
    /^dbflow: pipeline "tightrto" is SLOW to restore: the restore-test of database "demo" took \S+, over its RTO of 1ms \(pipelines\/tightrto\.yaml\)\.$/m,
  );
  const json = JSON.parse((await dbflow(['status', '--json', 'pipelines/tightrto.yaml'], { cwd, env })).stdout) as {
    rto_ms: number;
    rto_state: string;
    restores: { database: string; duration_ms: number }[];
  }[];
  assert.equal(json[0]!.rto_ms, 1);
  assert.equal(json[0]!.rto_state, 'slow');
  assert.equal(json[0]!.restores[0]!.database, 'demo');
  // The metrics file the run wrote says the same, in seconds.
  const prom = readFileSync(path.join(cwd, '.dbflow', 'metrics.prom'), 'utf8');
  const seconds = Number(/^dbflow_last_restore_duration_seconds\{pipeline="tightrto",database="demo"\} (\S+)$/m.exec(prom)?.[1]);
  assert.ok(Math.abs(seconds * 1000 - json[0]!.restores[0]!.duration_ms) < 1, prom);
  assert.ok(json[0]!.restores[0]!.duration_ms > 1, JSON.stringify(json[0]));
});
