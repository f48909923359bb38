// Recovery marks across PostgreSQL db1, MariaDB mq and PostgreSQL db2 under a causal writer (item i committed in db1,
// then mq, then db2): every mark restores, each database into its own data directory, to one consistent cut; restores of
// the same databases to the same wall-clock time, without the mark, are shown for contrast. A mark whose barrier cannot
// be had everywhere fails cleanly: no record, and the other databases' commits go on at once.
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import type { MarkRecord } from '../../src/repo/marks.js';
import { startCausalWriter } from '../helpers/causal-writer.js';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { causalViolations, myRestoredItems, pgRestoredItems } from '../helpers/mark-items.js';
import { MARKED, markSetup, type Marked, type MarkSetup } from '../helpers/mark-setup.js';
import { connectionOptions } from '../helpers/mysql.js';
import { withPassword } from '../helpers/postgres.js';
import { freePort } from '../helpers/processes.js';
import { pgProbeCommit, probeLoop } from '../helpers/sessions.js';
import { archiving } from '../helpers/wal-archive.js';

const MINUTE = 60_000;
// How long marks are taken under the writer, and how often.
const MARKING_MS = 120_000;
const EVERY_MS = 5000;
// How many marks are restored (and restored again by time alone, for the control).
const RESTORED = 3;

type Mark = MarkRecord & { url: string };
type Items = Record<Marked, number[]>;

const run = (s: MarkSetup, ...args: string[]) => dbflow(args, { env: s.env, cwd: s.dir });

// `dbflow mark --json` of a pipeline: exit 0, a record over the three databases, each at a point in its log.
async function markOnce(s: MarkSetup, n: number): Promise<Mark> {
  const r = await run(s, 'mark', s.pipeline, '--json');
  assert.equal(r.exitCode, 0, `mark ${n}:\n${r.stdout}${r.stderr}`);
  const mark = JSON.parse(r.stdout) as Mark;
  assert.deepEqual(Object.keys(mark.participants).sort(), [...MARKED].sort(), `mark ${n}: ${r.stdout}`);
  assert.match(mark.name, /^dbflow_mark_\d{8}T\d{9}Z$/, `mark ${n}: ${r.stdout}`);
  for (const db of ['db1', 'db2'] as const)
    assert.equal(mark.participants[db]!.position.restore_point, mark.name, `mark ${n}, ${db}: ${JSON.stringify(mark.participants[db])}`);
  assert.match(
    String(mark.participants.mq!.position.position),
    /^binlog\.\d+:\d+$/,
    `mark ${n}, mq: ${JSON.stringify(mark.participants.mq)}`,
  );
  assert.ok(mark.url.endsWith(`/repo/dbflow-marks/${mark.name}.json`), `mark ${n}: ${mark.url}`);
  return mark;
}

// The items of each restored data directory (each started privately, read, stopped, then removed).
async function itemsIn(t: TestContext, s: MarkSetup, dirs: Record<Marked, string>): Promise<Items> {
  const items: Items = {
    db1: await pgRestoredItems(dirs.db1, s.pg.db1.bin, 'db1', s.pg.db1.password),
    mq: await myRestoredItems(t, dirs.mq, 'mq'),
    db2: await pgRestoredItems(dirs.db2, s.pg.db2.bin, 'db2', s.pg.db2.password),
  };
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
  return items;
}

const counts = (i: Items): string => `db1 ${i.db1.length}, mq ${i.mq.length}, db2 ${i.db2.length} items`;

// `n` of `xs` at random, in their order.
function pick<T>(xs: readonly T[], n: number): T[] {
  const indexes = xs.map((_, i) => i);
  for (let i = indexes.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [indexes[i], indexes[j]] = [indexes[j]!, indexes[i]!];
  }
  return indexes
    .slice(0, n)
    .sort((x, y) => x - y)
    .map((i) => xs[i]!);
}

