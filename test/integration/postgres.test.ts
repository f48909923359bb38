// The postgres driver through the CLI, against a real server: consistency under a writer, stock-tools restores, formats.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import type { Manifest } from '../../src/index.js';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { databasesStartingWith, PG_URL, requireBackupTools, requireTools, scratchDatabase } from '../helpers/postgres.js';
import { countRows, seedShop, shopInvariants, startWriter } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline, stockRestore } from '../helpers/postgres-run.js';
import { tmpDir } from '../helpers/tmp.js';
import { PASSPHRASE, readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';

const MINUTE = 60_000;

type DatabaseEntry = Manifest['databases'][string];

// The manifest of a verified backup of `app`: its database entry, after the checks every run must pass.
function verifiedApp(m: Manifest, tables: readonly string[]): DatabaseEntry {
  assert.equal(m.status, 'verified');
  // The coverage check is there only when the scope leaves a table out (asserted where it does).
  const checks = m.verification.filter((v) => v.database === 'app' && v.check !== 'coverage').map((v) => [v.check, v.ok]);
  assert.deepEqual(
    checks.sort(),
    [
      ['restore', true],
      ['rowcount', true],
    ],
    JSON.stringify(m.verification),
  );
  assert.match(m.verification.find((v) => v.check === 'rowcount')!.detail ?? '', /rows equal/);
  const app = m.databases.app!;
  assert.equal(app.driver, 'postgres');
  assert.match(app.server_version, /^\d+(\.\d+)?/);
  assert.match(String(app.position.snapshot_id), /^[0-9A-F]+-[0-9A-F]+(-\d+)?$/);
  assert.match(String(app.position.lsn), /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.match(String(app.position.txid_snapshot), /^\d+:\d+:/);
  assert.deepEqual(Object.keys(app.tables).sort(), [...tables].sort(), 'the tables in scope, as schema.table, without sequences');
  for (const [key, count] of Object.entries(app.tables)) {
    assert.ok(Number.isInteger(count.rows) && count.rows >= 0, `${key}: rows`);
    assert.equal(typeof count.checksum, 'string', `${key}: a checksum (checksums default to on)`);
  }
  assert.equal(m.artifacts.length, 1);
  return app;
}

// Row counts of the manifest, by table.
const rowsOf = (app: DatabaseEntry): Record<string, number> => Object.fromEntries(Object.entries(app.tables).map(([k, c]) => [k, c.rows]));

// The artifact file of a backup in `cwd`.
const artifactOf = (cwd: string, m: Manifest): string => path.join(cwd, 'backups', m.run.id, m.artifacts[0]!.path);

void test(
  'three backups under a concurrent writer each restore to exactly the counts taken inside the snapshot',
  { timeout: 5 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd', 'gpg'))) return;
    const db = await scratchDatabase(t);
    const shop = await seedShop(db.pool, { rows: 20_000 });
    const cwd = tmpDir(t);
    const file = writePipeline(cwd, backupPipeline({ url: db.url }));
    const writer = await startWriter(t, db.url, { customers: shop.customers });
    await writer.committed(20);

    const movedOn: string[] = [];
    const restores: Promise<Error | undefined>[] = [];
    let previous: Record<string, number> | undefined;
    for (let run = 1; run <= 3; run++) {
      const before = writer.commits();
      const r = await runBackup(cwd, file, backupEnv());
      assert.equal(r.exitCode, 0, `run ${run}:\n${r.stdout}\n${r.stderr}`);
      assert.ok(writer.commits() > before, `run ${run}: the writer committed during the run (${before} → ${writer.commits()})`);
      const app = verifiedApp(readManifest(cwd, r.runId), shop.tables);
      const snapshot = rowsOf(app);
      if (previous) assert.notDeepEqual(snapshot, previous, `run ${run}: the writer changed the counts between snapshots`);
      previous = snapshot;
      assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), [], `run ${run}: restore-test dropped its scratch database`);

      // Counted outside the snapshot, while the writer goes on, the same tables disagree with it.
      await writer.committed(writer.commits() + 10);
      const live = await countRows(db.pool, shop.tables);
      if (shop.tables.some((k) => live[k] !== snapshot[k]))
        movedOn.push(`run ${run}: live ${JSON.stringify(live)} vs snapshot ${JSON.stringify(snapshot)}`);

      // The stored artifact, restored with stock tools (while the next run goes), holds exactly the snapshot's rows, and a consistent cut of them.
      const artifact = artifactOf(cwd, readManifest(cwd, r.runId));
      restores.push(
        (async () => {
          const target = await scratchDatabase(t);
          await stockRestore(artifact, target.url, tmpDir(t));
          assert.deepEqual(await countRows(target.pool, shop.tables), snapshot, `run ${run}: restored counts`);
          const inv = await shopInvariants(target.pool, shop.customers);
          assert.equal(inv.balanceTotal, inv.expectedTotal, `run ${run}: transfers are whole in the backup`);
          assert.equal(inv.badOrders, 0, `run ${run}: every order has all of its items in the backup`);
        })().then(
          () => undefined,
          (err: unknown) => err as Error,
        ),
      );
    }
    for (const failure of await Promise.all(restores)) if (failure !== undefined) throw failure;
    assert.ok(movedOn.length > 0, 'counts outside the snapshot differ from it in at least one run: the check can fail');
    assert.ok((await writer.stop()) > 0);
  },
);

