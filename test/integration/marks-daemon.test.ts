// The daemon's recovery marks: taken every `marks.every`; a mark that cannot be taken (a participant unreachable) is
// recorded as failed in the state folder and the metrics, the daemon goes on, and the next mark after the pipeline is
// fixed is recorded in the repository.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnDbflow } from '../helpers/cli.js';
import { PG_URL, requirePostgres, scratchDatabase } from '../helpers/postgres.js';
import { freePort } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const pipeline = (pgUrl: string, myPort: number, databases: string): string => `version: 1
name: marked
vars:
  repo: "file://./repo"
databases:
  orders: { driver: postgres, url: "${pgUrl}" }
  payments: { driver: mysql, url: "mysql://root@127.0.0.1:${myPort}/payments" }
archive:
  orders: { to: "{{ vars.repo }}/wal" }
  payments: { to: "{{ vars.repo }}/wal" }
marks:
  databases: ${databases}
  to: "{{ vars.repo }}"
  every: 1s
  barrier_timeout: 1s
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [orders] } }
`;

async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined> | T | undefined,
  log: () => string = () => '',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${log()}`);
    await sleep(200);
  }
}

void test(
  'the daemon records a failed mark and goes on marking; once the pipeline is fixed, marks are recorded',
  { timeout: 120_000 },
  async (t) => {
    if (!(await requirePostgres(t))) return;
    const db = await scratchDatabase(t, PG_URL);
    await db.pool.query('CREATE TABLE orders (id bigint PRIMARY KEY)');
    const dir = tmpDir(t);
    mkdirSync(path.join(dir, 'pipelines'));
    const file = path.join(dir, 'pipelines', 'marked.yaml');
    // payments' server does not answer: a closed loopback port.
    const closed = await freePort();
    writeFileSync(file, pipeline(db.url, closed, '[orders, payments]'));
    const state = path.join(dir, 'state');
    const daemon = spawnDbflow(['daemon', 'pipelines', '--listen', '127.0.0.1:0', '--state-dir', state], { cwd: dir });
    t.after(() => {
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    });
    let stderr = '';
    daemon.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const metrics = await until('the metrics address', 20_000, () => /metrics on (http:\/\/\S+\/metrics)/.exec(stderr)?.[1]);
    const stateFile = path.join(state, 'marks', 'marked.json');
    const failures = await until('two failed marks', 30_000, () => {
      if (!existsSync(stateFile)) return undefined;
      const s = JSON.parse(readFileSync(stateFile, 'utf8')) as { failures: { error: string }[] };
      return s.failures.length >= 2 ? s.failures : undefined;
    });
    for (const f of failures) assert.match(f.error, /database "payments"/, f.error);
    assert.match(stderr, /\[marks marked\] mark failed \(the next one is due in 1 s\): .*database "payments"/);
    assert.ok(
      !existsSync(path.join(dir, 'pipelines', 'repo', 'dbflow-marks')) ||
        readdirSync(path.join(dir, 'pipelines', 'repo', 'dbflow-marks')).length === 0,
      'no failed mark is recorded',
    );
    const marksCounted = async (result: string): Promise<number> => {
      const text = await (await fetch(metrics)).text();
      return Number(new RegExp(`dbflow_marks_total\\{pipeline="marked",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };
    assert.ok((await marksCounted('failed')) >= 2);
    assert.equal(daemon.exitCode, null, 'the daemon goes on');

    // Fixed (the unreachable database left out): the daemon reloads the file, and the next marks are recorded.
    writeFileSync(file, pipeline(db.url, closed, '[orders]'));
    const marks = await until('two recorded marks', 30_000, () => {
      const folder = path.join(dir, 'pipelines', 'repo', 'dbflow-marks');
      const names = existsSync(folder) ? readdirSync(folder) : [];
      return names.length >= 2 ? names : undefined;
    });
    const record = JSON.parse(readFileSync(path.join(dir, 'pipelines', 'repo', 'dbflow-marks', marks.at(-1)!), 'utf8')) as {
      participants: Record<string, { position: { restore_point: string } }>;
    };
    assert.deepEqual(Object.keys(record.participants), ['orders']);
    // A mark's record is written by its `dbflow mark` process; the daemon counts it and saves its state once that ends.
    await until('two ok marks counted', 10_000, async () => ((await marksCounted('ok')) >= 2 ? true : undefined));
    const s = await until('the last ok mark in the state folder', 10_000, () => {
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { last_ok?: { name: string }; failures: unknown[] };
      return state.last_ok ? state : undefined;
    });
    assert.ok(s.failures.length >= 2, JSON.stringify(s));
    daemon.kill('SIGTERM');
    const ended = await daemon;
    assert.equal(ended.exitCode, 0, stderr);
  },
);
