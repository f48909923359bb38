// A database password written inside the URL (or given by `password:` from a secret) reaches every connection of a backup: snapshot, dump, the restore-test's scratch database and its row counts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { execa } from 'execa';
import { readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';
import {
  databasesStartingWith as myDatabasesStartingWith,
  requireMyBackupTools,
  scratchDatabase as myScratch,
  throwawayUser,
  MY_URL,
} from '../helpers/mysql.js';
import { seedShop as seedMyShop } from '../helpers/mysql-data.js';
import {
  databasesStartingWith,
  requireBackupTools,
  throwawayPostgres,
  withClient,
  withDatabase,
  withPassword,
} from '../helpers/postgres.js';
import { seedShop } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline } from '../helpers/postgres-run.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;
const ROWS = 2000;

// Characters a URL, a passfile or an option file must escape.
const hostilePassword = (): string => `p@ss:w/0rd ?#%'"\\ ${randomBytes(6).toString('hex')}`;

// A role `app_owner` (LOGIN CREATEDB, a password, not a superuser) owning a seeded database `app` on a throwaway scram-sha-256 cluster.
async function pgRole(t: TestContext) {
  const server = await throwawayPostgres(t);
  if (!server) return undefined;
  const password = hostilePassword();
  await withClient(
    server.url,
    (c) => c.query(`CREATE ROLE app_owner LOGIN CREATEDB PASSWORD '${password.replace(/'/g, "''")}'`),
    server.password,
  );
  await withClient(server.url, (c) => c.query('CREATE DATABASE app OWNER app_owner'), server.password);
  const url = new URL(withDatabase(server.url, 'app'));
  url.username = 'app_owner';
  await withClient(url.toString(), (c) => seedShop(c, { rows: ROWS }), password);
  // scram-sha-256 indeed: without the password the role is refused. (psql, not node-postgres: node-postgres gives up
  // without closing the connection, and the server then sits in authentication for a minute, which holds up every
  // DROP DATABASE on it, the restore-test's among them.)
  const refused = await execa('psql', ['-w', '-X', '-d', url.toString(), '-c', 'SELECT 1'], {
    reject: false,
    env: { PGPASSWORD: undefined, PGPASSFILE: '/dev/null' },
  });
  assert.equal(refused.exitCode, 2, refused.stderr);
  assert.match(refused.stderr, /no password supplied/);
  return { server, password, url: url.toString() };
}

for (const where of ['url', 'secret'] as const) {
  void test(
    `postgres, scram-sha-256, the password ${where === 'url' ? 'only inside the URL' : 'from a secret (password:)'}: backup, restore-test and rowcount-check pass`,
    { timeout: 2 * MINUTE },
    async (t) => {
      if (!(await requireBackupTools(t, 'zstd'))) return;
      const setup = await pgRole(t);
      if (!setup) return;
      const cwd = tmpDir(t);
      const url = where === 'url' ? withPassword(setup.url, setup.password) : setup.url;
      const file = writePipeline(cwd, backupPipeline({ url, password: where === 'secret' }));
      const r = await runBackup(cwd, file, backupEnv(where === 'secret' ? setup.password : undefined));
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
      const m = readManifest(cwd, r.runId);
      assert.equal(m.status, 'verified');
      assert.equal(m.databases.app!.tables['public.orders']?.rows, ROWS);
      assert.ok(
        m.verification.some((v) => v.check === 'restore' && v.ok),
        JSON.stringify(m.verification),
      );
      assert.ok(!`${r.stdout}${r.stderr}`.includes(setup.password.slice(-12)), 'the output does not hold the password');
      assert.deepEqual(
        await databasesStartingWith(verifyPrefix(r.runId), setup.server.url, setup.server.password),
        [],
        'the scratch database was dropped',
      );
    },
  );

  void test(
    `mysql, a user with a password ${where === 'url' ? 'only inside the URL' : 'from a secret (password:)'}: backup, restore-test and rowcount-check pass`,
    { timeout: 2 * MINUTE },
    async (t) => {
      if (!(await requireMyBackupTools(t, 'zstd'))) return;
      const { user, password } = await throwawayUser(t);
      const app = await myScratch(t);
      await seedMyShop(app.pool, { rows: ROWS });
      const u = new URL(app.url);
      u.username = user;
      if (where === 'url') u.password = encodeURIComponent(password);
      const cwd = tmpDir(t);
      const file = writePipeline(cwd, myBackupPipeline({ url: u.toString(), password: where === 'secret' }));
      const r = await runBackup(cwd, file, myBackupEnv(where === 'secret' ? password : undefined));
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
      const m = readManifest(cwd, r.runId);
      assert.equal(m.status, 'verified');
      assert.ok(
        m.verification.some((v) => v.check === 'restore' && v.ok),
        JSON.stringify(m.verification),
      );
      assert.ok(!`${r.stdout}${r.stderr}`.includes(password.slice(-12)), 'the output does not hold the password');
      assert.deepEqual(await myDatabasesStartingWith(verifyPrefix(r.runId), MY_URL), [], 'the scratch database was dropped');
    },
  );
}
