// Failures of MariaDB backups through the CLI: each is exit 1, a clear message, no stack, nothing published, nothing left on the server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { escapeRegExp, hasStackTrace, spawnDbflow } from '../helpers/cli.js';
import type { RowDataPacket } from 'mysql2';
import mysql from 'mysql2/promise';
import {
  connectionOptions,
  databasesStartingWith,
  MY_URL,
  requireMyBackupTools,
  scratchDatabase,
  throwawayMariadb,
  throwawayUser,
  withConnection,
  withDatabase,
} from '../helpers/mysql.js';
import { seedShop } from '../helpers/mysql-data.js';
import { myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';

import { tmpDir } from '../helpers/tmp.js';
import { type BackupRun, manifestsUnder, runBackup, runIdOf, runRecordText, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { bytesWritten, descendants, endOf, freePort, waitFor } from '../helpers/processes.js';

const MINUTE = 60_000;

// A failed run: exit code 1, every pattern in its output, no stack trace, no manifest, no scratch database left.
async function assertFailedCleanly(r: BackupRun, cwd: string, patterns: RegExp[]): Promise<string> {
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.exitCode, 1, output);
  for (const p of patterns) assert.match(output, p);
  assert.ok(!hasStackTrace(output), `no stack trace:\n${output}`);
  assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), [], 'no manifest was published');
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), [], 'no scratch database is left');
  return output;
}

void test('an unreachable server: "cannot connect", naming host and port', { timeout: MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const port = await freePort();
  const cwd = tmpDir(t);
  const r = await runBackup(
    cwd,
    writePipeline(cwd, myBackupPipeline({ url: `mysql://root@127.0.0.1:${port}/app?connect-timeout=5` })),
    myBackupEnv(),
  );
  await assertFailedCleanly(r, cwd, [/cannot connect to MySQL\/MariaDB/, new RegExp(`127\\.0\\.0\\.1:${port}`)]);
});

void test('a database that does not exist: "does not exist", naming it', { timeout: MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const name = `dbflow_test_missing_${randomBytes(4).toString('hex')}`;
  const cwd = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: withDatabase(MY_URL, name) })), myBackupEnv());
  await assertFailedCleanly(r, cwd, [new RegExp(`"${name}" does not exist`)]);
  assert.deepEqual(await databasesStartingWith(name), [], 'nothing created it');
});

void test('no mariadb-dump in bin_dir: says which program is missing and how to install it', { timeout: MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const db = await scratchDatabase(t);
  await seedShop(db.pool, { rows: 100 });
  const cwd = tmpDir(t);
  const empty = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, options: { bin_dir: empty } })), myBackupEnv());
  await assertFailedCleanly(r, cwd, [
    /"mariadb-dump" program was not found/,
    /apt-get install mariadb-client/,
    new RegExp(escapeRegExp(empty)),
  ]);
});

void test('a wrong password: "access denied", naming the user, and the password is shown nowhere', { timeout: MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const db = await scratchDatabase(t);
  await seedShop(db.pool, { rows: 100 });
  const { user, password } = await throwawayUser(t);
  const url = new URL(db.url);
  url.username = user;
  const cwd = tmpDir(t);
  const file = writePipeline(cwd, myBackupPipeline({ url: url.toString(), password: true }));

  // First the right password: the run succeeds (the option file quotes the awkward characters).
  const ok = await runBackup(cwd, file, myBackupEnv(password));
  assert.equal(ok.exitCode, 0, `${ok.stdout}\n${ok.stderr}`);
  const wrong = `wrong-${randomBytes(8).toString('hex')}`;
  const failed = tmpDir(t);
  const r = await runBackup(failed, writePipeline(failed, myBackupPipeline({ url: url.toString(), password: true })), myBackupEnv(wrong));
  const output = await assertFailedCleanly(r, failed, [/access denied/, new RegExp(`"${user}"`)]);
  assert.ok(!output.includes(wrong) && !output.includes(password), 'no password in the output');
});