void test(
  'the artifact restores with gpg, zstd and pg_restore alone, to the counts in the manifest',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd', 'gpg'))) return;
    const db = await scratchDatabase(t);
    const shop = await seedShop(db.pool, { rows: 3000 });
    const cwd = tmpDir(t);
    const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: db.url })), backupEnv());
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /pg_restore/, 'the summary shows the stock restore command');
    const m = readManifest(cwd, r.runId);
    const app = verifiedApp(m, shop.tables);
    assert.deepEqual(rowsOf(app), await countRows(db.pool, shop.tables), 'without a writer the snapshot counts are the live counts');
    assert.equal(m.artifacts[0]!.format, 'pg_dump-custom');
    assert.deepEqual(
      m.artifacts[0]!.layers.map((l) => l.codec),
      ['zstd', 'openpgp'],
    );

    // Step by step, as an operator would: the decoded stream is a pg_dump custom-format archive.
    const artifact = artifactOf(cwd, m);
    const work = tmpDir(t);
    const decoded = 'gpg --batch --quiet --homedir "$W" --pinentry-mode loopback --passphrase "$P" --decrypt "$A" | zstd -d -q | head -c 5';
    const { stdout: magic } = await execa('bash', ['-c', decoded], { env: { W: work, P: PASSPHRASE, A: artifact } });
    assert.equal(magic, 'PGDMP');

    const target = await scratchDatabase(t);
    await stockRestore(artifact, target.url, tmpDir(t));
    assert.deepEqual(await countRows(target.pool, shop.tables), rowsOf(app));
    const { rows } = await target.pool.query<{ n: string }>('SELECT count(*) AS n FROM orders o JOIN customers c ON c.id = o.customer_id');
    assert.equal(Number(rows[0]!.n), shop.orders, 'foreign keys restored with their rows');
  },
);

void test(
  'awkward names, special values and odd session defaults of the source database still verify',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd', 'gpg'))) return;
    const db = await scratchDatabase(t);
    const shop = await seedShop(db.pool, { rows: 500, edgeCases: true });
    const cwd = tmpDir(t);
    const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: db.url })), backupEnv());
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const app = verifiedApp(readManifest(cwd, r.runId), shop.tables);
    assert.equal(app.tables['public.empty_table']?.rows, 0);
    assert.equal(app.tables['public.Mixed Case Table']?.rows, 42);
    assert.equal(app.tables['public.odd_values']?.rows, 5);
    assert.equal((app.tables['audit.metrics_2024']?.rows ?? 0) + (app.tables['audit.metrics_2025']?.rows ?? 0), 400);
    assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), []);
  },
);

void test('schema and table filters: only what is in scope is counted, dumped and restored', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd', 'gpg'))) return;
  const db = await scratchDatabase(t);
  await seedShop(db.pool, { rows: 1000 });
  const cwd = tmpDir(t);
  const options = { schemas: ['public'], exclude_tables: ['public.order_items'] };
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url: db.url, options })), backupEnv());
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const m = readManifest(cwd, r.runId);
  const app = verifiedApp(m, ['public.customers', 'public.orders']);
  // What the scope leaves out is reported: the other schema's table, and the excluded one (on purpose).
  const coverage = m.verification.find((v) => v.check === 'coverage');
  assert.equal(coverage?.ok, true);
  assert.match(
    coverage.detail ?? '',
    /"audit\.events" \(not in options\.schemas\), "public\.order_items" \(excluded by options\.exclude_tables\)/,
  );
  const target = await scratchDatabase(t);
  await stockRestore(artifactOf(cwd, m), target.url, tmpDir(t));
  const { rows } = await target.pool.query<{ t: string }>(
    "SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
  );
  assert.deepEqual(
    rows.map((x) => x.t),
    ['public.customers', 'public.orders'],
  );
  assert.deepEqual(await countRows(target.pool, ['public.customers', 'public.orders']), rowsOf(app));
});

void test('directory format with jobs: 2 verifies, and its tar restores with stock tools', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd', 'gpg')) || !(await requireTools(t, 'tar'))) return;
  const db = await scratchDatabase(t);
  const shop = await seedShop(db.pool, { rows: 5000 });
  const cwd = tmpDir(t);
  const url = `${db.url}?sslmode=disable`;
  const yaml = backupPipeline({ url, options: { format: 'directory', jobs: 2 }, artifact: 'app.dump.tar.zst.pgp' });
  const r = await runBackup(cwd, writePipeline(cwd, yaml), backupEnv());
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const m = readManifest(cwd, r.runId);
  const app = verifiedApp(m, shop.tables);
  assert.equal(m.artifacts[0]!.format, 'pg_dump-directory-tar');
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), []);
  const target = await scratchDatabase(t);
  await stockRestore(artifactOf(cwd, m), target.url, tmpDir(t), { directory: true });
  assert.deepEqual(await countRows(target.pool, shop.tables), rowsOf(app));
});

void test('pipelines/postgres-nightly.yaml validates', { timeout: MINUTE }, async (t) => {
  const file = path.join(repoRoot, 'pipelines', 'postgres-nightly.yaml');
  if (!existsSync(file)) {
    const message = 'pipelines/postgres-nightly.yaml does not exist yet';
    if (process.env.CI === 'true') assert.fail(message);
    return void t.skip(message);
  }
  const text = readFileSync(file, 'utf8');
  // Every environment variable it reads (templates and secrets), set to something plausible.
  const names = new Set(
    [...text.matchAll(/\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g), ...text.matchAll(/\benv:\s*([A-Za-z_][A-Za-z0-9_]*)/g)].map(
      (m) => m[1]!,
    ),
  );
  const env = Object.fromEntries([...names].map((n) => [n, /URL/i.test(n) ? PG_URL : 'dbflow-validate-test-value']));
  const r = await dbflow(['validate', file], { cwd: tmpDir(t), env });
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
});
