// MariaDB point-in-time restore from a dump and the archived binary log: a writer commits while a dump is taken and
// the binary log is archived; restores to random seconds, a binlog position, a GTID and the end of the archive hold
// exactly the transactions up to it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RowDataPacket } from 'mysql2/promise';
import { dbflow } from '../helpers/cli.js';
import { binlogSetup } from '../helpers/binlog-archive.js';
import { binlogTimes, createMyWriterTables, myStateOf, startMyWriter } from '../helpers/my-writer.js';
import { withConnection, withDatabase } from '../helpers/mysql.js';
import { stateAfter } from '../helpers/pg-writer.js';
import { archiving } from '../helpers/wal-archive.js';

const MINUTE = 60_000;
// How long the writer commits after the dump while the binary log is archived.
const WRITE_MS = 120_000;

void test(
  'a dump and the archived binary log restore to random seconds, a position, a GTID and the end, holding exactly the commits up to it',
  { timeout: 10 * MINUTE },
  async (t) => {
    const s = await binlogSetup(t);
    if (!s) return;
    const app = withDatabase(s.my.url, 'app');
    await createMyWriterTables(app);
    const archiver = archiving(t, s);
    const writer = await startMyWriter(app, { pauseMs: 5 });
    let position: { result: string; committedBefore: number };
    try {
      await sleep(1500);
      const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
      assert.equal(run.exitCode, 0, run.stdout + run.stderr);
      await sleep(WRITE_MS / 3);
      // A binlog position between two of the writer's commits: a replay to it keeps exactly those before.
      position = await writer.between(async (c) => {
        const [rows] = await c.query<RowDataPacket[]>('SHOW MASTER STATUS');
        return `${String(rows[0]!.File)}:${String(rows[0]!.Position)}`;
      });
      await withConnection(s.my.url, (c) => c.query('FLUSH BINARY LOGS'));
      await sleep(WRITE_MS / 3);
      // A second dump, in a later binlog file: targets after it replay from it, and prune may drop the files before it.
      const second = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
      assert.equal(second.exitCode, 0, second.stdout + second.stderr);
      await sleep(WRITE_MS / 3);
    } finally {
      await writer.stop();
    }
    await sleep(2500);
    await archiver.stop();
    const commits = writer.commits().slice();
    assert.ok(commits.length > 200, `${commits.length} commits`);
    const times = await binlogTimes(s.my.data);

    let n = 0;
    const restore = async (...target: string[]): Promise<string> => {
      const url = withDatabase(s.my.url, `restored_${++n}`);
      const r = await dbflow(
        ['restore', 'file://./repo', '--database', 'main', '--to', url, '--create', '--passphrase-file', s.passphraseFile, ...target],
        {
          env: s.env,
          cwd: s.dir,
        },
      );
      assert.equal(r.exitCode, 0, `${target.join(' ')}\n${r.stdout}${r.stderr}`);
      return url;
    };
    // Whole seconds from the first commit after the dump to the last, at random: a replay keeps the transactions
    // whose events all came before that second.
    const seconds = commits.map((c) => times.get(c.xid)!);
    assert.ok(
      seconds.every((x) => x !== undefined),
      'every commit is in the binary log',
    );
    const first = seconds[Math.floor(commits.length / 10)]!;
    const last = seconds.at(-1)!;
    for (let i = 0; i < 3; i++) {
      const at = first + 1 + Math.floor(Math.random() * (last - first));
      const kept = seconds.filter((x) => x < at).length;
      const url = await restore('--to-time', new Date(at * 1000).toISOString());
      const got = await myStateOf(url);
      const applied = Object.values(got.counters).reduce((sum, c) => sum + c.n, 0);
      t.diagnostic(`to ${new Date(at * 1000).toISOString()}: ${kept} of ${commits.length} commits expected, ${applied} restored`);
      assert.deepEqual(
        await myStateOf(url),
        stateAfter(commits, kept),
        `replayed to ${new Date(at * 1000).toISOString()}: ${kept} commits`,
      );
    }
    const atPosition = await restore('--to-position', position!.result);
    assert.deepEqual(await myStateOf(atPosition), stateAfter(commits, position!.committedBefore), `to ${position!.result}`);
    const pick = Math.floor(commits.length * 0.6);
    const atGtid = await restore('--to-gtid', commits[pick]!.xid);
    assert.deepEqual(await myStateOf(atGtid), stateAfter(commits, pick + 1), `to GTID ${commits[pick]!.xid}, included`);
    const latest = await restore('--latest');
    assert.deepEqual(await myStateOf(latest), stateAfter(commits, commits.length));

    // The listing says what each dump can restore to: up to the newest binlog stored, without a gap.
    const listed = await dbflow(['backups', 'list', 'file://./repo', '--json'], { env: s.env, cwd: s.dir });
    assert.equal(listed.exitCode, 0, listed.stderr);
    const ranges = (JSON.parse(listed.stdout) as { backups: { restorable?: { to: string; from: string; gap?: string } }[] }).backups.map(
      (b) => b.restorable,
    );
    assert.equal(ranges.length, 2);
    for (const r of ranges) assert.ok(r && !r.gap && Date.parse(r.to) > Date.parse(r.from), JSON.stringify(ranges));
    // prune keeps the newer dump and the binlog files from its position on; the replay from it is still exact.
    const pruned = await dbflow(['prune', 'file://./repo', '--keep-last', '1', '--json'], { env: s.env, cwd: s.dir });
    assert.equal(pruned.exitCode, 0, pruned.stdout + pruned.stderr);
    const wal = (JSON.parse(pruned.stdout) as { wal: { keep_from: string; files: string[] }[] }).wal;
    assert.equal(wal.length, 1, pruned.stdout);
    assert.ok(wal[0]!.files.length > 0 && wal[0]!.files.every((f) => /binlog\.\d{6}/.exec(f)![0] < wal[0]!.keep_from), pruned.stdout);
    const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
    const afterPrune = await restore('--latest');
    assert.deepEqual(await myStateOf(afterPrune), stateAfter(commits, commits.length));
  },
);
