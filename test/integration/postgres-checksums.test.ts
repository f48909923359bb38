// PostgreSQL content checksums against a real server: every kind of column counts, a changed restore fails
// rowcount-check, and a backup checksummed with the older row-text scheme still verifies on restore.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Manifest, TableCounts } from '../../src/index.js';
import { COLUMN_HASH_SCHEME, ROW_TEXT_SCHEME } from '../../plugins/postgres/checksum.js';
import { PASSPHRASE, readManifest, runBackup, writePipeline, type BackupRun } from '../helpers/backup-run.js';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { requireBackupTools, scratchDatabase, type ScratchDatabase } from '../helpers/postgres.js';
import { backupEnv, backupPipeline } from '../helpers/postgres-run.js';
import { copyBackup } from '../helpers/repo.js';
import { checksummedCounts } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;
const TAMPERING = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'tampering-drivers.ts');

const countsAt = (url: string, checksum?: string): Promise<TableCounts> => checksummedCounts('postgres', url, checksum);

// Column, type, value, and another value: built-in types hashed from their value, and types hashed as text.
const KINDS: [string, string, string, string][] = [
  ['i2', 'smallint', '1', '2'],
  ['i4', 'int', '1', '2'],
  ['i8', 'bigint', '1', '2'],
  ['f4', 'real', '1.5', '2.5'],
  ['f8', 'double precision', '1.5', '1.5000000000000002'],
  ['num', 'numeric', '1.5', '1.6'],
  ['t', 'text', "'a'", "'b'"],
  ['vc', 'varchar(20)', "'a'", "'a '"],
  ['bp', 'char(5)', "'a'", "'b'"],
  ['nm', 'name', "'a'", "'b'"],
  ['ch', '"char"', "'a'", "'b'"],
  ['ts', 'timestamp', "'2024-01-01 00:00'", "'2024-01-01 00:00:00.000001'"],
  ['tstz', 'timestamptz', "'2024-01-01 00:00+00'", "'2024-01-01 00:00+01'"],
  ['d', 'date', "'2024-01-01'", "'2024-01-02'"],
  ['tm', 'time', "'10:00'", "'10:01'"],
  ['tmtz', 'timetz', "'10:00+00'", "'10:00+01'"],
  ['iv', 'interval', "'1 day'", "'2 days'"],
  ['b', 'bool', 'true', 'false'],
  ['by', 'bytea', "'\\x00'", "'\\x0000'"],
  ['u', 'uuid', "'00000000-0000-0000-0000-000000000001'", "'00000000-0000-0000-0000-000000000002'"],
  ['jb', 'jsonb', `'{"a": 1}'`, `'{"a": 2}'`],
  ['ip', 'inet', "'10.0.0.1'", "'10.0.0.2'"],
  ['net', 'cidr', "'10.0.0.0/8'", "'10.0.0.0/16'"],
  ['mac', 'macaddr', "'08:00:2b:01:02:03'", "'08:00:2b:01:02:04'"],
  ['mac8', 'macaddr8', "'08:00:2b:01:02:03:04:05'", "'08:00:2b:01:02:03:04:06'"],
  ['o', 'oid', '1', '2'],
  ['lsn', 'pg_lsn', "'0/1'", "'0/2'"],
  ['x8', 'xid8', "'1'", "'2'"],
  ['ai', 'int[]', "'{1,2}'", "'{2,1}'"],
  ['at', 'text[]', "'{a,b}'", "'{a,c}'"],
  ['atz', 'timestamptz[]', "'{2024-01-01 00:00+00}'", "'{2024-01-01 00:00+02}'"],
  // No extended hash (or one that depends on more than the value): hashed as text.
  ['j', 'json', `'{"a": 1}'`, `'{"a":1}'`],
  ['pt', 'point', "'(1,2)'", "'(1,3)'"],
  ['x', 'xml', "'<a/>'", "'<b/>'"],
  ['m', 'money', "'1.00'", "'2.00'"],
  ['bt', 'bit(4)', "B'1010'", "B'1011'"],
  ['vb', 'varbit', "B'1'", "B'10'"],
  ['tv', 'tsvector', "'a b'", "'a c'"],
  ['mo', 'mood', "'sad'", "'happy'"],
  ['pi', 'positive', '1', '2'],
  ['pr', 'pair', "'(1,a)'", "'(1,b)'"],
  ['r', 'int4range', "'[1,2)'", "'[1,3)'"],
  ['ci', 'text COLLATE caseless', "'abc'", "'ABC'"],
  ['aj', 'json[]', `ARRAY['{"a": 1}'::json]`, `ARRAY['{"a": 2}'::json]`],
];

