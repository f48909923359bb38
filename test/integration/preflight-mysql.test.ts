// The mysql driver's preflight on MariaDB: the grants a backup user lacks, named exactly; with them, a backup as that user is verified.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { DbflowError } from '../../src/index.js';
import { readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { grantsOf, preflightOf } from '../helpers/preflight.js';
import {
  databasesStartingWith,
  MY_URL,
  requireMyBackupTools,
  requireMysql,
  scratchDatabase,
  throwawayMariadb,
  withConnection,
  type ScratchDatabase,
} from '../helpers/mysql.js';
import { seedShop } from '../helpers/mysql-data.js';
import { decryptArtifact, myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';
import { freePort } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;

/** A user made for one test, and its account as grants name it. */
interface BackupUser {
  user: string;
  password: string;
  account: string;
}

// A new user without any grant, dropped after the test.
async function backupUser(t: TestContext, serverUrl = MY_URL): Promise<BackupUser> {
  const user = `dbflow_test_pf_${randomBytes(4).toString('hex')}`;
  const password = `pw'"\\${randomBytes(6).toString('hex')}`;
  await withConnection(serverUrl, (c) => c.query("CREATE USER ?@'%' IDENTIFIED BY ?", [user, password]));
  // A throwaway server stopped before this hook ran took the user with it.
  const drop = (): Promise<unknown> => withConnection(serverUrl, (c) => c.query(`DROP USER IF EXISTS '${user}'@'%'`));
  t.after(() => (serverUrl === MY_URL ? drop() : drop().catch(() => undefined)));
  return { user, password, account: `'${user}'@'%'` };
}

// The URL of `db` as `user`.
function urlAs(db: ScratchDatabase, user: string): string {
  const url = new URL(db.url);
  url.username = user;
  return url.toString();
}

// Runs each statement as root.
async function runAsRoot(statements: readonly string[], serverUrl = MY_URL): Promise<void> {
  await withConnection(serverUrl, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

// The shop, and a view, routines, a trigger and an event defined by `definer` (as an application's own user would).
async function appDatabase(t: TestContext, definer: string): Promise<{ db: ScratchDatabase; tables: string[] }> {
  const db = await scratchDatabase(t);
  const shop = await seedShop(db.pool, { rows: 300 });
  await db.pool.query(`
    CREATE DEFINER=${definer} VIEW paid_orders AS SELECT id, total FROM orders WHERE status = 'paid';
    CREATE DEFINER=${definer} PROCEDURE noop() SELECT 1;
    CREATE DEFINER=${definer} FUNCTION one() RETURNS int DETERMINISTIC RETURN 1;
    CREATE DEFINER=${definer} TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW SET NEW.name = NEW.name;
    CREATE DEFINER=${definer} EVENT nightly_noop ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;`);
  return { db, tables: shop.tables };
}

// The statements a fresh user on a MariaDB 10.5+ server is told to have run, for the database `database`.
function firstGrants(database: string, account: string): string[] {
  return [
    `GRANT RELOAD ON *.* TO ${account};`,
    `GRANT BINLOG MONITOR ON *.* TO ${account};`,
    `GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON \`${database.replace(/_/g, '\\_')}\`.* TO ${account};`,
    `GRANT SELECT ON mysql.proc TO ${account};`,
    `GRANT ALL PRIVILEGES ON \`dbflow\\_verify\\_%\`.* TO ${account};`,
  ];
}

// A backup of `url` with `password`, verified, with exactly `tables`, leaving no scratch database; the dump's SQL.
async function verifiedBackup(
  t: TestContext,
  url: string,
  password: string,
  tables: readonly string[],
  serverUrl = MY_URL,
): Promise<string> {
  const cwd = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url, password: true })), myBackupEnv(password));
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const m = readManifest(cwd, r.runId);
  assert.equal(m.status, 'verified');
  assert.deepEqual(m.verification.map((v) => `${v.check}: ${v.ok}`).sort(), ['restore: true', 'rowcount: true']);
  assert.deepEqual(Object.keys(m.databases.app!.tables).sort(), [...tables].sort());
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId), serverUrl), []);
  return decryptArtifact(path.join(cwd, 'backups', r.runId, 'app.sql.zst.pgp'), tmpDir(t));
}

void test('root finds nothing missing', { timeout: MINUTE }, async (t) => {
  if (!(await requireMysql(t))) return;
  const db = await scratchDatabase(t);
  await seedShop(db.pool, { rows: 100, edgeCases: true });
  const report = await preflightOf('mysql', db.url);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.notes, []);
  assert.match(report.server ?? '', /^MariaDB \d+\.\d+\.\d+$/);
  assert.match(report.user ?? '', /^root@/);
});