void test(
  'mariadb-dump killed while it streams: the run fails, names the tool and the signal, publishes nothing',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seedShop(db.pool, { rows: 60_000 });
    const before = await sessionsOn(db.name);
    const cwd = tmpDir(t);
    // A user with a password: it reaches mariadb-dump only through a 0600 option file, its first argument.
    const { user, password } = await throwawayUser(t);
    const url = new URL(db.url);
    url.username = user;
    // The throttle holds the stream back once the dump step reads it, so mariadb-dump is still writing when it is killed.
    const file = writePipeline(cwd, myBackupPipeline({ url: url.toString(), password: true, throttleMs: 200 }));
    const sub = spawnDbflow(['run', file], { cwd, env: myBackupEnv(password) });
    t.after(() => void sub.kill('SIGKILL'));
    const exited = endOf(sub);
    const dump = await waitFor(
      'mariadb-dump to stream',
      () => {
        const p = descendants(sub.pid!).find((d) => d.comm === 'mariadb-dump');
        return p && bytesWritten(p.pid) > 256 * 1024 && p;
      },
      60_000,
      exited,
    );
    const argv = readFileSync(`/proc/${dump.pid}/cmdline`, 'utf8').split('\0');
    const optionFile = /^--defaults-extra-file=(.+)$/.exec(argv[1] ?? '')?.[1];
    assert.ok(optionFile, `the option file is the first argument: ${argv.join(' ')}`);
    assert.equal(statSync(optionFile).mode & 0o777, 0o600);
    assert.ok(!argv.join(' ').includes(password), 'no password in argv');
    assert.ok(!readFileSync(`/proc/${dump.pid}/environ`, 'utf8').includes(password), 'no password in the environment');
    process.kill(dump.pid, 'SIGKILL');
    const done = await Promise.race([sub, sleep(30_000, undefined, { ref: false })]);
    assert.ok(done, 'the CLI exits after its mariadb-dump was killed');
    const r = { exitCode: done.exitCode ?? -1, stdout: String(done.stdout), stderr: String(done.stderr) };
    const runId = runIdOf(r.stdout);
    await assertFailedCleanly({ ...r, runId }, cwd, [/mariadb-dump was killed by SIGKILL/]);
    assert.ok(!Object.values(runRecordText(cwd, runId)).some((text) => text.includes(password)), 'no password in the run record');
    assert.ok(!existsSync(optionFile), 'the option file was removed with the step');
    await sessionsEnded(db.name, before);
  },
);

// Ids of the sessions whose current database is `database`.
async function sessionsOn(database: string): Promise<number[]> {
  const [rows] = await withConnection(MY_URL, (c) =>
    c.query<RowDataPacket[]>('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ?', [database]),
  );
  return rows.map((r) => Number(r.id));
}

// Resolves once no session on `database` is left but the test's own (`before`).
async function sessionsEnded(database: string, before: readonly number[]): Promise<void> {
  await waitFor("the run's sessions to end", async () => (await sessionsOn(database)).every((id) => before.includes(id)), 10_000);
}

void test(
  'interrupted while the dump streams: exit 130, no mariadb-dump left, no session left, nothing published',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seedShop(db.pool, { rows: 60_000 });
    const before = await sessionsOn(db.name);
    const cwd = tmpDir(t);
    const sub = spawnDbflow(['run', writePipeline(cwd, myBackupPipeline({ url: db.url, throttleMs: 200 }))], { cwd, env: myBackupEnv() });
    t.after(() => void sub.kill('SIGKILL'));
    const exited = endOf(sub);
    const dump = await waitFor(
      'mariadb-dump to stream',
      () => descendants(sub.pid!).find((d) => d.comm === 'mariadb-dump' && bytesWritten(d.pid) > 256 * 1024),
      60_000,
      exited,
    );
    sub.kill('SIGINT');
    const done = await Promise.race([sub, sleep(30_000, undefined, { ref: false })]);
    assert.ok(done, 'the CLI exits after SIGINT');
    const output = `${String(done.stdout)}\n${String(done.stderr)}`;
    assert.equal(done.exitCode, 130, output);
    assert.ok(!hasStackTrace(output), output);
    assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), []);
    assert.throws(() => process.kill(dump.pid, 0), 'mariadb-dump was stopped');
    await sessionsEnded(db.name, before);
  },
);

