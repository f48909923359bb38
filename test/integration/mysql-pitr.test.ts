// MariaDB point-in-time restore from a dump and the archived binary log: a writer commits while a dump is taken and
// the binary log is archived; restores to random seconds, a binlog position, a GTID and the end of the archive hold
// exactly the transactions up to it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { binlogSetup, writeWhileArchiving } from '../helpers/binlog-archive.js';
import { assertBinlogTargets, myStateOf } from '../helpers/my-writer.js';
import { withDatabase } from '../helpers/mysql.js';
import { stateAfter, type WriterState } from '../helpers/pg-writer.js';

const MINUTE = 60_000;
// How long the writer commits after the dump while the binary log is archived.
const WRITE_MS = 120_000;

void test(
  'a dump and the archived binary log restore to random seconds, a position, a GTID and the end, holding exactly the commits up to it',
  { timeout: 10 * MINUTE },
  async (t) => {
    const s = await binlogSetup(t);
    if (!s) return;
    const { commits, times, position } = await writeWhileArchiving(t, s, WRITE_MS);

    let n = 0;
    const restore = async (...target: string[]): Promise<WriterState> => {
      const url = withDatabase(s.my.url, `restored_${++n}`);
      const r = await dbflow(
        ['restore', 'file://./repo', '--database', 'main', '--to', url, '--create', '--passphrase-file', s.passphraseFile, ...target],
        { env: s.env, cwd: s.dir },
      );
      assert.equal(r.exitCode, 0, `${target.join(' ')}\n${r.stdout}${r.stderr}`);
      return myStateOf(url);
    };
    await assertBinlogTargets(t, commits, times, position, restore);

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
    assert.deepEqual(await restore('--latest'), stateAfter(commits, commits.length));
  },
);