void test(
  'marks taken every 5 s under a causal writer each restore db1, mq and db2 to one consistent cut; the same wall-clock time without the mark need not',
  { timeout: 30 * MINUTE },
  async (t) => {
    const s = await markSetup(t);
    if (!s) return;
    const archiver = archiving(t, s);
    const base = await run(s, 'run', s.pipeline);
    assert.equal(base.exitCode, 0, base.stdout + base.stderr);

    const writer = await startCausalWriter(s.targets, { after: (fn) => t.after(fn), maxMs: 10 * MINUTE });
    await writer.committed(20);
    const marks: Mark[] = [];
    try {
      for (const end = Date.now() + MARKING_MS; Date.now() < end;) {
        const started = Date.now();
        const before = writer.iterations();
        marks.push(await markOnce(s, marks.length + 1));
        assert.equal(writer.stopped(), undefined, `the writer stopped during mark ${marks.length}`);
        await sleep(Math.max(0, EVERY_MS - (Date.now() - started)));
        assert.ok(writer.iterations() > before, `the writer went on around mark ${marks.length}`);
      }
    } finally {
      const items = await writer.stop();
      t.diagnostic(`${items} items written, ${marks.length} marks`);
    }
    const blocked = marks.map((m) => m.blocked_ms);
    t.diagnostic(`commits blocked by each mark: ${blocked.map((ms) => ms.toFixed(1)).join(', ')} ms`);
    assert.ok(marks.length >= RESTORED, `${marks.length} marks`);

    // Every write reaches the archive (the open log every flush); then the archiver stops, storing what it received.
    await sleep(3000);
    await archiver.stop();

    // The repository lists every mark, oldest first, each reachable: a base before it and its log archived that far.
    const listed = await run(s, 'marks', s.repo, '--json');
    assert.equal(listed.exitCode, 0, listed.stdout + listed.stderr);
    const list = JSON.parse(listed.stdout) as {
      marks: (MarkRecord & { reach?: { database: string; ok: boolean }[] })[];
      unreadable: unknown[];
    };
    assert.deepEqual(
      list.marks.map((m) => m.name),
      marks.map((m) => m.name),
    );
    assert.deepEqual(list.unreadable, []);
    for (const m of list.marks)
      assert.deepEqual(
        m.reach?.filter((r) => !r.ok),
        [],
        `${m.name}: every participant can be restored to it: ${JSON.stringify(m.reach)}`,
      );

    let n = 0;
    const folders = (): Record<Marked, string> => {
      n++;
      return { db1: path.join(s.dir, `db1-${n}`), mq: path.join(s.dir, `mq-${n}`), db2: path.join(s.dir, `db2-${n}`) };
    };
    const chosen = pick(marks, RESTORED);
    for (const [i, mark] of chosen.entries()) {
      const dirs = folders();
      const started = performance.now();
      // The first by a time two seconds after it (marks are five seconds apart): the newest mark at or before it.
      const which = i === 0 ? ['--to-time', new Date(Date.parse(mark.time) + 2000).toISOString()] : ['--to-mark', mark.name];
      const r = await run(
        s,
        'restore',
        s.repo,
        ...which,
        ...MARKED.flatMap((db) => ['--target', `${db}=${dirs[db]}`]),
        '--passphrase-file',
        s.passphraseFile,
      );
      assert.equal(r.exitCode, 0, `${which.join(' ')}\n${r.stdout}${r.stderr}`);
      if (i === 0) assert.match(r.stdout, new RegExp(`the newest mark at or before it is ${mark.name}`));
      const restoreS = (performance.now() - started) / 1000;
      for (const db of MARKED) assert.ok(existsSync(dirs[db]), `${mark.name}: ${db} restored into ${dirs[db]}\n${r.stdout}`);
      const items = await itemsIn(t, s, dirs);
      t.diagnostic(`${mark.name} (restored in ${restoreS.toFixed(1)} s): ${counts(items)}`);
      assert.deepEqual(causalViolations(items.db1, items.mq, items.db2), [], `${mark.name}: one consistent cut (${counts(items)})`);
      assert.ok(items.db2.length >= 20, `${mark.name}: the writer's items are there (${counts(items)})`);
    }

    // The control: each database restored on its own to the same marks' times, with no mark to agree on.
    const control: string[] = [];
    let violated = 0;
    let broken = 0;
    for (const mark of chosen) {
      const dirs = folders();
      for (const db of MARKED) {
        const r = await run(
          s,
          'restore',
          s.repo,
          '--database',
          db,
          '--to-datadir',
          dirs[db],
          '--to-time',
          mark.time,
          '--passphrase-file',
          s.passphraseFile,
        );
        assert.equal(r.exitCode, 0, `${db} --to-time ${mark.time}\n${r.stdout}${r.stderr}`);
      }
      const items = await itemsIn(t, s, dirs);
      const violations = causalViolations(items.db1, items.mq, items.db2);
      violated += violations.length;
      if (violations.length) broken++;
      control.push(`  ${mark.time}: ${counts(items)}${violations.length ? `: ${violations.join('; ')}` : ''}`);
    }
    t.diagnostic(
      `control (same wall-clock time, no marks): ${violated} violations, ${broken} of ${chosen.length} restores not one consistent cut\n${control.join('\n')}`,
    );

    // The restore-test of marks: verify --marks --restore restores one into temporary data directories.
    const verified = await run(
      s,
      'verify',
      '--marks',
      s.repo,
      '--restore',
      '--mark',
      chosen[0]!.name,
      '--passphrase-file',
      s.passphraseFile,
    );
    assert.equal(verified.exitCode, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, new RegExp(`✔ 3 databases restored to mark ${chosen[0]!.name}`));
  },
);

