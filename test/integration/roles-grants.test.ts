// Roles and grants: the server's roles are an artifact of the backup (pg_dumpall --globals-only), a restore-test into a
// throwaway server replays them and restores the dump with its owners and privileges, and rowcount-check compares the
// restored owners, grants, default privileges and memberships with the source's, read inside the snapshot. A grant
// dropped from the restored copy fails the run, naming it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { MY_URL, requireMyBackupTools, scratchDatabase as scratchMyDatabase, withConnection } from '../helpers/mysql.js';
import { PG_URL, requireBackupTools, scratchDatabase, withClient } from '../helpers/postgres.js';
import { tmpDir } from '../helpers/tmp.js';

const PASSPHRASE = 'correct horse battery staple';
const TAMPERING = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'tampering-drivers.ts');

function pipeline(url: string, driver: string): string {
  return `version: 1
name: roles
${driver.endsWith('-tampered') ? `plugins: [${JSON.stringify(TAMPERING)}]\n` : ''}secrets:
  passphrase: { env: TEST_PASSPHRASE }
databases:
  app: { driver: ${driver}, url: "${url}" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: roles, uses: dump, with: { database: app, snapshot: snapshot, globals: true } }
  - { id: encrypt, uses: encrypt, input: dump, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.dump.pgp" } }
  - { id: roles_encrypt, uses: encrypt, input: roles, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: roles_upload, uses: upload, input: roles_encrypt, with: { to: "file://./backups/{{ run.id }}/app.globals.sql.pgp" } }
  - id: restore_test
    uses: restore-test
    with: { from: upload, globals: roles_upload, target: throwaway, passphrase: "{{ secrets.passphrase }}" }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

interface Manifest {
  status: string;
  artifacts: { path: string; format: string; globals?: boolean }[];
  verification: { check: string; ok: boolean; detail?: string }[];
}

function manifests(dir: string): Manifest[] {
  const root = path.join(dir, 'backups');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((r) => existsSync(path.join(root, r, 'manifest.json')))
    .map((r) => JSON.parse(readFileSync(path.join(root, r, 'manifest.json'), 'utf8')) as Manifest);
}

void test(
  'postgres: roles, memberships, default privileges and grants come back in a throwaway server and compare; a dropped grant fails',
  { timeout: 240_000 },
  async (t) => {
    if (!(await requireBackupTools(t))) return;
    const tag = randomBytes(3).toString('hex');
    const [owner, reader, readers] = [`dbflow_owner_${tag}`, `dbflow_reader_${tag}`, `dbflow_readers_${tag}`];
    const db = await scratchDatabase(t, PG_URL);
    await withClient(PG_URL, async (c) => {
      await c.query(`CREATE ROLE ${owner} NOLOGIN`);
      await c.query(`CREATE ROLE ${readers} NOLOGIN`);
      await c.query(`CREATE ROLE ${reader} LOGIN IN ROLE ${readers}`);
    });
    t.after(async () => {
      await withClient(PG_URL, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`);
        for (const r of [reader, readers, owner]) await c.query(`DROP ROLE IF EXISTS ${r}`);
      });
    });
    for (const q of [
      `CREATE SCHEMA sales AUTHORIZATION ${owner}`,
      `GRANT USAGE ON SCHEMA sales TO ${readers}`,
      'CREATE TABLE sales.orders (id int PRIMARY KEY, amount numeric NOT NULL)',
      `ALTER TABLE sales.orders OWNER TO ${owner}`,
      'INSERT INTO sales.orders SELECT g, g * 1.5 FROM generate_series(1, 500) g',
      `GRANT SELECT ON sales.orders TO ${readers}`,
      `GRANT INSERT, UPDATE ON sales.orders TO ${reader} WITH GRANT OPTION`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA sales GRANT SELECT ON TABLES TO ${reader}`,
      'CREATE SEQUENCE sales.numbers',
      `ALTER SEQUENCE sales.numbers OWNER TO ${owner}`,
      `GRANT USAGE ON SEQUENCE sales.numbers TO ${readers}`,
    ])
      await db.pool.query(q);

    const dir = tmpDir(t);
    const env = { TEST_PASSPHRASE: PASSPHRASE };
    writeFileSync(path.join(dir, 'p.yaml'), pipeline(db.url, 'postgres'));
    const ok = await dbflow(['run', 'p.yaml'], { cwd: dir, env });
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    const [m] = manifests(dir);
    assert.equal(m?.status, 'verified');
    const roles = m.artifacts.find((a) => a.globals);
    assert.deepEqual([roles?.format, roles?.path], ['pg_dumpall-globals', 'app.globals.sql.pgp']);
    const privileges = m.verification.find((v) => v.check === 'privileges');
    assert.equal(privileges?.ok, true, JSON.stringify(m.verification));
    // Every kind of fact was compared: owners, grants with and without grant option, default privileges, memberships.
    const facts = Number(/^(\d+) owners, grants, default privileges and memberships equal$/.exec(privileges.detail ?? '')?.[1]);
    assert.ok(facts >= 12, privileges.detail);
    // The stock commands replay the roles first (the server's own superuser "already exists" is expected).
    assert.match(
      ok.stdout,
      /restore without dbflow:\n\s+gpg --decrypt \S+app\.globals\.sql\.pgp \| psql -X -d postgres\n\s+gpg --decrypt \S+app\.dump\.pgp \| pg_restore/,
    );
    t.diagnostic(privileges.detail ?? '');
    // A plain `restore` of the backup takes the database's dump, not the roles.
    const backup = path.join(dir, 'backups', readdirSync(path.join(dir, 'backups'))[0]!);
    const list = await dbflow(['restore', `file://${backup}`, '--list'], { cwd: dir, env });
    assert.equal(list.exitCode, 0, list.stdout + list.stderr);
    assert.match(list.stdout, /app\.globals\.sql\.pgp/);

    // The same backup, with a grant dropped in the restored copy: the run fails naming the missing grant.
    writeFileSync(path.join(dir, 'p.yaml'), pipeline(db.url, 'postgres-tampered'));
    const tampered = await dbflow(['run', 'p.yaml'], {
      cwd: dir,
      env: { ...env, DBFLOW_TEST_TAMPER_SQL: `REVOKE SELECT ON sales.orders FROM ${readers}` },
    });
    assert.equal(tampered.exitCode, 1, tampered.stdout + tampered.stderr);
    assert.match(
      tampered.stdout + tampered.stderr,
      new RegExp(
        `restored "app" has other owners or privileges than its snapshot: missing from the restored copy: table sales\\.orders: SELECT to ${readers}`,
      ),
    );
    assert.equal(manifests(dir).length, 1, 'the failed run published no manifest');

    // An owner changed in the copy is named too (a fact only in the restored copy).
    const owned = await dbflow(['run', 'p.yaml'], {
      cwd: dir,
      env: { ...env, DBFLOW_TEST_TAMPER_SQL: `ALTER TABLE sales.orders OWNER TO ${reader}` },
    });
    assert.equal(owned.exitCode, 1, owned.stdout + owned.stderr);
    assert.match(owned.stdout + owned.stderr, new RegExp(`only in the restored copy: [^\\n]*table sales\\.orders owned by ${reader}`));
  },
);

