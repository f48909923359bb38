// Every program dbflow starts (pg_dump, pg_restore, pg_basebackup, tar, a throwaway instance, mariadb-dump, mariadb, zstd), for every driver and storage, gets no secret: not in argv, not in its environment.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test, type TestContext } from 'node:test';
import { runIdOf, writePipeline } from '../helpers/backup-run.js';
import { driverPipeline, type DriverCase } from '../helpers/driver-pipeline.js';
import {
  requireMyBackupTools,
  scratchDatabase as myScratch,
  throwawayUser,
  withConnection,
  withDatabase as myWithDatabase,
  MY_URL,
} from '../helpers/mysql.js';
import { seedShop as seedMyShop } from '../helpers/mysql-data.js';
import { requireBackupTools, requireTools, throwawayPostgres, withClient, withDatabase as pgWithDatabase } from '../helpers/postgres.js';
import { seedShop as seedPgShop } from '../helpers/postgres-data.js';
import { assertNoSecrets, runWatched } from '../helpers/program-watch.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;
after(stopS3);

// A value no environment or argument holds by chance.
const secret = (what: string): string => `${what}-${randomBytes(9).toString('hex')}`;

// The programs each driver runs in a backup with restore-test (zstd compresses, and decompresses in the restore-test).
const PROGRAMS = { postgres: ['pg_dump', 'pg_restore', 'zstd'], mysql: ['mariadb-dump', 'mariadb', 'zstd'], sqlite: ['zstd'] };
const RESTORE_PROGRAMS = { postgres: ['pg_restore', 'zstd'], mysql: ['mariadb', 'zstd'], sqlite: ['zstd'] };

/**
 * Runs the backup, then `dbflow verify` and (with `restoreTo`) `dbflow restore` of it, each with
 * secrets in its environment that none of the programs it starts may get.
 */
async function checkBackup(
  t: TestContext,
  c: DriverCase,
  more: { env?: Record<string, string>; secrets?: Record<string, string>; restoreTo?: string } = {},
): Promise<void> {
  const cwd = tmpDir(t);
  const secrets = {
    BACKUP_PASSPHRASE: secret('passphrase'),
    DBFLOW_PASSPHRASE: secret('not-this-runs-passphrase'),
    ...(c.password !== undefined && { DB_PASSWORD: c.password }),
    ...more.secrets,
  };
  const env = { ...more.env, ...secrets };
  const run = await runWatched(['run', writePipeline(cwd, driverPipeline(c))], { cwd, env });
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  assertNoSecrets(run, secrets, PROGRAMS[c.driver]);
  // libpq's own settings that the user gave dbflow (as the node client reads them) reach the PostgreSQL tools.
  for (const [k, v] of Object.entries(more.env ?? {})) {
    if (!k.startsWith('PG')) continue;
    // A process sampled as it ended may have left its environment unread: those are not evidence either way.
    const read = run.programs.filter(
      (x) => (x.comm === 'pg_dump' || x.comm === 'pg_restore') && !x.cmdline.includes('--version') && x.environ.includes('PATH='),
    );
    assert.ok(
      read.some((p) => p.comm === 'pg_dump') && read.some((p) => p.comm === 'pg_restore'),
      `pg_dump and pg_restore were read: ${read.map((p) => p.comm).join(', ')}`,
    );
    for (const p of read) assert.ok(p.environ.split('\n').includes(`${k}=${v}`), `${p.comm} got ${k}`);
  }
  t.diagnostic(`run: ${run.samples} samples; seen: ${run.programs.map((p) => p.comm).join(', ')}`);

  const backup = `${c.repo}/${runIdOf(run.stdout)}/`;
  const commandEnv = { ...more.env, ...more.secrets, DBFLOW_PASSPHRASE: secrets.BACKUP_PASSPHRASE };
  const verify = await runWatched(['verify', backup], { cwd, env: commandEnv });
  assert.equal(verify.exitCode, 0, `${verify.stdout}\n${verify.stderr}`);
  assertNoSecrets(verify, { ...more.secrets, DBFLOW_PASSPHRASE: secrets.BACKUP_PASSPHRASE }, ['zstd']);

  if (!more.restoreTo) return;
  const targetSecrets = {
    ...more.secrets,
    DBFLOW_PASSPHRASE: secrets.BACKUP_PASSPHRASE,
    ...(c.password !== undefined && { DBFLOW_TARGET_PASSWORD: c.password }),
  };
  const restore = await runWatched(['restore', backup, '--database', 'app', '--to', more.restoreTo], {
    cwd,
    env: { ...more.env, ...targetSecrets },
  });
  assert.equal(restore.exitCode, 0, `${restore.stdout}\n${restore.stderr}`);
  assertNoSecrets(restore, targetSecrets, RESTORE_PROGRAMS[c.driver]);
}

