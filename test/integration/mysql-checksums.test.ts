// MariaDB content checksums against a real server: every kind of column counts, a changed restore fails
// rowcount-check, and a backup checksummed with the older MD5 scheme still verifies on restore.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import type { Manifest, TableCounts } from '../../src/index.js';
import { CRC32C_SCHEME, CRC_SCHEME, MD5_SCHEME } from '../../plugins/mysql/checksum.js';
import { PASSPHRASE, readManifest, runBackup, writePipeline, type BackupRun } from '../helpers/backup-run.js';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { requireMyBackupTools, scratchDatabase, type ScratchDatabase } from '../helpers/mysql.js';
import { myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';
import { copyBackup } from '../helpers/repo.js';
import { checksummedCounts } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;
const TAMPERING = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'tampering-drivers.ts');

const countsAt = (url: string, checksum?: string): Promise<TableCounts> => checksummedCounts('mysql', url, checksum);

// Column, type, value, and another value.
const KINDS: [string, string, string, string][] = [
  ['i', 'int', '1', '2'],
  ['u', 'bigint unsigned', '18446744073709551615', '18446744073709551614'],
  ['amount', 'decimal(20,10)', '1.5', '1.5000000001'],
  ['f', 'float', '1.5', '2.5'],
  ['dbl', 'double', '0.1', '0.10000000000000002'],
  ['vc', 'varchar(20)', "'a'", "'a '"],
  ['l1', 'varchar(20) CHARACTER SET latin1', "'é'", "'e'"],
  ['ch', 'char(5)', "'a'", "'b'"],
  ['tx', 'text', "'☃'", "'😀'"],
  ['bl', 'blob', "X'00'", "X'0000'"],
  ['vb', 'varbinary(8)', "X'01'", "X'02'"],
  ['bn', 'binary(4)', "X'01'", "X'02'"],
  ['d', 'date', "'2024-01-01'", "'2024-01-02'"],
  ['dt', 'datetime(6)', "'2024-01-01 00:00:00'", "'2024-01-01 00:00:00.000001'"],
  ['ts', 'timestamp(3) NULL', "'2024-01-01 00:00:00'", "'2024-01-01 00:00:01'"],
  ['tm', 'time', "'10:00:00'", "'-10:00:00'"],
  ['y', 'year', '2000', '2001'],
  ['bt', 'bit(8)', "b'1010'", "b'1011'"],
  ['e', "enum('x','y')", "'x'", "'y'"],
  ['st', "set('x','y')", "'x'", "'x,y'"],
  ['j', 'json', `'{"a": 1}'`, `'{"a":1}'`],
  ['g', 'point', 'POINT(1, 2)', 'POINT(1, 3)'],
  ['uu', 'uuid', "'00000000-0000-0000-0000-000000000001'", "'00000000-0000-0000-0000-000000000002'"],
  ['ip', 'inet6', "'::1'", "'::2'"],
];

// `kinds` with one column of each kind (two rows: the values, and NULLs), and `notes` with NULL, '' and 'NULL'.
async function seedKinds(db: ScratchDatabase): Promise<void> {
  await db.pool.query(`CREATE TABLE kinds (id int PRIMARY KEY, ${KINDS.map(([c, type]) => `${c} ${type}`).join(', ')}) ENGINE=InnoDB`);
  await db.pool.query(`INSERT INTO kinds VALUES (1, ${KINDS.map(([, , v]) => v).join(', ')})`);
  await db.pool.query('INSERT INTO kinds (id) VALUES (2)');
  await db.pool.query('CREATE TABLE notes (id int PRIMARY KEY, body text) ENGINE=InnoDB');
  await db.pool.query("INSERT INTO notes VALUES (1, NULL), (2, ''), (3, 'NULL'), (4, 'x')");
}

