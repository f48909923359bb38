// Where a restore-test runs: `target: throwaway` (an empty server started from the installed binaries, removed after:
// no database and no restore on the source server) for PostgreSQL and MariaDB, and `target: <url>` (a dedicated
// restore server, which gets a scratch database of its own and not the source's password). Each records its restore time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RowDataPacket } from 'mysql2/promise';
import { execa } from 'execa';
import { dbflow, dbflowNodeArgs, escapeRegExp } from '../helpers/cli.js';
import {
  databasesStartingWith as myDatabasesStartingWith,
  MY_URL,
  requireMyBackupTools,
  scratchDatabase as scratchMyDatabase,
  withConnection,
} from '../helpers/mysql.js';
import {
  databasesStartingWith,
  PG_URL,
  requireBackupTools,
  scratchDatabase,
  serverBinDir,
  throwawayPostgres,
  withClient,
  withPassword,
} from '../helpers/postgres.js';
import { tmpDir } from '../helpers/tmp.js';

function pipeline(driver: string, url: string, target: string): string {
  return `version: 1
name: targeted
databases:
  app: { driver: ${driver}, url: "${url}" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: upload, uses: upload, input: dump, with: { to: "file://./backups/{{ run.id }}/app.dump" } }
  - { id: restore_test, uses: restore-test, with: { from: upload${target ? `, target: "${target}"` : ''} } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

function manifest(dir: string): { status: string; verification: { check: string; detail?: string; duration_ms?: number }[] } {
  const root = path.join(dir, 'backups');
  const run = readdirSync(root).find((r) => existsSync(path.join(root, r, 'manifest.json')))!;
  return JSON.parse(readFileSync(path.join(root, run, 'manifest.json'), 'utf8')) as ReturnType<typeof manifest>;
}

// A run with `target` (throwaway, or none: the default where the server binaries are installed, as here) in `dir`, the
// source server's scratch databases (`scratchOnSource`) watched throughout: it succeeds and makes none.
async function throwawayRun(dir: string, driver: string, url: string, target: string, scratchOnSource: () => Promise<string[]>) {
  const before = new Set(await scratchOnSource());
  writeFileSync(path.join(dir, 'p.yaml'), pipeline(driver, url, target));
  const run = dbflow(['run', 'p.yaml'], { cwd: dir });
  const seen = await watching(scratchOnSource, run);
  const r = await run;
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  // This run's scratch database would be named after its id (other tests make theirs on the same server meanwhile).
  const id = /\(run (\d{8}T\d{6}Z-[0-9a-f]+)\)/
    .exec(r.stdout + r.stderr)![1]!
    .toLowerCase()
    .replace('-', '_');
  assert.deepEqual(
    seen.filter((n) => !before.has(n) && n.includes(id)),
    [],
    'no scratch database was made on the source server',
  );
  return r;
}

// Polls `list` (the scratch databases on the source server) while `run` runs; resolves with every name seen.
async function watching(list: () => Promise<string[]>, run: Promise<unknown>): Promise<string[]> {
  const seen = new Set<string>();
  let done = false;
  void run.finally(() => (done = true));
  while (!done) {
    for (const n of await list()) seen.add(n);
    await sleep(50);
  }
  return [...seen];
}

void test(
  'postgres: without a target (throwaway, the default here) restores on a private server (nothing on the source); target <url> on a restore server',
  { timeout: 180_000 },
  async (t) => {
    if (!(await requireBackupTools(t))) return;
    const db = await scratchDatabase(t, PG_URL);
    await db.pool.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
    await db.pool.query("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 2000) g");
    // A scratch database, or a restore session (pg_restore's, on any database), on the source server.
    const scratchOnSource = async (): Promise<string[]> =>
      withClient(PG_URL, async (c) =>
        (
          await c.query<{ d: string }>(
            `SELECT datname AS d FROM pg_database WHERE datname LIKE 'dbflow_verify_%'
             UNION SELECT 'session ' || datname FROM pg_stat_activity WHERE application_name = 'dbflow pg_restore'`,
          )
        ).rows.map((r) => r.d),
      );
    const dir = tmpDir(t);
    const r = await throwawayRun(dir, 'postgres', db.url, '', scratchOnSource);
    assert.match(r.stdout + r.stderr, /restoring into a throwaway server on port \d+ \(not the production server\)/);
    const m = manifest(dir);
    assert.equal(m.status, 'verified');
    const restore = m.verification.find((v) => v.check === 'restore')!;
    assert.match(restore.detail!, /into a throwaway server/);
    assert.ok(restore.duration_ms! > 0);

    // A dedicated restore server: its own scratch database, and never the source's password.
    const server = await throwawayPostgres(t);
    if (!server) return;
    const other = tmpDir(t);
    const target = withPassword(server.url, server.password);
    writeFileSync(path.join(other, 'p.yaml'), pipeline('postgres', db.url, target));
    const onServer = await dbflow(['run', 'p.yaml'], { cwd: other });
    assert.equal(onServer.exitCode, 0, onServer.stdout + onServer.stderr);
    assert.match(manifest(other).verification.find((v) => v.check === 'restore')!.detail!, /into a restore server/);
    assert.match(onServer.stdout + onServer.stderr, /created scratch database dbflow_verify_/);
    assert.doesNotMatch(onServer.stdout + onServer.stderr, new RegExp(server.password));
  },
);

void test('mysql: target throwaway restores on a private MariaDB server, nothing on the source', { timeout: 180_000 }, async (t) => {
  if (!(await requireMyBackupTools(t))) return;
  const db = await scratchMyDatabase(t, MY_URL);
  await withConnection(db.url, async (c) => {
    await c.query('CREATE TABLE items (id int PRIMARY KEY, note varchar(40))');
    await c.query("INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_2000");
  });
  const scratchOnSource = async (): Promise<string[]> =>
    withConnection(MY_URL, async (c) =>
      (await c.query<RowDataPacket[]>("SHOW DATABASES LIKE 'dbflow\\_verify\\_%'"))[0].map((r) => String(Object.values(r)[0])),
    );
  const dir = tmpDir(t);
  await throwawayRun(dir, 'mysql', db.url, 'throwaway', scratchOnSource);
  const m = manifest(dir);
  assert.equal(m.status, 'verified');
  assert.match(m.verification.find((v) => v.check === 'restore')!.detail!, /into a throwaway server/);
});

// A run without `target` in `dir` on a machine without the server binaries (`missing`: why, as the log says it): it
// restored into a scratch database beside the source, said why, dropped it (`left` lists databases by name prefix),
// and its backup is verified.
async function assertScratchFallback(
  dir: string,
  exitCode: number,
  out: string,
  missing: string,
  left: (prefix: string) => Promise<string[]>,
): Promise<void> {
  assert.equal(exitCode, 0, out);
  assert.match(
    out,
    new RegExp(escapeRegExp(`restoring "app" into a scratch database on the source server: ${missing}; set target: scratch to say so`)),
  );
  const created = /created scratch database (dbflow_verify_\S+)/.exec(out)?.[1];
  assert.ok(created, out);
  assert.match(out, new RegExp(`dropped scratch database ${created}`));
  assert.deepEqual(await left(created), [], 'the scratch database is gone');
  const m = manifest(dir);
  assert.equal(m.status, 'verified');
  assert.match(m.verification.find((v) => v.check === 'restore')!.detail!, /into a scratch database/);
}

void test('mysql: without the server binaries, the default restores into a scratch database beside the source and says why', async (t) => {
  if (!(await requireMyBackupTools(t))) return;
  const db = await scratchMyDatabase(t, MY_URL);
  await withConnection(db.url, async (c) => {
    await c.query('CREATE TABLE items (id int PRIMARY KEY, note varchar(40))');
    await c.query("INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_500");
  });
  // A PATH that has every program of /usr/bin but mariadb-install-db: a machine with the clients and no server.
  const dir = tmpDir(t);
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  for (const name of readdirSync('/usr/bin'))
    if (name !== 'mariadb-install-db') symlinkSync(path.join('/usr/bin', name), path.join(bin, name));
  writeFileSync(path.join(dir, 'p.yaml'), pipeline('mysql', db.url, ''));
  const r = await dbflow(['run', 'p.yaml'], { cwd: dir, env: { PATH: `${bin}:/usr/sbin` } });
  await assertScratchFallback(
    dir,
    r.exitCode,
    r.stdout + r.stderr,
    'mariadbd and mariadb-install-db are not installed (install the MariaDB server (apt-get install mariadb-server))',
    (name) => myDatabasesStartingWith(name),
  );
});

void test('postgres: without the server binaries (a client-only install), the default restores into a scratch database beside the source and says why', async (t) => {
  if (!(await requireBackupTools(t))) return;
  const bin = await serverBinDir();
  // Hiding the server binaries of a package install takes a private mount namespace: root and unshare.
  const hiding = process.getuid?.() === 0 && bin !== undefined && spawnSync('unshare', ['-m', 'true']).status === 0;
  if (!hiding) {
    const message = 'hiding the PostgreSQL server binaries needs root and unshare (util-linux), and PostgreSQL server binaries to hide';
    if (process.env.CI === 'true') assert.fail(message);
    t.skip(message);
    return;
  }
  const db = await scratchDatabase(t, PG_URL);
  await db.pool.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
  await db.pool.query("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g");
  // The binaries folder as postgresql-client installs it: the clients, no initdb, pg_ctl or postgres. Copies, as it
  // is mounted over the folder the links would point into.
  const dir = tmpDir(t);
  const clients = path.join(dir, 'client-bin');
  mkdirSync(clients);
  for (const name of readdirSync(bin))
    if (!['initdb', 'pg_ctl', 'postgres', 'postmaster'].includes(name)) cpSync(path.join(bin, name), path.join(clients, name));
  writeFileSync(path.join(dir, 'p.yaml'), pipeline('postgres', db.url, ''));
  const r = await execa(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount --bind "$1" "$2" && shift 2 && exec "$@"',
      'sh',
      clients,
      bin,
      process.execPath,
      ...dbflowNodeArgs(['run', 'p.yaml']),
    ],
    { cwd: dir, env: { NO_COLOR: '1', CI: 'true', DBFLOW_STATE_DIR: path.join(dir, '.dbflow') }, reject: false },
  );
  await assertScratchFallback(
    dir,
    r.exitCode ?? -1,
    `${r.stdout}${r.stderr}`,
    'initdb and pg_ctl are not installed (install the PostgreSQL server binaries (apt-get install postgresql))',
    (name) => databasesStartingWith(name),
  );
});