// A table `kinds` with one column of each kind (two rows: the values, and NULLs), and `notes` with NULL, '' and 'NULL'
// (and a dropped column, which the restored copy does not have).
async function seedKinds(db: ScratchDatabase): Promise<void> {
  await db.pool.query(`
    CREATE TYPE mood AS ENUM ('sad', 'happy');
    CREATE DOMAIN positive AS int CHECK (VALUE > 0);
    CREATE TYPE pair AS (a int, b text);
    CREATE COLLATION caseless (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
    CREATE TABLE kinds (id int PRIMARY KEY, ${KINDS.map(([c, type]) => `${c} ${type}`).join(', ')});
    INSERT INTO kinds VALUES (1, ${KINDS.map(([, , v]) => v).join(', ')});
    INSERT INTO kinds (id) VALUES (2);
    CREATE TABLE notes (id int PRIMARY KEY, gone int, body text);
    ALTER TABLE notes DROP COLUMN gone;
    INSERT INTO notes VALUES (1, NULL), (2, ''), (3, 'NULL'), (4, 'x');
  `);
}

void test(
  'every kind of column counts in the checksum: changing any one value changes it, the count stays',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t))) return;
    const db = await scratchDatabase(t);
    await seedKinds(db);
    const before = await countsAt(db.url);
    assert.equal(before['public.kinds']?.rows, 2);
    assert.match(String(before['public.kinds']?.checksum), /^-?\d+$/);
    const changed: string[] = [];
    // Row 1 holds a value in every column, row 2 only NULLs: each is changed in one column at a time, then set back.
    for (const [column, , value, other] of KINDS) {
      for (const [id, to, back] of [
        [1, other, value],
        [2, value, 'NULL'],
      ] as const) {
        await db.pool.query(`UPDATE kinds SET ${column} = ${to} WHERE id = ${id}`);
        const after = (await countsAt(db.url))['public.kinds']!;
        assert.equal(after.rows, 2);
        if (after.checksum === before['public.kinds'].checksum) changed.push(`${column} of row ${id}`);
        await db.pool.query(`UPDATE kinds SET ${column} = ${back} WHERE id = ${id}`);
      }
    }
    assert.deepEqual(changed, [], 'values whose change left the checksum as it was');
    assert.deepEqual(await countsAt(db.url), before, 'the same values give the same checksums');

    // The older scheme still computes (for older backups), and gives other numbers.
    const old = await countsAt(db.url, ROW_TEXT_SCHEME);
    assert.equal(old['public.kinds']?.rows, 2);
    assert.notEqual(old['public.kinds']?.checksum, before['public.kinds']?.checksum);
    await assert.rejects(
      countsAt(db.url, 'sum(md5(row))'),
      /database "app": the backup's checksums were computed as "sum\(md5\(row\)\)", a scheme this version of dbflow does not know/,
    );
  },
);

void test('NULL, an empty string and the string NULL checksum apart', { timeout: MINUTE }, async (t) => {
  if (!(await requireBackupTools(t))) return;
  const db = await scratchDatabase(t);
  await db.pool.query(`CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, NULL)`);
  const sums = new Set<string>();
  for (const value of ['NULL', "''", "'NULL'", "'N'", "'0'"]) {
    await db.pool.query(`UPDATE notes SET body = ${value}`);
    for (const scheme of [COLUMN_HASH_SCHEME, ROW_TEXT_SCHEME])
      sums.add(`${scheme}: ${(await countsAt(db.url, scheme))['public.notes']!.checksum}`);
  }
  assert.equal(sums.size, 10, [...sums].join('\n'));
});

// A backup of `db` whose restore-test runs `tamper` on the restored copy (nothing when undefined).
async function tamperedBackup(t: TestContext, db: ScratchDatabase, cwd: string, tamper?: string): Promise<BackupRun> {
  const yaml = backupPipeline({ url: db.url })
    .replace('databases:', `plugins: ${JSON.stringify([TAMPERING])}\ndatabases:`)
    .replace('"driver":"postgres"', '"driver":"postgres-tampered"');
  const r = await runBackup(cwd, writePipeline(cwd, yaml), { ...backupEnv(), ...(tamper && { DBFLOW_TEST_TAMPER_SQL: tamper }) });
  t.diagnostic(`${tamper ?? 'untouched'}: exit ${r.exitCode}`);
  return r;
}