void test(
  'every kind of column counts in the checksum: changing any one value changes it, the count stays',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t))) return;
    const db = await scratchDatabase(t);
    await seedKinds(db);
    const before = await countsAt(db.url);
    assert.equal(before.kinds?.rows, 2);
    assert.match(String(before.kinds?.checksum), /^\d+$/);
    const changed: string[] = [];
    // Row 1 holds a value in every column, row 2 only NULLs: each is changed in one column at a time, then set back.
    for (const [column, , value, other] of KINDS) {
      for (const [id, to, back] of [
        [1, other, value],
        [2, value, 'NULL'],
      ] as const) {
        await db.pool.query(`UPDATE kinds SET ${column} = ${to} WHERE id = ${id}`);
        const after = (await countsAt(db.url)).kinds!;
        assert.equal(after.rows, 2);
        if (after.checksum === before.kinds.checksum) changed.push(`${column} of row ${id}`);
        await db.pool.query(`UPDATE kinds SET ${column} = ${back} WHERE id = ${id}`);
      }
    }
    assert.deepEqual(changed, [], 'values whose change left the checksum as it was');
    assert.deepEqual(await countsAt(db.url), before, 'the same values give the same checksums');

    // The older schemes still compute (for older backups), and give other numbers.
    for (const scheme of [CRC_SCHEME, MD5_SCHEME]) {
      const old = await countsAt(db.url, scheme);
      assert.equal(old.kinds?.rows, 2);
      assert.notEqual(old.kinds?.checksum, before.kinds?.checksum, scheme);
    }
    await assert.rejects(
      countsAt(db.url, 'sum(crc64(row))'),
      /database "app": the backup's checksums were computed as "sum\(crc64\(row\)\)", a scheme this version of dbflow does not know/,
    );
  },
);

void test(
  'NULL, an empty string, the strings NULL and N, and where one column ends and the next begins, checksum apart',
  { timeout: MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t))) return;
    const db = await scratchDatabase(t);
    await db.pool.query('CREATE TABLE notes (a varchar(10), b varchar(10)) ENGINE=InnoDB');
    await db.pool.query("INSERT INTO notes VALUES ('x', NULL)");
    const sums = new Set<string>();
    const rows = [
      "'x', NULL",
      "'x', ''",
      "'x', 'NULL'",
      "'x', 'N'",
      "NULL, 'x'",
      "'', 'x'",
      "'ab', 'c'",
      "'a', 'bc'",
      "'abc', ''",
      "'', 'abc'",
    ];
    for (const row of rows) {
      const [a, b] = row.split(', ');
      await db.pool.query(`UPDATE notes SET a = ${a}, b = ${b}`);
      for (const scheme of [CRC32C_SCHEME, CRC_SCHEME, MD5_SCHEME])
        sums.add(`${scheme}: ${(await countsAt(db.url, scheme)).notes!.checksum}`);
    }
    assert.equal(sums.size, rows.length * 3, [...sums].join('\n'));
  },
);

// A backup of `db` whose restore-test runs `tamper` on the restored copy (nothing when undefined).
async function tamperedBackup(t: TestContext, db: ScratchDatabase, cwd: string, tamper?: string): Promise<BackupRun> {
  const yaml = myBackupPipeline({ url: db.url })
    .replace('databases:', `plugins: ${JSON.stringify([TAMPERING])}\ndatabases:`)
    .replace('"driver":"mysql"', '"driver":"mysql-tampered"');
  const r = await runBackup(cwd, writePipeline(cwd, yaml), { ...myBackupEnv(), ...(tamper && { DBFLOW_TEST_TAMPER_SQL: tamper }) });
  t.diagnostic(`${tamper ?? 'untouched'}: exit ${r.exitCode}`);
  return r;
}

