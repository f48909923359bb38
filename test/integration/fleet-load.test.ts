// The fleet's acceptance load: two daemons, three workers with different labels, twenty pipelines (SQLite and PostgreSQL)
// due every ten seconds (spread over the seconds) for two minutes (FLEET_LOAD_SECONDS): every due time runs exactly once,
// on a worker whose labels match, no pipeline overlaps itself anywhere, and runs start within a second of their due time.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { allResults, enqueuedIds, fleetSetup, startDaemon, startWorker } from '../helpers/fleet.js';
import { requireBackupTools, scratchDatabase } from '../helpers/postgres.js';
import { waitFor } from '../helpers/processes.js';

const LOAD_MS = Number(process.env.FLEET_LOAD_SECONDS ?? 120) * 1000;
const EVERY_S = 10;

/** snapshot → dump → compress → upload of one database, due every 10 s at second `offset`, with `runs_on` labels when given. */
function loadPipeline(name: string, db: { driver: string; url: string }, offset: number, labels: Record<string, string>): string {
  const seed = db.driver === 'sqlite' ? '  - { id: seed, uses: sqlite-seed, with: { database: app, rows: 200 } }\n' : '';
  return `version: 1
name: ${name}
schedule: "${offset}-59/${EVERY_S} * * * * *"
${Object.keys(labels).length ? `runs_on: { labels: ${JSON.stringify(labels)} }\n` : ''}databases:
  app: ${JSON.stringify(db)}
steps:
${seed}  - { id: snapshot, uses: snapshot, ${seed ? 'needs: seed, ' : ''}with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3 } }
  - { id: upload, uses: upload, input: compress, with: { to: "file://./backups/${name}/{{ run.id }}/app.zst" } }
`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

void test(
  'fleet load: 2 daemons, 3 labelled workers, 20 pipelines (SQLite and PostgreSQL) for two minutes: each due time once, on a matching worker, no overlap, start delay p99 ≤ 1 s',
  { timeout: LOAD_MS + 90_000 },
  async (t) => {
    if (!(await requireBackupTools(t))) return;
    const setup = await fleetSetup(t);
    if (!setup) return;
    const { redis, dir, cleanup } = setup;
    const pg = await scratchDatabase(t);
    await pg.pool.query(
      'CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g',
    );
    mkdirSync(path.join(dir, 'pipelines'));
    // 14 SQLite pipelines, half of them for network a; 6 PostgreSQL pipelines for the worker that reaches the server.
    const wanted = new Map<string, Record<string, string>>();
    for (let i = 0; i < 20; i++) {
      const isPg = i % 10 >= 7;
      const name = `${isPg ? 'pg' : 'lite'}${String(i).padStart(2, '0')}`;
      const labels: Record<string, string> = isPg ? { reach: 'postgres' } : i % 2 ? { net: 'a' } : {};
      const db = isPg ? { driver: 'postgres', url: pg.url } : { driver: 'sqlite', url: `sqlite:./${name}.sqlite3` };
      wanted.set(name, labels);
      writeFileSync(path.join(dir, 'pipelines', `${name}.yaml`), loadPipeline(name, db, i % EVERY_S, labels));
    }
    const workerLabels: Record<string, Record<string, string>> = {
      'w-a': { net: 'a' },
      'w-b': { net: 'b' },
      'w-pg': { net: 'b', reach: 'postgres' },
    };
    const workers = Object.entries(workerLabels).map(([id, l]) =>
      startWorker(
        dir,
        redis.url,
        id,
        Object.entries(l)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        cleanup,
        { extra: ['--concurrency', '4', '--lease', '10s'] },
      ),
    );
    await Promise.all(workers.map((w) => w.waitFor(/taking jobs from/)));
    const daemons = [startDaemon(dir, redis.url, 'd1', cleanup), startDaemon(dir, redis.url, 'd2', cleanup)];
    await Promise.all(daemons.map((d) => d.waitFor(/pg19\.yaml \(pg19\): scheduled/)));
    const from = Date.now();
    await new Promise((resolve) => setTimeout(resolve, LOAD_MS));
    for (const d of daemons) d.proc.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.proc));
    const ids = new Set(daemons.flatMap((d) => enqueuedIds(d.output())));
    await waitFor('every enqueued job to end', async () => (await allResults(redis.client)).length >= ids.size, 60_000).catch(
      (err: Error) =>
        assert.fail(`${err.message}\n${[...daemons, ...workers].map((p) => `--- ${p.name}\n${p.output().slice(-3000)}`).join('\n')}`),
    );
    for (const w of workers) w.proc.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.proc));

    const results = await allResults(redis.client);
    const failed = results.filter((r) => r.status !== 'success');
    assert.deepEqual(failed, [], 'every run succeeded');
    // Exactly once: the runs are the due times the daemons enqueued, each once, and no due time was skipped.
    const seen = results.map((r) => `${r.pipeline}@${Date.parse(r.due_at!)}`);
    assert.equal(new Set(seen).size, seen.length, 'no due time ran twice');
    assert.deepEqual([...seen].sort(), [...ids].sort());
    for (const name of wanted.keys()) {
      const mine = results.filter((r) => r.pipeline === name).sort((a, b) => Date.parse(a.due_at!) - Date.parse(b.due_at!));
      assert.ok(mine.length >= Math.floor(LOAD_MS / 1000 / EVERY_S) - 1, `${name} ran ${mine.length} times`);
      for (let i = 1; i < mine.length; i++) {
        assert.equal(Date.parse(mine[i]!.due_at!) - Date.parse(mine[i - 1]!.due_at!), EVERY_S * 1000, `${name}: a due time was missed`);
        // No overlap: each run of a pipeline started after the previous one ended, whichever workers ran them.
        assert.ok(Date.parse(mine[i]!.started_at) >= Date.parse(mine[i - 1]!.finished_at), `${name}: runs ${i - 1} and ${i} overlap`);
      }
      // Labels: only on a worker that has every label the pipeline asks for.
      for (const r of mine)
        assert.ok(
          Object.entries(wanted.get(name)!).every(([k, v]) => workerLabels[r.worker]![k] === v),
          `${name} ran on ${r.worker}`,
        );
    }
    const delays = results.map((r) => r.start_delay_ms!).sort((a, b) => a - b);
    const p50 = percentile(delays, 50);
    const p99 = percentile(delays, 99);
    const perWorker = Object.keys(workerLabels).map((w) => `${w} ${results.filter((r) => r.worker === w).length}`);
    console.log(
      `# fleet load: ${results.length} runs of 20 pipelines in ${((Date.now() - from) / 1000).toFixed(0)} s (${perWorker.join(', ')}); start delay from due time p50 ${p50} ms, p99 ${p99} ms, max ${delays.at(-1)} ms`,
    );
    assert.ok(p99 <= 1000, `start delay p99 ${p99} ms > 1 s`);
  },
);
