// `dbflow daemon`: schedules, overlap, hot reload (a broken edit keeps the old version), metrics, a clean SIGTERM.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { lockHolder } from '../../src/index.js';
import { readAudit } from '../../src/ops/audit.js';
import { repoRoot, spawnDbflow } from '../helpers/cli.js';
import { parseMetrics, resultsIn, sampleOf, sleepLog, type ResultJson } from '../helpers/ops.js';
import { waitFor } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';
import type { ParsedFamily } from 'parse-prometheus-text-format';

const OPS_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'ops-steps.ts');

interface Nap {
  run: string;
  start: number;
  end?: number;
  cancelled?: boolean;
}

/** A pipeline due every 3 s whose one step sleeps `ms`, logging start/end lines to `<name>.log`. */
function writePipeline(dir: string, name: string, o: { ms: number; overlap: 'skip' | 'queue'; broken?: boolean }): void {
  writeFileSync(
    path.join(dir, 'pipelines', `${name}.yaml`),
    `version: 1
name: ${name}
schedule: "*/3 * * * * *"
timezone: Europe/Berlin
overlap: ${o.overlap}
plugins: [${JSON.stringify(OPS_PLUGIN)}]
steps:
  - { id: nap, uses: ${o.broken ? 'slep' : 'sleep'}, with: { ms: ${o.ms}, log: ${JSON.stringify(path.join(dir, `${name}.log`))} } }
`,
  );
}

/** The runs a pipeline's step logged, in order. */
function naps(dir: string, name: string): Nap[] {
  const byRun = new Map<string, Nap>();
  for (const { what, run, at } of sleepLog(path.join(dir, `${name}.log`))) {
    if (what === 'start') byRun.set(run, { run, start: at });
    else Object.assign(byRun.get(run)!, { end: at, cancelled: what === 'cancelled' });
  }
  return [...byRun.values()];
}

/** Waits until `check` holds; a timeout shows what the daemon said. */
function until(what: string, check: () => boolean, output: () => string): Promise<void> {
  return waitFor(what, check, 90_000).then(
    () => undefined,
    (err: Error) => Promise.reject(new Error(`${err.message}; the daemon said:\n${output()}`)),
  );
}

