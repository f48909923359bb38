// Bench section 12: `dbflow serve` over 10,000 run records and 1,000 backups: server time of every page, a restart included.
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { sqlitePipeline } from '../../test/helpers/ops.js';
import { percentile } from './mysql-figures.js';
import type { SectionResult } from './postgres.js';
import { bounded, figure } from './report.js';
import { BenchError, CLI, runOk } from './util.js';

const SECTION = '12 dashboard';
const RUNS = 10_000;
const PIPELINES = 5;
const TARGET_MS = 200;
const ROUNDS = 30;
const BACKUPS = 1000;

/**
 * `n` backups in the repository `repo` (a folder): one real backup (made by `dbflow run` of `pipeline`), copied with
 * new run ids (artifacts hard-linked); returns the manifest URLs, oldest first.
 */
async function generateBackups(dir: string, n: number): Promise<string[]> {
  const file = path.join(dir, 'pipelines', 'p0.yaml');
  await runOk(process.execPath, [CLI, 'run', file, '--quiet', '--state-dir', path.join(dir, 'seed-state')], {
    env: { ...process.env, TEST_PASSPHRASE: 'bench' },
  });
  const repo = path.join(dir, 'pipelines', 'backups', 'p0');
  const [first] = readdirSync(repo);
  if (!first) throw new BenchError('the seed run left no backup');
  const manifest = JSON.parse(readFileSync(path.join(repo, first, 'manifest.json'), 'utf8')) as {
    run: { id: string; started_at: string; finished_at: string };
  };
  const artifacts = readdirSync(path.join(repo, first)).filter((f) => f !== 'manifest.json');
  const urls: string[] = [];
  const start = Date.now() - n * 3600_000;
  for (let i = 0; i < n; i++) {
    const at = new Date(start + i * 3600_000);
    const id = `${at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')}-b${(i % 4096).toString(16).padStart(3, '0')}`;
    const folder = path.join(repo, id);
    mkdirSync(folder);
    for (const a of artifacts) linkSync(path.join(repo, first, a), path.join(folder, a));
    const m = {
      ...manifest,
      run: { ...manifest.run, id, started_at: at.toISOString(), finished_at: new Date(at.getTime() + 4000).toISOString() },
    };
    writeFileSync(path.join(folder, 'manifest.json'), JSON.stringify(m, null, 2));
    urls.push(`file://${folder}/manifest.json`);
  }
  rmSync(path.join(repo, first), { recursive: true });
  return urls;
}

/** Writes `n` finished run records (result.json, pipeline.json, events.jsonl), a mix of statuses over `PIPELINES` pipelines. */
function generateRuns(stateDir: string, n: number, manifests: string[]): void {
  let m = 0;
  const start = Date.now() - n * 60_000;
  for (let i = 0; i < n; i++) {
    const at = new Date(start + i * 60_000);
    const id = `${at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')}-${(i % 65536).toString(16).padStart(4, '0')}`;
    const dir = path.join(stateDir, 'runs', id);
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const pipeline = `p${i % PIPELINES}`;
    const ok = i % 10 !== 3;
    const finished = new Date(at.getTime() + 4000).toISOString();
    const url = `file:///bench/backups/${pipeline}/${id}/demo.sqlite3.zst.pgp`;
    writeFileSync(
      path.join(dir, 'pipeline.json'),
      JSON.stringify({ name: pipeline, started_at: at.toISOString(), owner: { pid: 1, host: 'bench' } }),
    );
    writeFileSync(
      path.join(dir, 'result.json'),
      JSON.stringify({
        run_id: id,
        pipeline,
        status: ok ? 'success' : 'failed',
        started_at: at.toISOString(),
        finished_at: finished,
        duration_ms: 4000,
        steps: { dump: { status: 'success' }, upload: { status: ok ? 'success' : 'failed' } },
        summary: {
          artifacts: ok
            ? [{ database: 'demo', url, bytes: 3_000_000, raw_bytes: 6_000_000, sha256: '0'.repeat(64), format: 'sqlite3', layers: [] }]
            : [],
          verifications: ok ? [{ database: 'demo', check: 'restore', ok: true, detail: 'restored' }] : [],
          ...(ok && {
            manifest: pipeline === 'p0' && m < manifests.length ? manifests[m++] : `file:///bench/backups/${pipeline}/${id}/manifest.json`,
          }),
        },
      }),
    );
  }
}

async function timeGet(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.text();
  if (res.status !== 200) throw new BenchError(`GET ${url}: HTTP ${res.status}`);
  return performance.now() - t0;
}

