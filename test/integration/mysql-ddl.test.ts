// DDL on a dumped MariaDB table while a backup runs: either it waits for the backup, or the backup fails clearly and publishes nothing.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hasStackTrace } from '../helpers/cli.js';
import { databasesStartingWith, requireMyBackupTools, scratchDatabase, type ScratchDatabase } from '../helpers/mysql.js';
import { myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';
import { tmpDir } from '../helpers/tmp.js';
import { manifestsUnder, readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';

const MINUTE = 60_000;

// `aaa_big` is counted and dumped first (tables go in name order) and takes a while; `zz_last` comes last.
// Its virtual column is computed on every read: counting it takes about 0.8 s instead of 60 ms, so a DDL
// step that starts right after the snapshot reaches `zz_last` before the counting does, even under load.
async function seed(db: ScratchDatabase): Promise<void> {
  await db.pool.query(
    'CREATE TABLE aaa_big (id INT PRIMARY KEY, note VARCHAR(200), heavy CHAR(128) AS (SHA2(REPEAT(note, 8), 512)) VIRTUAL) ENGINE=InnoDB',
  );
  await db.pool.query(`INSERT INTO aaa_big (id, note) SELECT seq, REPEAT(MD5(seq), 6) FROM seq_1_to_300000`);
  await db.pool.query('CREATE TABLE zz_last (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
  await db.pool.query('INSERT INTO zz_last SELECT seq, seq FROM seq_1_to_100');
}

// What the DDL step reported; when it never ran, the failure shows the run's output instead.
function outcomeOf(file: string, output: string): { ok: boolean; error?: string; code?: string } {
  assert.ok(existsSync(file), `the DDL step did not run:\n${output}`);
  return JSON.parse(readFileSync(file, 'utf8')) as { ok: boolean; error?: string; code?: string };
}

void test(
  'ALTER TABLE on a table the backup has not reached yet: the backup fails naming the table and the DDL, publishes nothing',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seed(db);
    const cwd = tmpDir(t);
    const report = path.join(cwd, 'ddl.json');
    // Right after the snapshot, while aaa_big is still being counted and dumped: zz_last is not held by anyone yet.
    const ddl = {
      id: 'ddl',
      uses: 'my-sql',
      with: { url: db.url, sql: 'ALTER TABLE zz_last ADD COLUMN added INT', lock_wait_timeout: 5, report },
    };
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, between: [ddl], throttleMs: 1 })), myBackupEnv());
    const output = `${r.stdout}\n${r.stderr}`;
    assert.deepEqual(outcomeOf(report, output), { ok: true }, 'the ALTER went through before the backup reached the table');
    assert.equal(r.exitCode, 1, output);
    assert.match(output, /zz_last/);
    assert.match(output, /changed .*during the backup|definition has changed/i);
    assert.ok(!hasStackTrace(output), output);
    assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), [], 'nothing published');
    assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), [], 'no scratch database left');
  },
);

void test(
  'ALTER TABLE once the backup has counted the table: the DDL waits for the backup (a 1 s lock_wait_timeout fails it), and the backup verifies',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seed(db);
    const cwd = tmpDir(t);
    const report = path.join(cwd, 'ddl.json');
    // After the upload the counts are complete (the dump waited for them); the snapshot is held until the checks are done.
    const ddl = {
      id: 'ddl',
      uses: 'my-sql',
      with: { url: db.url, sql: 'ALTER TABLE zz_last ADD COLUMN added INT', lock_wait_timeout: 1, report },
    };
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, afterUpload: [ddl] })), myBackupEnv());
    const outcome = outcomeOf(report, `${r.stdout}\n${r.stderr}`);
    assert.equal(outcome.ok, false, 'the ALTER did not get its metadata lock while the snapshot was held');
    assert.equal(outcome.code, 'ER_LOCK_WAIT_TIMEOUT');
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(readManifest(cwd, r.runId).status, 'verified');
    assert.equal(readManifest(cwd, r.runId).databases.app?.tables.zz_last?.rows, 100);
  },
);
