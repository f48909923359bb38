// Recovery marks at the command line, without servers: a pipeline without marks:, the choice of a mark and of the
// targets of `restore --to-mark`, and a damaged mark record, each a clear error with its exit code.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

// A repository holding one mark over `orders` (PostgreSQL) and `payments` (MariaDB), as `dbflow mark` records it.
function repoWithMark(dir: string): string {
  const marks = path.join(dir, 'repo', 'dbflow-marks');
  mkdirSync(marks, { recursive: true });
  const name = 'dbflow_mark_20261206T101500000Z';
  writeFileSync(
    path.join(marks, `${name}.json`),
    JSON.stringify({
      format: 1,
      name,
      pipeline: 'shop',
      time: '2026-12-06T10:15:00.000Z',
      participants: {
        orders: {
          driver: 'postgres',
          method: 'LOCK TABLE … IN SHARE MODE',
          position: { system: '7716034770471389333', file: '000000010000000000000002', restore_point: name, lsn: '0/21A8408', timeline: 1 },
          held_ms: 1.2,
        },
        payments: {
          driver: 'mysql',
          method: 'BACKUP STAGE BLOCK_COMMIT',
          position: { system: 'db2-7', file: 'binlog.000003', position: 'binlog.000003:1234', gtid: '0-7-42' },
          held_ms: 1.4,
        },
      },
      blocked_ms: 1.4,
      attempts: 1,
    }),
  );
  return name;
}

void test('dbflow mark on a pipeline without marks: says what to add (exit 2)', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'p.yaml');
  writeFileSync(
    file,
    `version: 1
name: nomarks
databases:
  app: { driver: sqlite, url: "sqlite:./app.db" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
`,
  );
  const r = await dbflow(['mark', file], { cwd: dir });
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /pipeline "nomarks" has no "marks:" section; add one naming the databases to mark together/);
  assert.equal(hasStackTrace(r.stderr), false);
});

void test('dbflow marks lists a mark and says why a restore cannot reach it; verify --marks exits 1', async (t) => {
  const dir = tmpDir(t);
  const name = repoWithMark(dir);
  const listed = await dbflow(['marks', 'repo'], { cwd: dir });
  assert.equal(listed.exitCode, 0, listed.stderr);
  assert.match(
    listed.stdout,
    new RegExp(`${name} +2026-12-06T10:15:00.000Z +orders,payments +1.4 ms +no: orders: no kept base of "orders" ends before the mark`),
  );
  const verified = await dbflow(['verify', '--marks', 'repo'], { cwd: dir });
  assert.equal(verified.exitCode, 1, verified.stdout + verified.stderr);
  assert.match(verified.stderr, new RegExp(`1 of 1 marks cannot be restored to \\(see RESTORABLE\\); the first is ${name}`));
  const json = await dbflow(['marks', 'repo', '--json'], { cwd: dir });
  const parsed = JSON.parse(json.stdout) as { marks: { name: string; reach: { database: string; ok: boolean }[] }[] };
  assert.deepEqual(
    parsed.marks[0]!.reach.map((r) => [r.database, r.ok]),
    [
      ['orders', false],
      ['payments', false],
    ],
  );
});

void test('restore --to-mark: the mark by name or time, a target for every participant, and no other target flags', async (t) => {
  const dir = tmpDir(t);
  const name = repoWithMark(dir);
  const run = (...args: string[]) => dbflow(['restore', 'repo', ...args], { cwd: dir });
  const missing = await run('--to-mark', name, '--target', 'orders=./o');
  assert.equal(missing.exitCode, 2, missing.stderr);
  assert.match(missing.stderr, /covers orders, payments: give a --target for each \(missing: --target payments=<folder or url>\)/);
  const unknown = await run('--to-mark', name, '--target', 'order=./o', '--target', 'payments=./p');
  assert.equal(unknown.exitCode, 2, unknown.stderr);
  assert.match(unknown.stderr, /has no database "order"\. Did you mean "orders"\?/);
  const both = await run('--to-mark', name, '--to-time', '2026-12-06T10:15:00Z', '--target', 'orders=./o', '--target', 'payments=./p');
  assert.equal(both.exitCode, 2, both.stderr);
  assert.match(
    both.stderr,
    /--to-mark restores every database of the mark, each to its --target <database>=<folder or url>; it takes no --to-time/,
  );
  const early = await run('--to-mark', '2026-12-06T10:00:00Z', '--target', 'orders=./o', '--target', 'payments=./p');
  assert.equal(early.exitCode, 2, early.stderr);
  assert.match(early.stderr, new RegExp(`no mark in .* is at or before 2026-12-06T10:00:00Z; the oldest is ${name}`));
  const typo = await run('--to-mark', `${name}x`, '--target', 'orders=./o', '--target', 'payments=./p');
  assert.equal(typo.exitCode, 2, typo.stderr);
  assert.match(typo.stderr, new RegExp(`holds no mark "${name}x"\\. Did you mean "${name}"\\?`));
  for (const r of [missing, unknown, both, early, typo]) assert.equal(hasStackTrace(r.stderr), false, r.stderr);
});

void test('a damaged mark record is named, and marks exits 1', async (t) => {
  const dir = tmpDir(t);
  repoWithMark(dir);
  writeFileSync(path.join(dir, 'repo', 'dbflow-marks', 'dbflow_mark_20261206T101600000Z.json'), '{"format": 1, "name": ');
  const r = await dbflow(['marks', 'repo'], { cwd: dir });
  assert.equal(r.exitCode, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /dbflow_mark_20261206T101600000Z\.json" is not JSON/);
});
