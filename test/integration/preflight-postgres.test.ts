// The postgres driver's preflight: the grants a backup user lacks, named exactly; with them, a backup as that user is verified.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { DbflowError } from '../../src/index.js';
import { readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { grantsOf, preflightOf } from '../helpers/preflight.js';
import {
  databasesStartingWith,
  PG_URL,
  requireBackupTools,
  requirePostgres,
  scratchDatabase,
  throwawayPostgres,
  withClient,
  type ScratchDatabase,
} from '../helpers/postgres.js';
import { seedShop } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline } from '../helpers/postgres-run.js';
import { freePort } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;

// Besides the shop (edge cases: a partitioned table, a quoted table name, identity and serial sequences):
// a schema whose name needs quoting, a table under row-level security, a large object.
const MORE = `
CREATE SCHEMA "Reports";
CREATE TABLE "Reports".daily (day date PRIMARY KEY, orders int NOT NULL);
INSERT INTO "Reports".daily SELECT date '2024-01-01' + i, i FROM generate_series(0, 30) i;
CREATE TABLE public.notes (id int PRIMARY KEY, author text NOT NULL, body text);
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_notes ON public.notes USING (author = current_user);
INSERT INTO public.notes SELECT i, 'author' || i % 3, 'note ' || i FROM generate_series(1, 12) i;
`;

// A database with everything a backup user needs grants for; its large object's oid.
async function appDatabase(t: TestContext): Promise<{ db: ScratchDatabase; tables: string[]; largeObject: string }> {
  const db = await scratchDatabase(t);
  const shop = await seedShop(db.pool, { rows: 300, edgeCases: true });
  await db.pool.query(MORE);
  const { rows } = await db.pool.query<{ oid: string }>(`SELECT lo_from_bytea(0, 'a large object')::text AS oid`);
  return { db, tables: [...shop.tables, 'Reports.daily', 'public.notes'].sort(), largeObject: rows[0]!.oid };
}

// A new login role without any grant, dropped after the test; the URL of `db` as that role.
async function loginRole(t: TestContext, db: ScratchDatabase): Promise<{ role: string; url: string }> {
  const role = `dbflow_test_pf_${randomBytes(4).toString('hex')}`;
  await withClient(PG_URL, (c) => c.query(`CREATE ROLE ${role} LOGIN`));
  t.after(async () => {
    // Its grants go first (DROP OWNED revokes them), unless the database went before.
    await withClient(db.url, (c) => c.query(`DROP OWNED BY ${role}`)).catch(() => undefined);
    await withClient(PG_URL, (c) => c.query(`DROP ROLE IF EXISTS ${role}`));
  });
  const url = new URL(db.url);
  url.username = role;
  return { role, url: url.toString() };
}

// Runs each statement as the superuser, in the database `db`.
async function runAsAdmin(db: ScratchDatabase, statements: readonly string[]): Promise<void> {
  await withClient(db.url, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

void test('the superuser finds nothing missing', { timeout: MINUTE }, async (t) => {
  if (!(await requirePostgres(t))) return;
  const { db } = await appDatabase(t);
  const report = await preflightOf('postgres', db.url);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.notes, []);
  assert.match(report.server ?? '', /^PostgreSQL \d+\.\d+$/);
  assert.equal(report.user, 'postgres');
});

void test('a login role without grants is told each missing grant, exactly', { timeout: MINUTE }, async (t) => {
  if (!(await requirePostgres(t))) return;
  const { db, largeObject } = await appDatabase(t);
  const { role, url } = await loginRole(t, db);
  const report = await preflightOf('postgres', url);
  assert.equal(report.user, role);
  assert.deepEqual(grantsOf(report), [
    `GRANT USAGE ON SCHEMA "Reports" TO ${role};`,
    `GRANT USAGE ON SCHEMA audit TO ${role};`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA "Reports" TO ${role};`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA audit TO ${role};`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role};`,
    `GRANT SELECT ON ALL SEQUENCES IN SCHEMA audit TO ${role};`,
    `GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};`,
    `GRANT SELECT ON LARGE OBJECT ${largeObject} TO ${role};`,
    `ALTER ROLE ${role} BYPASSRLS;`,
    `ALTER ROLE ${role} CREATEDB;`,
  ]);
  const needs = report.missing.map((m) => m.need).join('\n');
  assert.match(
    needs,
    /read public\."Mixed Case Table", public\.customers, public\.empty_table, public\.notes, public\.odd_values and 2 more/,
  );
  assert.match(needs, /every row of public\.notes \(row-level security/);
  assert.match(needs, /scratch database/);
  // What only a coordinated snapshot needs is asked for only when the database takes part in one.
  assert.doesNotMatch(report.notes.join('\n'), /SHARE MODE|pg_create_restore_point/);
  const coordinated = await preflightOf('postgres', url, { use: { coordinated: true } });
  assert.deepEqual(
    grantsOf(coordinated).filter((g) => g.startsWith('GRANT UPDATE')),
    ['"Reports"', 'audit', 'public'].map((s) => `GRANT UPDATE ON ALL TABLES IN SCHEMA ${s} TO ${role};`),
  );
  assert.match(coordinated.missing.map((m) => m.need).join('\n'), /coordinated snapshot's write barrier, LOCK TABLE … IN SHARE MODE/);
  assert.match(coordinated.notes.join('\n'), /pg_create_restore_point\(text\) TO /);
  // Without a restore-test, no scratch database is needed.
  assert.ok(!grantsOf(await preflightOf('postgres', url, { use: { restoreTest: false } })).includes(`ALTER ROLE ${role} CREATEDB;`));

  // Selected tables get grants of their own, their sequences included; the schema filter keeps the others out.
  const some = await preflightOf('postgres', url, { options: { tables: ['public.orders', 'public.customers'] } });
  assert.deepEqual(grantsOf(some), [
    `GRANT SELECT ON TABLE public.customers, public.orders TO ${role};`,
    `GRANT SELECT ON SEQUENCE public.customers_id_seq, public.orders_id_seq TO ${role};`,
    `ALTER ROLE ${role} CREATEDB;`,
  ]);
  const schema = await preflightOf('postgres', url, { options: { schemas: ['Reports'] } });
  assert.deepEqual(grantsOf(schema), [
    `GRANT USAGE ON SCHEMA "Reports" TO ${role};`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA "Reports" TO ${role};`,
    `ALTER ROLE ${role} CREATEDB;`,
  ]);
});

