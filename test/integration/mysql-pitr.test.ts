// MariaDB point-in-time restore from a dump and the archived binary log: a writer commits while a dump is taken and
// the binary log is archived; restores to random seconds, a binlog position, a GTID and the end of the archive hold
// exactly the transactions up to it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { assertRangesAndPrune, binlogSetup, writeWhileArchiving } from '../helpers/binlog-archive.js';
import { assertBinlogTargets, myStateOf } from '../helpers/my-writer.js';
import { withDatabase } from '../helpers/mysql.js';
import type { WriterState } from '../helpers/pg-writer.js';

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

    // The listing says what each dump can restore to; prune keeps the newer one and the binlog from its position on.
    await assertRangesAndPrune(s, () => restore('--latest'), commits);
  },
);