void test('a user without grants is told each missing grant, exactly', { timeout: MINUTE }, async (t) => {
  if (!(await requireMysql(t))) return;
  const db = await scratchDatabase(t);
  const u = await backupUser(t);
  const url = urlAs(db, u.user);
  const report = await preflightOf('mysql', url, { password: u.password });
  assert.equal(report.user, `${u.user}@%`);
  assert.deepEqual(grantsOf(report), firstGrants(db.name, u.account));
  const needs = report.missing.map((m) => m.need).join('\n');
  assert.match(needs, /commit barrier \(BACKUP STAGE BLOCK_COMMIT\)/);
  assert.match(needs, /SHOW MASTER STATUS/);
  assert.match(needs, /--routines/);
  assert.match(needs, /scratch databases/);
  assert.match(report.notes.join('\n'), /Run the check again/);
  // Without a restore-test, the scratch databases need nothing.
  const [scratchGrant] = firstGrants(db.name, u.account).slice(-1);
  assert.ok(!grantsOf(await preflightOf('mysql', url, { password: u.password, use: { restoreTest: false } })).includes(scratchGrant!));

  // Granted through a role (enabled by default) or to PUBLIC, they count as well.
  const role = `dbflow_test_pf_role_${randomBytes(4).toString('hex')}`;
  const [reload, monitor, read, routines, scratch] = firstGrants(db.name, u.account);
  const toPublic = read!.replace(u.account, 'PUBLIC');
  t.after(() => runAsRoot([`DROP ROLE IF EXISTS ${role}`, toPublic.replace('GRANT', 'REVOKE').replace(' TO ', ' FROM ')]));
  await runAsRoot([
    `CREATE ROLE ${role}`,
    reload!.replace(u.account, role),
    routines!.replace(u.account, role),
    `GRANT ${role} TO ${u.account}`,
    `SET DEFAULT ROLE ${role} FOR ${u.account}`,
    toPublic,
  ]);
  assert.deepEqual(grantsOf(await preflightOf('mysql', url, { password: u.password })), [monitor, scratch]);
});

void test('after the suggested grants nothing is missing, and a backup as that user is verified', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const u = await backupUser(t);
  const { db, tables } = await appDatabase(t, u.account);
  const url = urlAs(db, u.user);
  await runAsRoot(grantsOf(await preflightOf('mysql', url, { password: u.password })));
  const after = await preflightOf('mysql', url, { password: u.password });
  assert.deepEqual(after.missing, []);
  assert.deepEqual(after.notes, []);
  const dump = await verifiedBackup(t, url, u.password, tables);
  for (const o of ['PROCEDURE `noop`', 'FUNCTION `one`', 'TRIGGER customers_touch', 'EVENT `nightly_noop`', 'VIEW `paid_orders`'])
    assert.ok(dump.includes(o), o);
});

void test(
  'binary log on, objects of another definer: SET USER and SUPER are named once the user can see them; then a backup is verified',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const server = await throwawayMariadb(t);
    if (!server) return;
    const db = await scratchDatabase(t, server.url);
    const shop = await seedShop(db.pool, { rows: 200, edgeCases: true }); // its trigger, function, event and view are root's
    const u = await backupUser(t, server.url);
    const url = urlAs(db, u.user);
    const first = await preflightOf('mysql', url, { password: u.password });
    assert.deepEqual(grantsOf(first), firstGrants(db.name, u.account));
    await runAsRoot(grantsOf(first), server.url);
    const second = await preflightOf('mysql', url, { password: u.password });
    assert.deepEqual(grantsOf(second), [`GRANT SET USER ON *.* TO ${u.account};`, `GRANT SUPER ON *.* TO ${u.account};`]);
    assert.match(second.missing[0]!.need, /view paid_orders/);
    assert.match(second.missing[0]!.need, /with their definers \(root@/);
    assert.match(second.missing[1]!.need, /trigger customers_audit, function order_total while the binary log is on/);
    await runAsRoot(grantsOf(second), server.url);
    assert.deepEqual((await preflightOf('mysql', url, { password: u.password })).missing, []);
    const dump = await verifiedBackup(t, url, u.password, shop.tables, server.url);
    // Root's routines, trigger, event and view are in it (SELECT on mysql.proc, TRIGGER, EVENT, SHOW VIEW).
    for (const o of ['FUNCTION `order_total`', 'TRIGGER customers_audit', 'EVENT `nightly_noop`', 'VIEW `paid_orders`'])
      assert.ok(dump.includes(o), o);
  },
);

void test('a wrong password, an unreachable port: clear errors without the password', { timeout: MINUTE }, async (t) => {
  if (!(await requireMysql(t))) return;
  const db = await scratchDatabase(t);
  const u = await backupUser(t);
  const wrong = `wrong-${randomBytes(6).toString('hex')}`;
  await assert.rejects(preflightOf('mysql', urlAs(db, u.user), { password: wrong }), (err: Error) => {
    assert.ok(err instanceof DbflowError);
    assert.match(err.message, new RegExp(`access denied for user "${u.user}" at 127\\.0\\.0\\.1:3306`));
    assert.match(err.message, new RegExp(`database "app" \\(mysql://${u.user}@127\\.0\\.0\\.1:3306/${db.name}\\)`));
    assert.ok(!err.message.includes(wrong) && !err.message.includes(u.password), err.message);
    return true;
  });

  const port = await freePort();
  const secret = `s3cret-${randomBytes(6).toString('hex')}`;
  await assert.rejects(preflightOf('mysql', `mysql://backup:${secret}@127.0.0.1:${port}/appdb?connect-timeout=5`), (err: Error) => {
    assert.ok(err instanceof DbflowError);
    assert.match(err.message, new RegExp(`cannot connect to MySQL/MariaDB at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assert.match(err.message, /\/appdb/);
    assert.ok(!err.message.includes(secret), err.message);
    return true;
  });
});