void test('after the suggested grants nothing is missing, and a backup as that role is verified', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const { db, tables } = await appDatabase(t);
  const { url } = await loginRole(t, db);
  const before = await preflightOf('postgres', url);
  assert.ok(before.missing.length > 0);
  await runAsAdmin(db, grantsOf(before));
  const after = await preflightOf('postgres', url);
  assert.deepEqual(after.missing, []);

  const cwd = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url })), backupEnv());
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const m = readManifest(cwd, r.runId);
  assert.equal(m.status, 'verified');
  assert.deepEqual(m.verification.map((v) => [v.check, v.ok]).sort(), [
    ['restore', true],
    ['rowcount', true],
  ]);
  assert.deepEqual(Object.keys(m.databases.app!.tables).sort(), tables);
  assert.equal(m.databases.app!.tables['public.notes']!.rows, 12, 'row-level security filtered no row');
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), []);
});

void test('without CONNECT on the database, that grant is named', { timeout: MINUTE }, async (t) => {
  if (!(await requirePostgres(t))) return;
  const db = await scratchDatabase(t);
  const { role, url } = await loginRole(t, db);
  await runAsAdmin(db, [`REVOKE CONNECT ON DATABASE ${db.name} FROM PUBLIC`]);
  const report = await preflightOf('postgres', url);
  assert.deepEqual(grantsOf(report), [`GRANT CONNECT ON DATABASE "${db.name}" TO "${role}";`]);
  assert.match(report.notes.join('\n'), /run the check again/);
  await runAsAdmin(db, grantsOf(report));
  assert.deepEqual(grantsOf(await preflightOf('postgres', url)), [`ALTER ROLE ${role} CREATEDB;`]);
});

void test('an extension only a superuser may create asks for SUPERUSER', { timeout: MINUTE }, async (t) => {
  if (!(await requirePostgres(t))) return;
  const db = await scratchDatabase(t);
  const available = await db.pool.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'`);
  if (!available.rowCount) return void t.skip('the pg_stat_statements extension is not installed (apt-get install postgresql-contrib)');
  await db.pool.query('CREATE EXTENSION pg_stat_statements');
  const { role, url } = await loginRole(t, db);
  const report = await preflightOf('postgres', url);
  const superuser = report.missing.find((m) => m.grant === `ALTER ROLE ${role} SUPERUSER;`);
  assert.ok(superuser, JSON.stringify(report.missing));
  assert.match(superuser.need, /only a superuser may create: extension pg_stat_statements/);
});

void test('a wrong password, an unreachable port, a cancelled check: clear errors without the password', { timeout: MINUTE }, async (t) => {
  if (!(await requirePostgres(t))) return;
  const server = await throwawayPostgres(t);
  if (!server) return;
  const wrong = `wrong-${randomBytes(6).toString('hex')}`;
  await assert.rejects(preflightOf('postgres', server.url, { password: wrong }), (err: Error) => {
    assert.ok(err instanceof DbflowError);
    assert.match(err.message, new RegExp(`password authentication failed for user "postgres" at 127\\.0\\.0\\.1:${server.port}`));
    assert.match(err.message, /database "app" \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres\)/);
    assert.ok(!err.message.includes(wrong) && !err.message.includes(server.password), err.message);
    return true;
  });
  assert.deepEqual((await preflightOf('postgres', server.url, { password: server.password })).missing, []);

  const port = await freePort();
  const secret = `s3cret-${randomBytes(6).toString('hex')}`;
  await assert.rejects(preflightOf('postgres', `postgres://backup:${secret}@127.0.0.1:${port}/appdb?connect_timeout=5`), (err: Error) => {
    assert.ok(err instanceof DbflowError);
    assert.match(err.message, new RegExp(`cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assert.match(err.message, /\/appdb/);
    assert.ok(!err.message.includes(secret), err.message);
    return true;
  });

  const cancelled = new AbortController();
  cancelled.abort(new Error('cancelled by the test'));
  await assert.rejects(preflightOf('postgres', PG_URL, { signal: cancelled.signal }), /cancelled by the test/);
});