void test(
  'daemon: two pipelines on time, overlap skip and queue, hot reload, a broken edit keeps the old version, SIGTERM ends cleanly',
  { timeout: 240_000 },
  async (t) => {
    const dir = tmpDir(t);
    const env = { DBFLOW_LOCK_DIR: path.join(dir, 'locks') };
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(dir, 'pipelines'));
    // Each run takes 4.5 s, due every 3 s: every other due time finds the previous run still going.
    writePipeline(dir, 'skipper', { ms: 4500, overlap: 'skip' });
    writePipeline(dir, 'queuer', { ms: 4500, overlap: 'queue' });
    const daemon = spawnDbflow(['daemon', 'pipelines', '--listen', '127.0.0.1:0'], { cwd: dir, env });
    t.after(() => daemon.kill('SIGKILL'));
    let stderr = '';
    daemon.stderr.on('data', (b: Buffer) => (stderr += b.toString()));

    await until(
      'each pipeline ran twice',
      () => naps(dir, 'skipper').filter((n) => n.end).length >= 2 && naps(dir, 'queuer').filter((n) => n.end).length >= 2,
      () => stderr,
    );
    // On time: a scheduled run starts on an even second (the schedule), shortly after it.
    const skipped = naps(dir, 'skipper');
    const onTime = [...skipped.slice(0, 2), ...naps(dir, 'queuer').slice(0, 1)];
    t.diagnostic(`step started after its due time: ${onTime.map((n) => `${n.start % 3000} ms`).join(', ')}`);
    for (const n of onTime) {
      // Due every third second of the minute (Europe/Berlin is a whole number of hours off UTC); cron never fires early.
      const late = n.start % 3000;
      assert.ok(late < 2000, `run ${n.run} started ${late} ms after its due time`);
    }
    // skip: never two at once, and the due time in between was skipped (4 s apart, not 3).
    assert.ok(skipped[1]!.start >= skipped[0]!.end!, 'skipper runs never overlap');
    const dueTime = (n: Nap): number => n.start - (n.start % 3000);
    assert.ok(dueTime(skipped[1]!) - dueTime(skipped[0]!) >= 6000, 'the due time during the first run was skipped');
    assert.match(stderr, /\[skipper\] skipped: the previous run \(\S+\) is still running \(overlap: skip\)/);
    // queue: the run that came due during the first starts as soon as the first ends.
    const queued = naps(dir, 'queuer');
    assert.ok(queued[1]!.start >= queued[0]!.end!, 'queuer runs never overlap');
    assert.ok(queued[1]!.start - queued[0]!.end! < 2000, 'the queued run started right after the first ended');
    assert.match(stderr, /\[queuer\] queued: the previous run \(\S+\) is still running/);

    // An edit is picked up: skipper now sleeps 200 ms.
    const edited = Date.now();
    writePipeline(dir, 'skipper', { ms: 200, overlap: 'skip' });
    await until(
      'skipper ran the edited version',
      () => naps(dir, 'skipper').some((n) => n.start > edited && n.end && n.end - n.start < 1500),
      () => stderr,
    );
    assert.match(stderr, /skipper\.yaml \(skipper\): reloaded "\*\/3 \* \* \* \* \*" Europe\/Berlin, overlap: skip/);

    // A broken edit is reported with file:line:col, and the previous version keeps running.
    const broken = Date.now();
    writePipeline(dir, 'queuer', { ms: 4500, overlap: 'queue', broken: true });
    await until(
      'the broken edit was reported',
      () => /queuer\.yaml: this version does not validate; keeping the version loaded at/.test(stderr),
      () => stderr,
    );
    assert.match(stderr, /queuer\.yaml:8:\d+: unknown step type "slep"\. Did you mean "sleep"\?/);
    await until(
      'queuer ran again after the broken edit',
      () => naps(dir, 'queuer').some((n) => n.start > broken + 200),
      () => stderr,
    );

    // Metrics: the daemon's own counters, and the run records' figures.
    const listen = /metrics on (http:\/\/\S+\/metrics)/.exec(stderr)?.[1];
    assert.ok(listen, stderr);
    // Read the endpoint between two identical looks at the run records, so both describe the same runs.
    let families: ParsedFamily[] = [];
    let records: ResultJson[] = [];
    for (let settled = false; !settled;) {
      records = resultsIn(path.join(dir, '.dbflow'));
      families = parseMetrics(await (await fetch(listen)).text());
      settled = resultsIn(path.join(dir, '.dbflow')).length === records.length;
    }
    assert.ok(sampleOf(families, 'dbflow_daemon_runs_skipped_total', { pipeline: 'skipper', reason: 'overlap' })! >= 1);
    assert.equal(sampleOf(families, 'dbflow_daemon_reload_errors_total', { file: 'queuer.yaml' }), 1);
    assert.equal(sampleOf(families, 'dbflow_daemon_pipeline_valid', { file: 'queuer.yaml' }), 0);
    assert.equal(sampleOf(families, 'dbflow_daemon_pipeline_valid', { file: 'skipper.yaml' }), 1);
    for (const name of ['skipper', 'queuer']) {
      const mine = records.filter((r) => r.pipeline === name);
      const newest = mine.filter((r) => r.status === 'success').at(-1)!;
      assert.equal(
        sampleOf(families, 'dbflow_runs_total', { pipeline: name, status: 'success' }),
        mine.filter((r) => r.status === 'success').length,
      );
      assert.equal(sampleOf(families, 'dbflow_last_success_timestamp_seconds', { pipeline: name }), Date.parse(newest.finished_at) / 1000);
      assert.equal(sampleOf(families, 'dbflow_last_run_duration_seconds', { pipeline: name }), mine.at(-1)!.duration_ms / 1000);
      assert.ok(sampleOf(families, 'dbflow_daemon_runs_started_total', { pipeline: name })! >= mine.length);
    }

    // SIGTERM while queuer runs: the run is cancelled, the daemon exits 0, and no lock is held.
    await until(
      'a queuer run is in progress',
      () => naps(dir, 'queuer').some((n) => !n.end),
      () => stderr,
    );
    daemon.kill('SIGTERM');
    const result = await daemon;
    assert.equal(result.exitCode, 0, stderr);
    assert.match(stderr, /SIGTERM: stopping/);
    assert.match(stderr, /stopped; every run has ended and released its lock/);
    const last = naps(dir, 'queuer').at(-1)!;
    assert.equal(last.cancelled, true, 'the running step was cancelled');
    const record = JSON.parse(readFileSync(path.join(dir, '.dbflow', 'runs', last.run, 'result.json'), 'utf8')) as { status: string };
    assert.equal(record.status, 'cancelled');
    // Every run of the daemon left its audit line, as `dbflow run` does.
    const audit = readAudit(path.join(dir, '.dbflow'));
    const runs = resultsIn(path.join(dir, '.dbflow'));
    assert.deepEqual(audit.map((a) => a.run_id).sort(), runs.map((r) => r.run_id).sort());
    assert.ok(audit.every((a) => a.command === 'run' && a.target.startsWith(path.join(dir, 'pipelines'))));
    assert.equal(audit.find((a) => a.run_id === last.run)?.outcome, 'cancelled');
    process.env.DBFLOW_LOCK_DIR = env.DBFLOW_LOCK_DIR;
    t.after(() => delete process.env.DBFLOW_LOCK_DIR);
    const locks = readdirSync(env.DBFLOW_LOCK_DIR).filter((f) => f.endsWith('.lock'));
    assert.equal(locks.length, 2, 'one lock per pipeline');
    for (const name of ['skipper', 'queuer']) {
      assert.equal(
        await lockHolder(name, `file://${path.join(dir, 'pipelines', `${name}.yaml`)}`),
        undefined,
        `${name}: nobody holds its lock`,
      );
    }
  },
);