/** Starts `dbflow serve` over `pipelines` and `stateDir`; resolves with its base URL once it announces it. */
async function startServe(pipelines: string, stateDir: string): Promise<{ base: string; startMs: number; stop: () => Promise<void> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve', pipelines, '--listen', '127.0.0.1:0', '--state-dir', stateDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TEST_PASSPHRASE: 'bench' },
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await exited;
  };
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new BenchError(`dbflow serve did not start: ${err}`)), 60_000);
      child.stderr.on('data', () => {
        const m = /dashboard on (http:\/\/[\d.]+:\d+)\//.exec(err);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
      child.on('exit', (code) => reject(new BenchError(`dbflow serve exited ${code}: ${err}`)));
    });
    return { base, startMs: performance.now() - t0, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function dashboardSection(o: { log: (s: string) => void }): Promise<SectionResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-bench-dashboard-'));
  try {
    const stateDir = path.join(dir, 'state');
    const pipelines = path.join(dir, 'pipelines');
    mkdirSync(pipelines, { recursive: true });
    for (let p = 0; p < PIPELINES; p++)
      writeFileSync(path.join(pipelines, `p${p}.yaml`), sqlitePipeline(`p${p}`, `schedule: "0 ${p} * * *"\nrpo: 26h`));
    o.log(`${SECTION}: one backup, copied to ${BACKUPS}; ${RUNS} run records`);
    const manifests = await generateBackups(dir, BACKUPS);
    generateRuns(stateDir, RUNS, manifests);
    const repo = `file://${path.join(pipelines, 'backups', 'p0')}`;
    const backupsUrl = `/backups?repo=${encodeURIComponent(repo)}`;
    let server = await startServe(pipelines, stateDir);
    try {
      // The server built the run index and the listing index before it listened: the first requests find them.
      const startFirst = server.startMs;
      const first = await timeGet(`${server.base}/`);
      const backupsFirst = await timeGet(`${server.base}${backupsUrl}`);
      const page = await (await fetch(`${server.base}${backupsUrl}`)).text();
      const listed = (page.match(/<tr><td>/g) ?? []).length;
      if (listed !== BACKUPS) throw new BenchError(`the backups page lists ${listed} backups, not ${BACKUPS}`);
      const pages: [string, string][] = [
        ['overview', '/'],
        ['runs', '/runs'],
        ['runs, filtered (pipeline, status)', '/runs?pipeline=p2&status=failed'],
        ['runs, page 100', '/runs?page=100'],
        ['metrics', '/metrics'],
        [`backups (${BACKUPS}, the repository listed on each request)`, backupsUrl],
      ];
      const loadBefore = load();
      const times = new Map<string, number[]>();
      for (let r = 0; r < ROUNDS; r++)
        for (const [name, url] of pages) times.set(name, [...(times.get(name) ?? []), await timeGet(`${server.base}${url}`)]);
      const loadAfter = load();
      // A restart: the first request reads the index file, not the records or the manifests.
      await server.stop();
      server = await startServe(pipelines, stateDir);
      const startAgain = server.startMs;
      const backupsRestart = await timeGet(`${server.base}${backupsUrl}`);
      const overviewRestart = await timeGet(`${server.base}/`);
      o.log(`${SECTION}: load average ${loadBefore} before the rounds, ${loadAfter} after`);
      const figures = [
        figure(
          SECTION,
          `first start until listening: run index built from ${RUNS} records, ${BACKUPS} manifests read`,
          Math.round(startFirst),
          'ms',
          {
            note: 'once per state folder (node start included); later starts read only new records and changed manifests',
          },
        ),
        bounded(SECTION, 'overview, first request after the first start', Math.round(first), 'ms', TARGET_MS, false),
        bounded(
          SECTION,
          `backups page (${BACKUPS}), first request after the first start`,
          Math.round(backupsFirst),
          'ms',
          TARGET_MS,
          false,
        ),
        ...pages.map(([name]) => {
          const t = times.get(name)!;
          return bounded(
            SECTION,
            `${name} p95 (${RUNS} runs)`,
            Math.round(percentile(t, 95) * 10) / 10,
            'ms',
            TARGET_MS,
            false,
            `request to last byte on loopback, ${ROUNDS} requests; p50 ${percentile(t, 50).toFixed(1)} ms; load average ${loadBefore} → ${loadAfter} (1, 5, 15 min; 2 cores)`,
          );
        }),
        figure(SECTION, 'restart until listening: indexes read from the state folder', Math.round(startAgain), 'ms', {
          note: 'node start included',
        }),
        bounded(
          SECTION,
          `backups page (${BACKUPS}), first request after a restart`,
          Math.round(backupsRestart),
          'ms',
          TARGET_MS,
          false,
          'the listing index is read from the state folder',
        ),
        bounded(SECTION, 'overview, first request after a restart', Math.round(overviewRestart), 'ms', TARGET_MS, false),
      ];
      return {
        figures,
        details: {
          runs: RUNS,
          backups: BACKUPS,
          start_first_ms: startFirst,
          start_again_ms: startAgain,
          backups_first_ms: backupsFirst,
          backups_restart_ms: backupsRestart,
          overview_restart_ms: overviewRestart,
          load_average: { before: loadBefore, after: loadAfter },
          pipelines: PIPELINES,
          rounds: ROUNDS,
          first_ms: first,
          times: Object.fromEntries(times),
        },
      };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