void test(
  'commits cannot be blocked within lock_wait_timeout (another backup holds BACKUP STAGE): a clear error, quickly',
  { timeout: MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const server = await throwawayMariadb(t);
    if (!server) return;
    const db = await scratchDatabase(t, server.url);
    await seedShop(db.pool, { rows: 100 });
    const holder = await mysql.createConnection(connectionOptions(server.url));
    t.after(() => holder.end());
    await holder.query('BACKUP STAGE START'); // what mariadb-backup holds while it copies
    const cwd = tmpDir(t);
    const started = Date.now();
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, options: { lock_wait_timeout: 1 } })), myBackupEnv());
    const output = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.exitCode, 1, output);
    assert.match(output, /could not block commits within 1 s \(BACKUP STAGE BLOCK_COMMIT; options\.lock_wait_timeout\)/);
    assert.ok(!hasStackTrace(output), output);
    assert.ok(Date.now() - started < 20_000, 'it gives up after the timeout');
    assert.deepEqual(manifestsUnder(path.join(cwd, 'backups')), []);
    await holder.query('BACKUP STAGE END');
    assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId), server.url), []);
  },
);

void test(
  'a table held by LOCK TABLES … WRITE (a restore of a dump with table locks) keeps the barrier waiting: the error names the table',
  { timeout: MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const server = await throwawayMariadb(t);
    if (!server) return;
    const db = await scratchDatabase(t, server.url);
    await seedShop(db.pool, { rows: 100 });
    const other = await scratchDatabase(t, server.url);
    await other.pool.query('CREATE TABLE loading (id INT PRIMARY KEY) ENGINE=InnoDB');
    const holder = await mysql.createConnection(connectionOptions(other.url));
    t.after(() => holder.end());
    await holder.query('LOCK TABLES loading WRITE');
    await holder.query('INSERT INTO loading VALUES (1)');
    const cwd = tmpDir(t);
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, options: { lock_wait_timeout: 1 } })), myBackupEnv());
    const output = await assertFailedCleanly(r, cwd, [/could not block commits within 1 s/]);
    assert.match(
      output,
      new RegExp(`tables in use \\(a LOCK TABLES holds them between statements\\): \`${escapeRegExp(other.name)}\`\\.\`loading\``),
    );
    await holder.query('UNLOCK TABLES');
  },
);

for (const how of ['flip', 'truncate'] as const) {
  void test(
    `the stored dump damaged before its restore-test (${how === 'flip' ? 'a byte flipped' : 'its end cut'}): the restore-test fails, its scratch database is dropped, nothing is published`,
    { timeout: MINUTE },
    async (t) => {
      if (!(await requireMyBackupTools(t, 'zstd'))) return;
      const db = await scratchDatabase(t);
      await seedShop(db.pool, { rows: 3000 });
      const cwd = tmpDir(t);
      const damage = { id: 'damage', uses: 'damage-file', with: { path: 'backups/{{ run.id }}/app.sql.zst.pgp', how } };
      const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, afterUpload: [damage] })), myBackupEnv());
      const output = await assertFailedCleanly(r, cwd, [/restore_test: FAILED/]);
      assert.match(output, /corrupt|integrity|truncated|sha256|MDC|decodes to/i, output);
      t.diagnostic(/restore_test: FAILED.*$/m.exec(output)?.[0] ?? '');
    },
  );
}