void test(
  'a mark that cannot hold every barrier (mq unreachable, or locked by another session) exits 1 naming mq, records nothing, and frees db1 and db2 at once',
  { timeout: 5 * MINUTE },
  async (t) => {
    const s = await markSetup(t);
    if (!s) return;
    const db1 = withPassword(s.urls.db1, s.pg.db1.password);
    const db2 = withPassword(s.urls.db2, s.pg.db2.password);
    const noMarks = async (when: string): Promise<void> => {
      const listed = await run(s, 'marks', s.repo, '--json');
      assert.equal(listed.exitCode, 0, listed.stdout + listed.stderr);
      assert.deepEqual((JSON.parse(listed.stdout) as { marks: unknown[] }).marks, [], `no mark is recorded ${when}`);
    };

    // mq's URL names a port nothing listens on: the mark fails before it blocks anything.
    const closed = path.join(s.dir, 'closed.yaml');
    writeFileSync(closed, s.yaml({ mqUrl: `mysql://root@127.0.0.1:${await freePort()}/mq` }));
    const refused = await run(s, 'mark', closed);
    const refusedOut = refused.stdout + refused.stderr;
    assert.equal(refused.exitCode, 1, refusedOut);
    assert.match(refused.stderr, /"mq"/, 'the error names mq');
    assert.ok(!hasStackTrace(refusedOut), refusedOut);
    t.diagnostic(`mq unreachable: ${refused.stderr.trim()}`);
    await noMarks('after a mark with mq unreachable');
    const afterRefused = await pgProbeCommit(db1);
    assert.ok(afterRefused < 1000, `db1: INSERT + COMMIT took ${afterRefused.toFixed(0)} ms after the failed mark`);

    // A session holds LOCK TABLES … WRITE on mq's items: mq's barrier cannot be had within barrier_timeout (1 s),
    // while db1's and db2's are held during each try.
    const blocker = await mysql.createConnection(connectionOptions(s.urls.mq));
    t.after(() => blocker.end().catch(() => blocker.destroy()));
    await blocker.query('LOCK TABLES items WRITE');
    const blocked = path.join(s.dir, 'blocked.yaml');
    writeFileSync(blocked, s.yaml({ barrierTimeout: '1s' }));
    const probes = { db1: await probeLoop('pg', db1), db2: await probeLoop('pg', db2) };
    t.after(() => Promise.all(Object.values(probes).map((p) => p.stop())));
    const started = performance.now();
    const failed = await run(s, 'mark', blocked);
    const exitedAt = performance.now();
    const failedOut = failed.stdout + failed.stderr;
    assert.equal(failed.exitCode, 1, failedOut);
    assert.match(failed.stderr, /could not block commits on every database at once within 1000 ms/, failedOut);
    assert.match(failed.stderr, /database "mq": .*`mq`\.`items`/, 'the error names mq and the locked table');
    assert.ok(!hasStackTrace(failedOut), failedOut);
    t.diagnostic(`mq locked: ${failed.stderr.trim()} (${((exitedAt - started) / 1000).toFixed(1)} s)`);
    await noMarks('after a mark with mq locked');
    // Right after the failure a plain INSERT + COMMIT on db1 goes through at once, and both probe writers commit again.
    const afterBlocked = await pgProbeCommit(db1);
    t.diagnostic(`db1: INSERT + COMMIT after the failure took ${afterBlocked.toFixed(0)} ms`);
    assert.ok(afterBlocked < 1000, `db1: INSERT + COMMIT took ${afterBlocked.toFixed(0)} ms after the failed mark`);
    for (const [db, probe] of Object.entries(probes)) {
      const deadline = performance.now() + 1000;
      while (!probe.done.some((x) => x.end > exitedAt) && performance.now() < deadline) await sleep(20);
      assert.ok(
        probe.done.some((x) => x.end > exitedAt),
        `${db}: a commit within a second of the failure (${probe.failure()?.message ?? 'no error'})`,
      );
      const longest = Math.max(...probe.done.map((x) => x.end - x.start));
      t.diagnostic(`${db}: ${probe.done.length} commits during and after the mark, the longest took ${longest.toFixed(0)} ms`);
      assert.ok(longest < 2500, `${db}: no commit was held up much longer than the barrier wait (longest ${longest.toFixed(0)} ms)`);
    }

    // Once the lock is gone, a mark goes through: the failed ones left nothing in the way.
    await blocker.query('UNLOCK TABLES');
    const ok = await run(s, 'mark', s.pipeline, '--json');
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    const listed = await run(s, 'marks', s.repo, '--json');
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { marks: MarkRecord[] }).marks.map((m) => m.name),
      [(JSON.parse(ok.stdout) as Mark).name],
    );
  },
);
