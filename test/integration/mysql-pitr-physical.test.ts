// MariaDB point-in-time recovery from a physical base backup (mariadb-backup) and the archived binary log: a writer
// commits while base backups are taken and the binary log is archived; data directories recovered to random seconds,
// a binlog position, a GTID and the end of the archive hold exactly the transactions up to it when started.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { assertRangesAndPrune, binlogSetup, writeWhileArchiving } from '../helpers/binlog-archive.js';
import { assertBinlogTargets, myStateOf } from '../helpers/my-writer.js';
import { startedOn, withDatabase } from '../helpers/mysql.js';
import type { WriterState } from '../helpers/pg-writer.js';

const MINUTE = 60_000;
// How long the writer commits while the base backups are taken and the binary log is archived.
const WRITE_MS = 120_000;

void test(
  'a mariadb-backup base backup and the archived binary log recover a data directory to random seconds, a position, a GTID and the end, exactly',
  { timeout: 10 * MINUTE },
  async (t) => {
    const s = await binlogSetup(t, ['--binlog-format=ROW'], 'root', 'mariabackup');
    if (!s) return;
    const { commits, times, position } = await writeWhileArchiving(t, s, WRITE_MS);

    const restore = (folder: string, ...target: string[]) =>
      dbflow(['restore', 'file://./repo', '--database', 'main', '--to-datadir', folder, '--passphrase-file', s.passphraseFile, ...target], {
        env: s.env,
        cwd: s.dir,
      });
    let n = 0;
    const recovered = async (...target: string[]): Promise<WriterState> => {
      const datadir = path.join(s.dir, `recovered_${++n}`);
      const r = await restore(datadir, ...target);
      assert.equal(r.exitCode, 0, `${target.join(' ')}\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /then the binary log of .* to /);
      assert.match(r.stdout, /start it: mariadbd --defaults-file=.*backup-my\.cnf/);
      // As a DBA starts it: the installed mariadbd on the folder, nothing of dbflow running.
      return startedOn(t, datadir, (url) => myStateOf(withDatabase(url, 'app')));
    };
    await assertBinlogTargets(t, commits, times, position, recovered, 2);

    // The listing says what each base can recover to; prune keeps the newer one and the binlog from its end on.
    await assertRangesAndPrune(s, () => recovered('--latest'), commits);

    // A PostgreSQL target is refused before anything is written.
    const lsn = await restore(path.join(s.dir, 'refused'), '--to-lsn', '0/3000148');
    assert.equal(lsn.exitCode, 2, lsn.stdout + lsn.stderr);
    assert.match(
      lsn.stderr,
      /--to-lsn is a PostgreSQL recovery target; a MariaDB base backup recovers with --to-time, --to-position, --to-gtid or --latest/,
    );
    assert.equal(existsSync(path.join(s.dir, 'refused')), false);
  },
);