void test(
  'rowcount-check fails a restore with one value changed (count equal), NULL turned into an empty string, or values swapped between rows',
  { timeout: 4 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const db = await scratchDatabase(t);
    await seedKinds(db);
    await db.pool.query(
      "INSERT INTO kinds (id, amount, j, dt) SELECT seq, seq, JSON_OBJECT('i', seq), '2024-01-01' + INTERVAL seq HOUR FROM seq_3_to_500",
    );
    const cwd = tmpDir(t);
    const ok = await tamperedBackup(t, db, cwd);
    assert.equal(ok.exitCode, 0, `${ok.stdout}\n${ok.stderr}`);
    const m = readManifest(cwd, ok.runId);
    assert.equal(m.status, 'verified');
    assert.equal(m.databases.app!.position.checksum, CRC32C_SCHEME, 'MariaDB 10.8 and later: the CRC32C scheme');
    assert.match(m.verification.find((v) => v.check === 'rowcount')?.detail ?? '', /^2 tables, 504 rows equal$/);

    const tampers: [string, string][] = [
      ['a decimal', 'UPDATE kinds SET amount = amount + 1 WHERE id = 7'],
      ['a JSON value', `UPDATE kinds SET j = '{"i": 8}' WHERE id = 7`],
      ['NULL to an empty string', "UPDATE notes SET body = '' WHERE body IS NULL"],
      ['values swapped between rows', "UPDATE kinds SET dt = IF(id = 7, '2024-01-01 08:00:00', '2024-01-01 07:00:00') WHERE id IN (7, 8)"],
    ];
    for (const [what, sql] of tampers) {
      const r = await tamperedBackup(t, db, cwd, sql);
      assert.equal(r.exitCode, 1, `${what}: the run fails\n${r.stdout}\n${r.stderr}`);
      const table = sql.includes('notes') ? 'notes: snapshot 4, restored 4' : 'kinds: snapshot 500, restored 500';
      assert.ok(
        `${r.stdout}\n${r.stderr}`.includes(`restored "app" differs from its snapshot: ${table} (checksum differs)`),
        `${what}:\n${r.stdout}\n${r.stderr}`,
      );
    }
  },
);

// The checksums the first versions of dbflow recorded for `kinds` and `notes`: MD5 of hex-or-text, NULL as N.
async function md5Checksums(db: ScratchDatabase): Promise<Record<string, string>> {
  const value = (column: string, bytes: boolean): string => `IFNULL(${bytes ? `HEX(${column})` : `CAST(${column} AS CHAR)`}, 'N')`;
  const sum = (values: string[]): string =>
    `CAST(COALESCE(SUM(CAST(CONV(LEFT(MD5(CONCAT_WS('|', ${values.join(', ')})), 16), 16, 10) AS DECIMAL(20))), 0) AS CHAR)`;
  const bytes = /char|binary|blob|text|enum|set|json|geometry|point/i;
  const c = await db.pool.getConnection();
  try {
    await c.query("SET SESSION time_zone = '+00:00'");
    await c.query('SET NAMES utf8mb4 COLLATE utf8mb4_bin');
    const kinds = [value('id', false), ...KINDS.map(([column, type]) => value(column, bytes.test(type)))];
    const one = async (sql: string): Promise<string> => String(((await c.query<RowDataPacket[]>(sql))[0][0] as { s: string }).s);
    return {
      kinds: await one(`SELECT ${sum(kinds)} AS s FROM kinds`),
      notes: await one(`SELECT ${sum([value('id', false), value('body', true)])} AS s FROM notes`),
    };
  } finally {
    c.release();
  }
}

void test('a backup checksummed with the MD5 scheme restores and verifies with that scheme', { timeout: 3 * MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const db = await scratchDatabase(t);
  await seedKinds(db);
  const cwd = tmpDir(t);
  const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url })), myBackupEnv());
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const old = await md5Checksums(db);
  // The backup as an older dbflow recorded it: the scheme's name and its checksums.
  const asOld = (m: Manifest, sums: Record<string, string>): void => {
    m.databases.app!.position.checksum = MD5_SCHEME;
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
    /differs from the backup's counts: kinds: backup 2, restored 2 \(checksum differs\); notes: backup 4, restored 4 \(checksum differs\)/,
  );
});