void test(
  'postgres (password from a secret), to file://: pg_dump, pg_restore and zstd get no secret, in run, verify and restore',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const server = await throwawayPostgres(t, { password: `p@ss:w0rd ${secret('pg')}` });
    if (!server) return;
    await withClient(server.url, (c) => c.query('CREATE DATABASE app'), server.password);
    await withClient(server.url, (c) => c.query('CREATE DATABASE target'), server.password);
    await withClient(pgWithDatabase(server.url, 'app'), (c) => seedPgShop(c, { rows: 20_000 }), server.password);
    await checkBackup(
      t,
      { driver: 'postgres', url: pgWithDatabase(server.url, 'app'), password: server.password, repo: 'file://./backups' },
      { restoreTo: pgWithDatabase(server.url, 'target'), env: { PGTZ: 'UTC', PGCLIENTENCODING: 'UTF8' } },
    );
  },
);

void test(
  'mysql (password from a secret), to s3://: mariadb-dump, mariadb and zstd get no secret, in run, verify and restore',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const s3 = await requireS3(t);
    if (!s3) return;
    const { user, password } = await throwawayUser(t);
    const app = await myScratch(t);
    const target = await myScratch(t);
    await seedMyShop(app.pool, { rows: 20_000 });
    const asUser = (url: string): string => {
      const u = new URL(url);
      u.username = user;
      return u.toString();
    };
    assert.ok(MY_URL.startsWith('mysql://'));
    await withConnection(asUser(app.url), (c) => c.query('SELECT 1'), password);
    await checkBackup(
      t,
      { driver: 'mysql', url: asUser(app.url), password, repo: `s3://${await s3.bucket()}/backups` },
      { env: s3.env, secrets: { AWS_SECRET_ACCESS_KEY: secret('aws') }, restoreTo: asUser(myWithDatabase(app.url, target.name)) },
    );
  },
);

void test('sqlite, to s3://: zstd gets no secret, in run and verify', { timeout: 4 * MINUTE }, async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  await checkBackup(
    t,
    { driver: 'sqlite', url: 'sqlite:./app.sqlite3', repo: `s3://${await s3.bucket()}/backups` },
    { env: s3.env, secrets: { AWS_SECRET_ACCESS_KEY: secret('aws') } },
  );
});

void test(
  'postgres base backup (password from a secret), to file://: pg_basebackup, tar, zstd and the throwaway instance get no secret',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireTools(t, 'pg_basebackup', 'zstd'))) return;
    const server = await throwawayPostgres(t, { password: `p@ss:w0rd ${secret('pg')}` });
    if (!server) return;
    await withClient(server.url, (c) => c.query('CREATE DATABASE app'), server.password);
    await withClient(pgWithDatabase(server.url, 'app'), (c) => seedPgShop(c, { rows: 20_000 }), server.password);
    const cwd = tmpDir(t);
    const secrets = { BACKUP_PASSPHRASE: secret('passphrase'), DB_PASSWORD: server.password, DBFLOW_PASSPHRASE: secret('not-this') };
    const file = writePipeline(
      cwd,
      `version: 1
name: base
secrets:
  passphrase: { env: BACKUP_PASSPHRASE }
  db_password: { env: DB_PASSWORD }
databases:
  app: { driver: postgres, url: ${JSON.stringify(pgWithDatabase(server.url, 'app'))}, password: "{{ secrets.db_password }}" }
steps:
  - { id: base, uses: basebackup, with: { database: app } }
  - { id: compress, uses: compress, input: base, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.base.tar.zst.pgp" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: base } }
`,
    );
    const run = await runWatched(['run', file], { cwd, env: secrets });
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
    assertNoSecrets(run, secrets, ['pg_basebackup', 'tar', 'zstd', 'pg_ctl']);
    t.diagnostic(`run: ${run.samples} samples; seen: ${run.programs.map((p) => p.comm).join(', ')}`);
  },
);
