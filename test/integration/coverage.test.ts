// The coverage check: tables of a database that the entry's scope leaves out are reported (a warning and a record in
// the manifest), so a table created after the pipeline was written never goes unbacked-up silently; with
// coverage: strict the run fails naming it, while a table an exclusion names is left out on purpose.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { PG_URL, requireBackupTools, scratchDatabase, throwawayPostgres, withClient, withDatabase } from '../helpers/postgres.js';
import { tmpDir } from '../helpers/tmp.js';

function pipeline(url: string, options: string, coverage = 'warn'): string {
  return `version: 1
name: covered
databases:
  app: { driver: postgres, url: "${url}", options: ${options} }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app], coverage: ${coverage} } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: upload, uses: upload, input: dump, with: { to: "file://./backups/{{ run.id }}/app.dump" } }
  - { id: restore_test, uses: restore-test, with: { from: upload } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

function newestManifest(dir: string): { verification: { check: string; ok: boolean; detail?: string }[] } {
  const root = path.join(dir, 'backups');
  const runs = readdirSync(root)
    .filter((r) => existsSync(path.join(root, r, 'manifest.json')))
    .sort();
  return JSON.parse(readFileSync(path.join(root, runs.at(-1)!, 'manifest.json'), 'utf8')) as ReturnType<typeof newestManifest>;
}

void test(
  'coverage: a table outside the scope is reported, a new one too; strict fails naming it; an excluded one is on purpose',
  { timeout: 120_000 },
  async (t) => {
    if (!(await requireBackupTools(t))) return;
    const db = await scratchDatabase(t, PG_URL);
    await db.pool.query('CREATE TABLE orders (id int PRIMARY KEY)');
    await db.pool.query('CREATE TABLE refunds (id int PRIMARY KEY)');
    const dir = tmpDir(t);
    const run = async (yaml: string) => {
      writeFileSync(path.join(dir, 'p.yaml'), yaml);
      return dbflow(['run', 'p.yaml'], { cwd: dir });
    };

    const first = await run(pipeline(db.url, '{ tables: [public.orders] }'));
    assert.equal(first.exitCode, 0, first.stdout + first.stderr);
    assert.match(
      first.stdout + first.stderr,
      /database "app": 1 table of the database left out of the backup: "public\.refunds" \(not in options\.tables\)/,
    );
    const coverage = newestManifest(dir).verification.find((v) => v.check === 'coverage')!;
    assert.equal(coverage.ok, true);
    assert.match(coverage.detail!, /"public\.refunds" \(not in options\.tables\)/);

    // A table created after the pipeline was written.
    await db.pool.query('CREATE TABLE payouts (id int PRIMARY KEY)');
    const second = await run(pipeline(db.url, '{ tables: [public.orders] }'));
    assert.equal(second.exitCode, 0, second.stdout + second.stderr);
    assert.match(
      second.stdout + second.stderr,
      /2 tables of the database left out of the backup: "public\.payouts" \(not in options\.tables\), "public\.refunds"/,
    );

    const published = readdirSync(path.join(dir, 'backups')).length;
    const strict = await run(pipeline(db.url, '{ tables: [public.orders] }', 'strict'));
    assert.equal(strict.exitCode, 1, strict.stdout + strict.stderr);
    assert.match(strict.stdout + strict.stderr, /"public\.payouts" \(not in options\.tables\).*add them to the scope/s);
    assert.equal(
      readdirSync(path.join(dir, 'backups')).filter((r) => existsSync(path.join(dir, 'backups', r, 'manifest.json'))).length,
      published,
      'the strict run published nothing',
    );

    // Excluded by name: left out on purpose, so strict passes and says so in the manifest.
    const excluded = await run(pipeline(db.url, '{ exclude_tables: [public.refunds, public.payouts] }', 'strict'));
    assert.equal(excluded.exitCode, 0, excluded.stdout + excluded.stderr);
    assert.doesNotMatch(excluded.stdout + excluded.stderr, /warn.*left out/i);
    const onPurpose = newestManifest(dir).verification.find((v) => v.check === 'coverage')!;
    assert.equal(onPurpose.ok, true);
    assert.match(onPurpose.detail!, /"public\.payouts" \(excluded by options\.exclude_tables\)/);
  },
);

void test(
  'database coverage: a database on the server that no entry names is reported; strict fails naming it and publishes nothing',
  { timeout: 120_000 },
  async (t) => {
    if (!(await requireBackupTools(t))) return;
    // A server of its own: the shared one holds every other test's databases.
    const server = await throwawayPostgres(t);
    if (!server) return;
    await withClient(server.url, (c) => c.query('CREATE DATABASE app'), server.password);
    await withClient(withDatabase(server.url, 'app'), (c) => c.query('CREATE TABLE orders (id int PRIMARY KEY)'), server.password);
    const dir = tmpDir(t);
    const env = { PGPASSWORD: server.password };
    const run = async (mode: string) => {
      const yaml = pipeline(withDatabase(server.url, 'app'), '{}').replace(
        'coverage: warn }',
        `coverage: warn, database_coverage: ${mode} }`,
      );
      writeFileSync(path.join(dir, 'p.yaml'), yaml);
      return dbflow(['run', 'p.yaml'], { cwd: dir, env });
    };

    // Every database of the server is named (the maintenance database postgres is not counted): nothing is reported.
    const clean = await run('warn');
    assert.equal(clean.exitCode, 0, clean.stdout + clean.stderr);
    assert.doesNotMatch(clean.stdout + clean.stderr, /no entry of the pipeline names/);

    // A database created after the pipeline was written.
    await withClient(server.url, (c) => c.query('CREATE DATABASE billing'), server.password);
    const warned = await run('warn');
    assert.equal(warned.exitCode, 0, warned.stdout + warned.stderr);
    assert.match(warned.stdout + warned.stderr, /1 database on the server of "app" that no entry of the pipeline names: "billing"/);
    const record = newestManifest(dir).verification.find((v) => v.check === 'coverage' && v.detail?.includes('"billing"'));
    assert.equal(record?.ok, true);

    const published = readdirSync(path.join(dir, 'backups')).filter((r) =>
      existsSync(path.join(dir, 'backups', r, 'manifest.json')),
    ).length;
    const strict = await run('strict');
    assert.equal(strict.exitCode, 1, strict.stdout + strict.stderr);
    assert.match(strict.stdout + strict.stderr, /no entry of the pipeline names: "billing"; add it to databases:/);
    assert.equal(
      readdirSync(path.join(dir, 'backups')).filter((r) => existsSync(path.join(dir, 'backups', r, 'manifest.json'))).length,
      published,
      'the strict run published nothing',
    );
  },
);
