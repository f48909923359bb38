// Prometheus metrics written by `dbflow run`: every value equals what the run records and the manifest say.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Manifest } from '../../src/index.js';
import { writePipeline } from '../helpers/backup-run.js';
import { dbflow } from '../helpers/cli.js';
import { failingPipeline, OPS_PASSPHRASE, parseMetrics, resultsIn, sampleOf, sqlitePipeline } from '../helpers/ops.js';
import { tmpDir } from '../helpers/tmp.js';

const env = { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: undefined };
const seconds = (iso: string): number => Date.parse(iso) / 1000;

test('metrics: two successful runs and a failed one of a pipeline, as the run records and the manifest say', async (t) => {
  const cwd = tmpDir(t);
  const ok = writePipeline(cwd, sqlitePipeline('shop'), 'shop.yaml');
  // The same pipeline name, broken: its one step fails.
  const broken = writePipeline(cwd, failingPipeline('shop', 'the disk is on fire', 'boom'), 'shop-broken.yaml');
  for (const file of [ok, ok]) {
    const r = await dbflow(['run', file], { cwd, env });
    assert.equal(r.exitCode, 0, r.stderr);
  }
  // A run still going (no result.json) and an unreadable result.json are skipped, not counted.
  const stateDir = path.join(cwd, '.dbflow');
  mkdirSync(path.join(stateDir, 'runs', '29991231T000000Z-0000'), { recursive: true });
  mkdirSync(path.join(stateDir, 'runs', '29991231T000000Z-0001'), { recursive: true });
  writeFileSync(path.join(stateDir, 'runs', '29991231T000000Z-0001', 'result.json'), '{"run_id": "cut sho');
  const failed = await dbflow(['run', broken], { cwd, env });
  assert.equal(failed.exitCode, 1, failed.stderr);

  const text = readFileSync(path.join(stateDir, 'metrics.prom'), 'utf8');
  const families = parseMetrics(text);
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => sampleOf(families, name, labels);

  const results = resultsIn(stateDir).filter((r) => r.pipeline === 'shop');
  assert.equal(results.length, 3);
  const successes = results.filter((r) => r.status === 'success').sort((a, b) => Date.parse(a.finished_at) - Date.parse(b.finished_at));
  const newestSuccess = successes.at(-1)!;
  const lastRun = results.find((r) => r.status === 'failed')!;
  const manifestUrl = newestSuccess.summary.manifest!;
  const manifest = JSON.parse(readFileSync(path.resolve(cwd, manifestUrl.replace(/^file:\/\//, '')), 'utf8')) as Manifest;
  const shop = { pipeline: 'shop' };
  const demo = { pipeline: 'shop', database: 'demo' };

  // The newest run is the failed one.
  assert.equal(value('dbflow_last_run_timestamp_seconds', shop), seconds(lastRun.finished_at));
  assert.equal(value('dbflow_last_run_success', shop), 0);
  assert.equal(value('dbflow_last_run_duration_seconds', shop), lastRun.duration_ms / 1000);
  // Success and verified restore: the newest successful run, which is the manifest's run.
  assert.equal(manifest.run.id, newestSuccess.run_id);
  assert.equal(value('dbflow_last_success_timestamp_seconds', shop), seconds(newestSuccess.finished_at));
  assert.equal(value('dbflow_last_success_timestamp_seconds', shop), seconds(manifest.run.finished_at));
  assert.ok(newestSuccess.summary.verifications.some((v) => v.database === 'demo' && v.check === 'restore' && v.ok));
  assert.equal(value('dbflow_last_verified_restore_timestamp_seconds', demo), seconds(newestSuccess.finished_at));
  // Sizes: the newest successful run's artifact, as recorded and as published.
  const artifact = newestSuccess.summary.artifacts.find((a) => a.database === 'demo')!;
  assert.ok(artifact.raw_bytes! > 0);
  assert.equal(value('dbflow_backup_stored_bytes', demo), artifact.bytes);
  assert.equal(value('dbflow_backup_raw_bytes', demo), artifact.raw_bytes);
  assert.equal(value('dbflow_backup_stored_bytes', demo), manifest.artifacts[0]!.bytes);
  assert.equal(value('dbflow_backup_raw_bytes', demo), manifest.artifacts[0]!.raw?.bytes);
  // Counters over every run record kept.
  assert.equal(value('dbflow_runs_total', { pipeline: 'shop', status: 'success' }), 2);
  assert.equal(value('dbflow_runs_total', { pipeline: 'shop', status: 'failed' }), 1);
  assert.equal(value('dbflow_step_failures_total', { pipeline: 'shop', step: 'boom' }), 1);
  assert.equal(lastRun.steps.boom?.status, 'failed');
  assert.equal(families.find((f) => f.name === 'dbflow_step_failures_total')!.metrics.length, 1);
  // SQLite takes no write barrier: nothing to report there.
  assert.equal(families.find((f) => f.name === 'dbflow_snapshot_commit_blocked_seconds')?.metrics.length ?? 0, 0);

  // Types and help texts; no process metrics in a textfile.
  assert.equal(families.find((f) => f.name === 'dbflow_runs_total')?.type, 'COUNTER');
  assert.equal(families.find((f) => f.name === 'dbflow_last_success_timestamp_seconds')?.type, 'GAUGE');
  for (const f of families) {
    assert.match(f.name, /^dbflow_/);
    assert.ok(f.help.length > 20, `help of ${f.name}`);
  }
  assert.deepEqual(
    readdirSync(stateDir).filter((f) => f.includes('.tmp')),
    [],
  );
});

test('metrics: --metrics-file writes where node_exporter reads, creating the folder', async (t) => {
  const cwd = tmpDir(t);
  const file = writePipeline(cwd, failingPipeline('textfile', 'no'), 'textfile.yaml');
  const target = path.join(cwd, 'textfile_collector', 'nested', 'dbflow.prom');
  const r = await dbflow(['run', file, '--metrics-file', target], { cwd, env });
  assert.equal(r.exitCode, 1, r.stderr);
  const families = parseMetrics(readFileSync(target, 'utf8'));
  assert.equal(sampleOf(families, 'dbflow_runs_total', { pipeline: 'textfile', status: 'failed' }), 1);
  assert.equal(sampleOf(families, 'dbflow_last_run_success', { pipeline: 'textfile' }), 0);
  // Never a success: no success time, no sizes.
  assert.equal(sampleOf(families, 'dbflow_last_success_timestamp_seconds', { pipeline: 'textfile' }), undefined);
  assert.equal(existsSync(path.join(cwd, '.dbflow', 'metrics.prom')), false);
  assert.deepEqual(readdirSync(path.dirname(target)), ['dbflow.prom']);
});
