// Backup → `dbflow restore` round trips through the CLI, against real servers: PostgreSQL, MariaDB and SQLite
// through an S3 repository on s3rver, MariaDB and SQLite also through file:// (with damage cases). The restored target's row counts and
// checksums, read by the driver through the public API, must equal the manifest's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { builtinRegistry, type DatabaseConfig, type Manifest, type TableCounts } from '../../src/index.js';
import { PASSPHRASE, readManifest, runBackup, writePipeline } from '../helpers/backup-run.js';
import { dbflow, escapeRegExp, hasStackTrace } from '../helpers/cli.js';
import {
  MY_URL,
  requireMyBackupTools,
  scratchDatabase as myScratch,
  withConnection as myConnection,
  withDatabase as myWithDatabase,
} from '../helpers/mysql.js';
import { seedShop as mySeed } from '../helpers/mysql-data.js';
import { myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';
import {
  PG_URL,
  requireBackupTools,
  scratchDatabase as pgScratch,
  withClient as pgClient,
  withDatabase as pgWithDatabase,
} from '../helpers/postgres.js';
import { seedShop as pgSeed } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline } from '../helpers/postgres-run.js';
import { copyBackup, flipByte, manifestIn } from '../helpers/repo.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { createLiveDatabase } from '../helpers/sqlite-fixtures.js';
import { stepContext } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

const MINUTE = 60_000;

// Counts (with checksums) of the database at `url`, by the driver, as restore-test would count them.
async function countsAt(driver: string, url: string): Promise<TableCounts> {
  const d = (await builtinRegistry()).drivers.get(driver)!;
  const { ctx, dispose } = await stepContext({ with: {} });
  try {
    const config: DatabaseConfig = { name: 'target', driver, url, options: { checksums: true } };
    return await d.rowCounts(ctx, { url, db: config });
  } finally {
    await dispose();
  }
}

// Every table of the manifest has a checksum (the round trip compares content, not only counts).
function assertChecksummed(m: Manifest, db = 'app'): TableCounts {
  const tables = m.databases[db]!.tables;
  assert.ok(Object.keys(tables).length > 0);
  for (const [t, c] of Object.entries(tables)) assert.equal(typeof c.checksum, 'string', `${t} has a checksum`);
  return tables;
}

// `dbflow restore` of database `db` into `to`; the output's count table and its last line.
async function restore(
  t: TestContext,
  cwd: string,
  url: string,
  to: string,
  env: Record<string, string>,
  extra: string[] = [],
  db = 'app',
) {
  const r = await dbflow(['restore', url, '--database', db, '--to', to, ...extra], { cwd, env: { DBFLOW_PASSPHRASE: PASSPHRASE, ...env } });
  t.diagnostic(`restore ${to}: exit ${r.exitCode}`);
  return r;
}