void test(
  'mariadb: users, roles and grants on the database, its tables and columns come back in a throwaway server and compare; a dropped grant fails',
  { timeout: 240_000 },
  async (t) => {
    if (!(await requireMyBackupTools(t))) return;
    const tag = randomBytes(3).toString('hex');
    const [reader, readers] = [`dbflow_reader_${tag}`, `dbflow_readers_${tag}`];
    const db = await scratchMyDatabase(t, MY_URL);
    t.after(() =>
      withConnection(MY_URL, async (c) => {
        await c.query(`DROP USER IF EXISTS '${reader}'@'%'`);
        await c.query(`DROP ROLE IF EXISTS ${readers}`);
      }),
    );
    await withConnection(db.url, async (c) => {
      for (const q of [
        'CREATE TABLE orders (id int PRIMARY KEY, amount decimal(12,2) NOT NULL, note varchar(40))',
        'INSERT INTO orders SELECT seq, seq * 1.5, NULL FROM seq_1_to_500',
        `CREATE ROLE ${readers}`,
        `CREATE USER '${reader}'@'%'`,
        `GRANT SELECT ON \`${db.name}\`.orders TO ${readers}`,
        `GRANT ${readers} TO '${reader}'@'%' WITH ADMIN OPTION`,
        `GRANT INSERT, UPDATE ON \`${db.name}\`.* TO '${reader}'@'%'`,
        `GRANT UPDATE (note) ON \`${db.name}\`.orders TO '${reader}'@'%'`,
      ])
        await c.query(q);
    });

    const dir = tmpDir(t);
    const env = { TEST_PASSPHRASE: PASSPHRASE };
    writeFileSync(path.join(dir, 'p.yaml'), pipeline(db.url, 'mysql'));
    const ok = await dbflow(['run', 'p.yaml'], { cwd: dir, env });
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    const [m] = manifests(dir);
    assert.equal(m?.status, 'verified');
    assert.equal(m.artifacts.find((a) => a.globals)?.format, 'mariadb-dump-users');
    const privileges = m.verification.find((v) => v.check === 'privileges');
    assert.equal(privileges?.ok, true, JSON.stringify(m.verification));
    t.diagnostic(privileges.detail ?? '');
    // The database grant, the table grant, the column grant, the role granted (with admin option), both accounts.
    const facts = Number(/^(\d+) owners, grants, default privileges and memberships equal$/.exec(privileges.detail ?? '')?.[1]);
    assert.ok(facts >= 6, privileges.detail);
    assert.match(
      ok.stdout,
      /restore without dbflow:\n(?:.*\n)*\s+gpg --decrypt \S+app\.globals\.sql\.pgp \| mariadb {2}# after the database/,
    );

    // The table grant deleted from the restored copy's grant tables: the run fails naming it.
    writeFileSync(path.join(dir, 'p.yaml'), pipeline(db.url, 'mysql-tampered'));
    const tampered = await dbflow(['run', 'p.yaml'], {
      cwd: dir,
      env: { ...env, DBFLOW_TEST_TAMPER_SQL: `DELETE FROM mysql.tables_priv WHERE User = '${readers}' AND Table_name = 'orders'` },
    });
    assert.equal(tampered.exitCode, 1, tampered.stdout + tampered.stderr);
    assert.match(
      tampered.stdout + tampered.stderr,
      new RegExp(
        `restored "app" has other owners or privileges than its snapshot: missing from the restored copy: [^\\n]*table orders to '${readers}'@'': Select`,
      ),
    );
    assert.equal(manifests(dir).length, 1, 'the failed run published no manifest');
  },
);
