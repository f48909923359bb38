// Point-in-time recovery with the repository on S3 (s3rver): the WAL archive and the base backup are stored as
// objects, verified there, listed with their restorable range, and recovered from to the end of the archive.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { asServerUser } from '../../plugins/postgres/instance.js';
import { dbflow } from '../helpers/cli.js';
import { withClient } from '../helpers/postgres.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { archiving, baseBackupSetup, inRestored, rowsByPhase } from '../helpers/wal-archive.js';

after(stopS3);

void test('WAL archived to S3 and a base backup there recover to the end of the archive', { timeout: 240_000 }, async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const repo = `s3://${bucket}/pg`;
  const s = await baseBackupSetup(t, [], repo);
  if (!s) return;
  Object.assign(s.env, s3.env);
  const sql = (text: string): Promise<unknown> => withClient(s.pg.url, (c) => c.query(text), s.pg.password);
  await sql('CREATE TABLE s3_rows (n int, phase text)');
  const archiver = archiving(t, s);
  await sql("INSERT INTO s3_rows SELECT g, 'before-base' FROM generate_series(1, 100) g");
  const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  await sql("INSERT INTO s3_rows SELECT g, 'after-base' FROM generate_series(1, 100) g");
  await sql('SELECT pg_switch_wal()');
  await sql("INSERT INTO s3_rows SELECT g, 'open-segment' FROM generate_series(1, 10) g");
  await sleep(3000);
  await archiver.stop();

  const client = s3.client();
  t.after(() => client.destroy());
  const keys = ((await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'pg/wal/' }))).Contents ?? []).map((o) => o.Key!);
  assert.ok(
    keys.some((k) => /^pg\/wal\/\d+\/[0-9A-F]{24}\.zst\.pgp$/.test(k)),
    `segments are stored as objects: ${keys.join(' ')}`,
  );
  assert.ok(keys.includes('pg/wal/dbflow-archive.json'), 'the archive is marked');
  const verify = await dbflow(['verify', `${repo}/wal`], { env: s.env, cwd: s.dir });
  assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
  const listed = await dbflow(['backups', 'list', repo], { env: s.env, cwd: s.dir });
  assert.equal(listed.exitCode, 0, listed.stderr);
  assert.match(
    listed.stdout,
    new RegExp(`^restorable: \\S+ \\(main\\) to any time from \\S+ to \\S+, with the log in s3://${bucket}/pg/wal/\\d+$`, 'm'),
  );

  await asServerUser(path.join(s.pg.bin, 'pg_ctl'), ['stop', '-D', s.pg.data, '-m', 'immediate', '-w']);
  const datadir = path.join(s.dir, 'latest');
  const restored = await dbflow(['restore', repo, '--to-datadir', datadir, '--latest', '--passphrase-file', s.passphraseFile], {
    env: s.env,
    cwd: s.dir,
  });
  assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
  const phases = await inRestored(datadir, s.pg.bin, (url) => rowsByPhase(url, s.pg.password, 's3_rows'));
  assert.deepEqual(phases, { 'before-base': 100, 'after-base': 100, 'open-segment': 10 });
});