void test(
  'PostgreSQL through an S3 repository: list, verify, restore into a new database with equal counts and checksums, --force over it',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const s3 = await requireS3(t);
    if (!s3) return;
    const bucket = await s3.bucket();
    const db = await pgScratch(t);
    await pgSeed(db.pool, { rows: 3000, edgeCases: true });
    const cwd = tmpDir(t);
    const yaml = backupPipeline({ url: db.url }).replace('file://./backups/', `s3://${bucket}/pg/`);
    assert.match(yaml, new RegExp(`to: "s3://${bucket}/pg/\\{\\{ run\\.id \\}\\}/app\\.dump\\.zst\\.pgp"`));
    const run = await runBackup(cwd, writePipeline(cwd, yaml), { ...backupEnv(), ...s3.env });
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
    const repo = `s3://${bucket}/pg`;
    const url = `${repo}/${run.runId}`;
    const env = { ...s3.env };

    const listed = await dbflow(['backups', 'list', repo, '--json'], { cwd, env });
    assert.equal(listed.exitCode, 0, listed.stderr);
    const backups = (JSON.parse(listed.stdout) as { backups: { url: string; run_id: string; status: string; databases: string[] }[] })
      .backups;
    assert.deepEqual(
      backups.map((b) => [b.url, b.run_id, b.status, b.databases]),
      [[url, run.runId, 'verified', ['app']]],
    );

    const verify = await dbflow(['verify', url], { cwd, env: { ...env, DBFLOW_PASSPHRASE: PASSPHRASE } });
    assert.equal(verify.exitCode, 0, `${verify.stdout}\n${verify.stderr}`);
    assert.match(verify.stdout, new RegExp(`recorded in ${url.replace(/[.]/g, '\\.')}/verify\\.json`));
    const relisted = await dbflow(['backups', 'list', repo], { cwd, env });
    assert.match(relisted.stdout, /verified; verify ok /);

    // The manifest, read from S3 by `restore --list` — and its tables, every one with a checksum.
    const list = await dbflow(['restore', url, '--list'], { cwd, env });
    assert.equal(list.exitCode, 0, list.stderr);
    const manifestText = await readS3Manifest(s3.client(), bucket, `pg/${run.runId}/manifest.json`);
    const expected = assertChecksummed(JSON.parse(manifestText) as Manifest);
    for (const [table, { rows }] of Object.entries(expected))
      assert.ok(list.stdout.includes(`  ${table}`) && list.stdout.includes(String(rows)), table);

    const target = await pgScratch(t);
    const r = await restore(t, cwd, url, target.url, env);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /✔ \d+ tables, \d+ rows equal to the backup's counts and checksums\n$/);
    assert.deepEqual(await countsAt('postgres', target.url), expected, 'the target, counted by the driver, equals the manifest');

    // A target that does not exist: told to create it or pass --create (not --force); --create makes it, without --database.
    const fresh = `dbflow_test_${randomBytes(6).toString('hex')}`;
    t.after(() => pgClient(PG_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${fresh} WITH (FORCE)`)));
    const missing = await restore(t, cwd, url, pgWithDatabase(PG_URL, fresh), env);
    assert.equal(missing.exitCode, 1);
    assert.match(
      missing.stderr,
      /^dbflow: the target postgres:\/\/\S+ does not exist\. Create it first \(createdb, CREATE DATABASE; for sqlite an empty file\), or pass --create to have restore create it\.$/m,
    );
    assert.doesNotMatch(missing.stderr, /--force/);
    const created = await dbflow(['restore', url, '--to', pgWithDatabase(PG_URL, fresh), '--create'], {
      cwd,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE, ...env },
    });
    assert.equal(created.exitCode, 0, `${created.stdout}\n${created.stderr}`);
    assert.deepEqual(await countsAt('postgres', pgWithDatabase(PG_URL, fresh)), expected, 'restored into the database --create made');

    // Now the target has tables: refused without --force, restored over with it.
    const refused = await restore(t, cwd, url, target.url, env);
    assert.equal(refused.exitCode, 1);
    // (stderr may start with the AWS SDK's warnings about the Node version)
    assert.match(refused.stderr, /^dbflow: refusing to restore into postgres:\/\/.* it is not empty \(\d+ tables: /m);
    const forced = await restore(t, cwd, url, target.url, env, ['--force']);
    assert.equal(forced.exitCode, 0, `${forced.stdout}\n${forced.stderr}`);
    assert.match(forced.stdout, /--force: the target held \d+ tables before/);
    assert.deepEqual(await countsAt('postgres', target.url), expected);
  },
);

void test(
  'MariaDB: restore into a new database with equal counts and checksums; damage fails naming the object, and says when the restore had begun',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const db = await myScratch(t);
    await mySeed(db.pool, { rows: 5000 });
    const cwd = tmpDir(t);
    const run = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url })), myBackupEnv());
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
    const m = readManifest(cwd, run.runId);
    const expected = assertChecksummed(m);
    const url = `file://./backups/${run.runId}`;

    const target = await myScratch(t);
    const r = await restore(t, cwd, url, target.url, {});
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /✔ 4 tables, \d+ rows equal to the backup's counts and checksums\n$/);
    assert.deepEqual(await countsAt('mysql', target.url), expected);

    // --create makes a target that does not exist, and --database may be left out of a one-database backup.
    const fresh = `dbflow_test_${randomBytes(6).toString('hex')}`;
    t.after(() => myConnection(MY_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${fresh}`)));
    const created = await dbflow(['restore', url, '--to', myWithDatabase(MY_URL, fresh), '--create'], {
      cwd,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(created.exitCode, 0, `${created.stdout}\n${created.stderr}`);
    assert.deepEqual(await countsAt('mysql', myWithDatabase(MY_URL, fresh)), expected, 'restored into the database --create made');

    // A dump that decodes to other bytes than were taken (the manifest's raw sha256 says so): found at its very
    // end, once the whole dump went into the target — the error names the object and says the restore had begun.
    const dir = path.join(cwd, 'backups', run.runId);
    copyBackup(dir, path.join(cwd, 'backups', 'other', run.runId), (mm) => (mm.artifacts[0]!.raw!.sha256 = '0'.repeat(64)));
    const otherUrl = `file://./backups/other/${run.runId}`;
    const begun = await restore(t, cwd, otherUrl, (await myScratch(t)).url, {});
    assert.equal(begun.exitCode, 1, begun.stdout);
    // (The dump went from mariadb-dump to zstd directly: the manifest has its size alone, the restore hashes what it decodes.)
    const size = m.artifacts[0]!.raw!.bytes;
    assert.ok(
      new RegExp(
        `^dbflow: ${escapeRegExp(`${otherUrl}/${m.artifacts[0]!.path}`)} decodes to ${size} bytes with sha256 [0-9a-f]{64}, but the dump taken was ${size} bytes with sha256 0{64}\\.`,
      ).test(begun.stderr),
      begun.stderr,
    );
    assert.match(
      begun.stderr,
      /The restore into mysql:\/\/\S+ had begun \(\d+ bytes of the dump were read\): the target may now hold part of the backup; drop and re-create it before restoring again\.\n$/,
    );
    assert.equal(hasStackTrace(begun.stderr), false);

    // Bit rot near the end of the stored object: the error names it (before or while restoring).
    const artifact = path.join(dir, m.artifacts[0]!.path);
    flipByte(artifact, m.artifacts[0]!.bytes - 40);
    const bad = await restore(t, cwd, url, (await myScratch(t)).url, {});
    assert.equal(bad.exitCode, 1, bad.stdout);
    assert.ok(bad.stderr.startsWith(`dbflow: ${url}/${m.artifacts[0]!.path}: sha256 is `), bad.stderr);
    assert.match(bad.stderr, /(Nothing was restored into|The restore into) mysql:\/\/\S+/);
    const v = await dbflow(['verify', url, '--no-record'], { cwd, env: { DBFLOW_PASSPHRASE: PASSPHRASE } });
    assert.equal(v.exitCode, 1);
    assert.match(
      v.stderr,
      new RegExp(`${m.artifacts[0]!.path.replace(/\./g, '\\.')}: sha256 is [0-9a-f]{64}, the manifest says ${m.artifacts[0]!.sha256}`),
    );
  },
);

void test('SQLite with checksums: restore into a new file with equal counts and checksums', { timeout: 2 * MINUTE }, async (t) => {
  const cwd = tmpDir(t);
  createLiveDatabase(path.join(cwd, 'live.sqlite3'), 3000);
  const yaml = sqlitePipeline('file://./backups/{{ run.id }}/app.sqlite3.gz.pgp');
  const run = await runBackup(cwd, writePipeline(cwd, yaml), { TEST_PASSPHRASE: PASSPHRASE });
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  const expected = assertChecksummed(readManifest(cwd, run.runId));
  const target = path.join(cwd, 'restored', 'app.sqlite3');
  // A new path cannot be checked for emptiness: --force restores into it (the sqlite driver itself never overwrites a database).
  const r = await restore(t, cwd, `file://./backups/${run.runId}/manifest.json`, `sqlite:${target}`, {}, ['--force']);
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /✔ 2 tables, \d+ rows equal to the backup's counts and checksums\n$/);
  assert.deepEqual(await countsAt('sqlite', `sqlite:${target}`), expected);
  assert.deepEqual(
    manifestIn(path.join(cwd, 'backups', run.runId)).artifacts[0]!.layers.map((l) => l.codec),
    ['gzip', 'openpgp'],
  );
});

void test(
  'MariaDB through an S3 repository: restore into a new database with equal counts and checksums',
  { timeout: 3 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const s3 = await requireS3(t);
    if (!s3) return;
    const bucket = await s3.bucket();
    const db = await myScratch(t);
    await mySeed(db.pool, { rows: 3000 });
    const cwd = tmpDir(t);
    const yaml = myBackupPipeline({ url: db.url }).replace('file://./backups/', `s3://${bucket}/my/`);
    assert.match(yaml, new RegExp(`s3://${bucket}/my/`));
    const run = await runBackup(cwd, writePipeline(cwd, yaml), { ...myBackupEnv(), ...s3.env });
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
    const expected = assertChecksummed(JSON.parse(await readS3Manifest(s3.client(), bucket, `my/${run.runId}/manifest.json`)) as Manifest);
    const target = await myScratch(t);
    const r = await restore(t, cwd, `s3://${bucket}/my/${run.runId}`, target.url, s3.env);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /✔ 4 tables, \d+ rows equal to the backup's counts and checksums\n$/);
    assert.deepEqual(await countsAt('mysql', target.url), expected);
  },
);

void test(
  'SQLite through an S3 repository: restore into a new file with equal counts and checksums',
  { timeout: 2 * MINUTE },
  async (t) => {
    const s3 = await requireS3(t);
    if (!s3) return;
    const bucket = await s3.bucket();
    const cwd = tmpDir(t);
    createLiveDatabase(path.join(cwd, 'live.sqlite3'), 2000);
    const yaml = sqlitePipeline(`s3://${bucket}/lite/{{ run.id }}/app.sqlite3.gz.pgp`);
    const run = await runBackup(cwd, writePipeline(cwd, yaml), { TEST_PASSPHRASE: PASSPHRASE, ...s3.env });
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
    const expected = assertChecksummed(
      JSON.parse(await readS3Manifest(s3.client(), bucket, `lite/${run.runId}/manifest.json`)) as Manifest,
    );
    const target = path.join(cwd, 'restored', 'app.sqlite3');
    const r = await restore(t, cwd, `s3://${bucket}/lite/${run.runId}`, `sqlite:${target}`, s3.env, ['--force']);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(await countsAt('sqlite', `sqlite:${target}`), expected);
  },
);

// A backup of `live.sqlite3` with checksums, gzip and OpenPGP, uploaded to `to`.
function sqlitePipeline(to: string): string {
  return `version: 1
name: sqlitetest
secrets:
  passphrase: { env: TEST_PASSPHRASE }
databases:
  app: { driver: sqlite, url: "sqlite:./live.sqlite3", options: { checksums: true } }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: gzip } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "${to}" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

// The text of an object in the bucket, read around dbflow.
async function readS3Manifest(client: S3Client, bucket: string, key: string): Promise<string> {
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await out.Body!.transformToString();
  } finally {
    client.destroy();
  }
}