void test(
  'rowcount-check fails a restore with one value changed (count equal), in a hashed column or one hashed as text, or values swapped between rows',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seedKinds(db);
    await db.pool.query(
      `INSERT INTO kinds (id, num, j, pt, tstz) SELECT i, i, json_build_object('i', i), point(i, i), '2024-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(3, 500) i`,
    );
    const cwd = tmpDir(t);
    const ok = await tamperedBackup(t, db, cwd);
    assert.equal(ok.exitCode, 0, `${ok.stdout}\n${ok.stderr}`);
    const m = readManifest(cwd, ok.runId);
    assert.equal(m.status, 'verified');
    assert.equal(m.databases.app!.position.checksum, COLUMN_HASH_SCHEME, 'PostgreSQL 14 and later: the column-hash scheme');
    assert.match(m.verification.find((v) => v.check === 'rowcount')?.detail ?? '', /^2 tables, 504 rows equal$/);

    const tampers: [string, string][] = [
      ['a numeric', 'UPDATE kinds SET num = num + 1 WHERE id = 7'],
      ['a json value (hashed as text)', `UPDATE kinds SET j = '{"i": 8}' WHERE id = 7`],
      ['a point (hashed as text)', 'UPDATE kinds SET pt = point(7, 8) WHERE id = 7'],
      ['NULL to an empty string', "UPDATE notes SET body = '' WHERE body IS NULL"],
      ['values swapped between rows', 'UPDATE kinds k SET tstz = s.tstz FROM kinds s WHERE (k.id, s.id) IN ((7, 8), (8, 7))'],
    ];
    for (const [what, sql] of tampers) {
      const r = await tamperedBackup(t, db, cwd, sql);
      assert.equal(r.exitCode, 1, `${what}: the run fails\n${r.stdout}\n${r.stderr}`);
      const table = sql.includes('notes') ? 'public.notes: snapshot 4, restored 4' : 'public.kinds: snapshot 500, restored 500';
      assert.ok(
        `${r.stdout}\n${r.stderr}`.includes(`restored "app" differs from its snapshot: ${table} (checksum differs)`),
        `${what}:\n${r.stdout}\n${r.stderr}`,
      );
    }
  },
);

// The SQL the first versions of dbflow checksummed a table with, on sessions with their pinned settings.
async function rowTextChecksums(db: ScratchDatabase, tables: readonly string[]): Promise<Record<string, string>> {
  const c = await db.pool.connect();
  try {
    await c.query(
      `SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET bytea_output = 'hex'`,
    );
    const out: Record<string, string> = {};
    for (const table of tables) {
      const r = await c.query<{ sum: string }>(
        `SELECT coalesce(sum(hashtextextended(ROW(t.*)::text, 0)::numeric), 0)::text AS sum FROM ONLY ${table} t`,
      );
      out[table] = r.rows[0]!.sum;
    }
    return out;
  } finally {
    c.release();
  }
}

void test('a backup checksummed with the row-text scheme restores and verifies with that scheme', { timeout: 3 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const db = await scratchDatabase(t);
  await seedKinds(db);
  const cwd = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: db.url })), backupEnv());
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const old = await rowTextChecksums(db, ['public.kinds', 'public.notes']);
  // The backup as an older dbflow recorded it: the scheme's name and its checksums.
  const asOld = (m: Manifest, sums: Record<string, string>): void => {
    m.databases.app!.position.checksum = ROW_TEXT_SCHEME;
    for (const [table, count] of Object.entries(m.databases.app!.tables)) count.checksum = sums[table];
  };
  copyBackup(path.join(cwd, 'backups', r.runId), path.join(cwd, 'backups', 'old', r.runId), (m) => asOld(m, old));
  const restore = async (from: string) => {
    const target = await scratchDatabase(t);
    return dbflow(['restore', `file://./backups/${from}`, '--to', target.url], { cwd, env: { DBFLOW_PASSPHRASE: PASSPHRASE } });
  };
  const restored = await restore(`old/${r.runId}`);
  assert.equal(restored.exitCode, 0, `${restored.stdout}\n${restored.stderr}`);
  assert.match(restored.stdout, /✔ 2 tables, 6 rows equal to the backup's counts and checksums\n$/);

  // Recounted with the recorded scheme, not the current one: the current scheme's numbers under the old name differ.
  const current = Object.fromEntries(Object.entries(readManifest(cwd, r.runId).databases.app!.tables).map(([k, c]) => [k, c.checksum!]));
  copyBackup(path.join(cwd, 'backups', r.runId), path.join(cwd, 'backups', 'mixed', r.runId), (m) => asOld(m, current));
  const mixed = await restore(`mixed/${r.runId}`);
  assert.equal(mixed.exitCode, 1, mixed.stdout);
  assert.match(
    mixed.stderr,
    /differs from the backup's counts: public\.kinds: backup 2, restored 2 \(checksum differs\); public\.notes: backup 4, restored 4 \(checksum differs\)/,
  );
});
