// The mysql driver through the CLI, against real MariaDB servers: consistency under a writer, binlog positions, stock-tools restores.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { RowDataPacket } from 'mysql2';
import type { Manifest } from '../../src/index.js';
import { dbflow, repoRoot, spawnDbflow } from '../helpers/cli.js';
import {
  databasesStartingWith,
  MY_URL,
  requireMyBackupTools,
  scratchDatabase,
  throwawayMariadb,
  withConnection,
} from '../helpers/mysql.js';
import { countRows, seedShop, shopInvariants, startWriter } from '../helpers/mysql-data.js';
import { decryptArtifact, dumpHeaderPosition, myBackupEnv, myBackupPipeline, stockRestore } from '../helpers/mysql-run.js';

import { bytesReadByThreads } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';
import { readManifest, runBackup, runIdOf, verifyPrefix, writePipeline } from '../helpers/backup-run.js';

const MINUTE = 60_000;

type DatabaseEntry = Manifest['databases'][string];

// The manifest of a verified backup of `app`: its database entry, after the checks every run must pass.
function verifiedApp(m: Manifest, tables: readonly string[]): DatabaseEntry {
  assert.equal(m.status, 'verified');
  const checks = m.verification.filter((v) => v.database === 'app').map((v) => [v.check, v.ok]);
  assert.deepEqual(
    checks.sort(),
    [
      ['restore', true],
      ['rowcount', true],
    ],
    JSON.stringify(m.verification),
  );
  const app = m.databases.app!;
  assert.equal(app.driver, 'mysql');
  assert.match(app.server_version, /MariaDB/);
  assert.equal(app.position.barrier, 'BACKUP STAGE BLOCK_COMMIT');
  assert.equal(typeof app.position.barrier_ms, 'number');
  assert.deepEqual(Object.keys(app.tables).sort(), [...tables].sort(), 'the base tables, without views');
  for (const [key, count] of Object.entries(app.tables)) {
    assert.ok(Number.isInteger(count.rows) && count.rows >= 0, `${key}: rows`);
    assert.match(String(count.checksum), /^\d+$/, `${key}: a checksum (checksums default to on)`);
  }
  assert.equal(m.artifacts.length, 1);
  assert.equal(m.artifacts[0]!.format, 'mysql-sql');
  return app;
}

const rowsOf = (app: DatabaseEntry): Record<string, number> => Object.fromEntries(Object.entries(app.tables).map(([k, c]) => [k, c.rows]));
const artifactOf = (cwd: string, m: Manifest): string => path.join(cwd, 'backups', m.run.id, m.artifacts[0]!.path);

void test(
  'three backups under a concurrent writer restore to exactly the snapshot, at the binlog position taken under the barrier',
  { timeout: 3 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd', 'gpg'))) return;
    const server = await throwawayMariadb(t);
    if (!server) return;
    const db = await scratchDatabase(t, server.url);
    const shop = await seedShop(db.pool, { rows: 5000 });
    const cwd = tmpDir(t);
    const file = writePipeline(cwd, myBackupPipeline({ url: db.url }));
    const writer = await startWriter(t, db.url, { customers: shop.customers, maxMs: 120_000 });
    await writer.committed(20);

    const movedOn: string[] = [];
    const barriers: number[] = [];
    let previous: Record<string, number> | undefined;
    for (let run = 1; run <= 3; run++) {
      const before = writer.commits();
      const r = await runBackup(cwd, file, myBackupEnv());
      assert.equal(r.exitCode, 0, `run ${run}:\n${r.stdout}\n${r.stderr}`);
      assert.ok(writer.commits() > before, `run ${run}: the writer committed during the run (${before} → ${writer.commits()})`);
      const m = readManifest(cwd, r.runId);
      const app = verifiedApp(m, shop.tables);
      const pos = app.position;
      assert.equal(pos.binlog, 'on');
      assert.match(String(pos.file), /^binlog\.\d+$/);
      assert.ok(Number.isInteger(pos.position), 'a binlog offset');
      assert.match(String(pos.gtid), /^\d+-\d+-\d+$/);
      assert.equal(pos.dump_position, `${String(pos.file)}:${Number(pos.position)}`, "the dump's own position is the barrier's");
      barriers.push(Number(pos.barrier_ms));
      const snapshot = rowsOf(app);
      if (previous) assert.notDeepEqual(snapshot, previous, `run ${run}: the writer changed the counts between snapshots`);
      previous = snapshot;
      assert.deepEqual(
        await databasesStartingWith(verifyPrefix(r.runId), server.url),
        [],
        `run ${run}: restore-test dropped its scratch database`,
      );

      // Counted outside the snapshot, while the writer goes on, the same tables disagree with it.
      await writer.committed(writer.commits() + 10);
      const live = await countRows(db.pool, shop.tables);
      if (shop.tables.some((k) => live[k] !== snapshot[k])) movedOn.push(`run ${run}`);

      // What was stored, read with stock tools: its header has the barrier's position, and it restores to exactly the snapshot's rows.
      const artifact = artifactOf(cwd, m);
      const work = tmpDir(t);
      const sql = await decryptArtifact(artifact, work);
      assert.equal(dumpHeaderPosition(sql), pos.dump_position, `run ${run}: the stored dump's CHANGE MASTER position`);
      // A restore of it takes no LOCK TABLES … WRITE, which would hold up every backup of the server it is restored on.
      assert.doesNotMatch(sql, /^LOCK TABLES/m, `run ${run}: the dump takes no table locks`);
      const target = await scratchDatabase(t, server.url);
      await stockRestore(artifact, target.url, work);
      assert.deepEqual(await countRows(target.pool, shop.tables), snapshot, `run ${run}: the stock-tools restore has the snapshot's rows`);
      const inv = await shopInvariants(target.pool, shop.customers);
      assert.equal(inv.balanceTotal, inv.expectedTotal, `run ${run}: no transfer is half in the backup`);
      assert.equal(inv.badOrders, 0, `run ${run}: every order has all its items`);
    }
    await writer.stop();
    assert.ok(movedOn.length >= 1, 'counted outside the snapshot, the tables differ from it at least once');
    t.diagnostic(`commit barrier held ${barriers.join(', ')} ms`);
    for (const ms of barriers) assert.ok(ms < 2000, `the barrier stays in milliseconds (${ms} ms)`);
  },
);

void test(
  'awkward tables and values, a trigger, a function, an event and a view; binlog off is recorded; MyISAM is warned about',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd', 'gpg'))) return;
    const db = await scratchDatabase(t);
    const shop = await seedShop(db.pool, { rows: 300, edgeCases: true });
    await db.pool.query(
      "CREATE TABLE legacy (id int PRIMARY KEY, note varchar(20)) ENGINE=MyISAM; INSERT INTO legacy VALUES (1, 'a'), (2, NULL)",
    );
    const tables = [...shop.tables, 'legacy'];
    const binlog = await withConnection(MY_URL, async (c) => {
      const [rows] = await c.query<RowDataPacket[]>('SELECT @@log_bin AS on_');
      return Number(rows[0]!.on_) === 1;
    });
    const cwd = tmpDir(t);
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url })), myBackupEnv());
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const m = readManifest(cwd, r.runId);
    const app = verifiedApp(m, tables);
    assert.equal(app.position.binlog, binlog ? 'on' : 'off');
    assert.deepEqual(app.position.non_transactional, ['legacy']);
    const log = readFileSync(path.join(cwd, '.dbflow', 'runs', r.runId, 'logs', 'snapshot.log'), 'utf8');
    assert.match(log, /legacy \(MyISAM\) is not transactional/);
    assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), []);

    const target = await scratchDatabase(t);
    await stockRestore(artifactOf(cwd, m), target.url, tmpDir(t));
    assert.deepEqual(await countRows(target.pool, tables), rowsOf(app));
    const [routines] = await target.pool.query<RowDataPacket[]>(
      `SELECT (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()) AS fns,
            (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()) AS triggers,
            (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()) AS events,
            (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()) AS views`,
    );
    assert.deepEqual({ ...routines[0] }, { fns: '1', triggers: '1', events: '1', views: '1' });
    const [[odd]] = await target.pool.query<RowDataPacket[]>('SELECT HEX(b) AS b, u, HEX(bits) AS bits FROM odd_values WHERE id = 2');
    assert.deepEqual({ ...odd }, { b: '0000000000', u: '18446744073709551615', bits: '3FF' });
  },
);

void test(
  'a dump step that starts 3 s after the snapshot (a step in between): the dump waits for it, spooled, and the stored dump is whole',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd', 'gpg'))) return;
    const db = await scratchDatabase(t);
    const shop = await seedShop(db.pool, { rows: 20000 });
    const cwd = tmpDir(t);
    const pause = { id: 'pause', uses: 'my-sql', with: { url: db.url, sql: 'SELECT SLEEP(3)', report: path.join(cwd, 'pause.json') } };
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: db.url, between: [pause] })), myBackupEnv());
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const m = readManifest(cwd, r.runId);
    const app = verifiedApp(m, shop.tables);
    const work = tmpDir(t);
    const artifact = path.join(cwd, 'backups', r.runId, 'app.sql.zst.pgp');
    const sql = await decryptArtifact(artifact, work);
    assert.equal(Buffer.byteLength(sql), m.artifacts[0]!.raw?.bytes, 'the stored dump has every byte counted');
    assert.match(sql.slice(0, 400), /^\/\*M!999999\\- enable the sandbox mode \*\/|^-- MariaDB dump/m, 'it starts at the beginning');
    const target = await scratchDatabase(t);
    await stockRestore(artifact, target.url, work);
    assert.deepEqual(await countRows(target.pool, shop.tables), rowsOf(app), "the stock-tools restore has the snapshot's rows");
  },
);

void test(
  'the bytes of the dump do not pass through dbflow: it reads less than the dump (zstd reads mariadb-dump, relays carry its connection)',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    if (!existsSync('/proc/self/io')) return void t.skip('needs /proc/<pid>/io (Linux)');
    const db = await scratchDatabase(t);
    await db.pool.query('CREATE TABLE wide (id INT PRIMARY KEY, body VARCHAR(300) NOT NULL) ENGINE=InnoDB');
    await db.pool.query('INSERT INTO wide SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_250000');
    const cwd = tmpDir(t);
    const sub = spawnDbflow(['run', writePipeline(cwd, myBackupPipeline({ url: db.url }))], { cwd, env: myBackupEnv() });
    let read = 0;
    const watching = (async () => {
      while (sub.exitCode === null) {
        read = bytesReadByThreads(sub.pid!) ?? read;
        await sleep(20);
      }
    })();
    const r = await sub;
    await watching;
    assert.equal(r.exitCode, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
    const m = readManifest(cwd, runIdOf(String(r.stdout)));
    const dump = m.artifacts[0]!.raw!.bytes;
    assert.ok(dump > 60e6, `a dump big enough to tell (${dump} bytes)`);
    // Through Node, the server's answers alone would be more than the dump; what dbflow reads is its modules,
    // the compressed stream it encrypts and stores, and the stored object its restore-test reads back.
    assert.ok(read < dump / 2, `dbflow read ${read} bytes for a ${dump}-byte dump`);
    t.diagnostic(`dbflow read ${(read / 1e6).toFixed(1)} MB for a ${(dump / 1e6).toFixed(1)} MB dump`);
  },
);

void test('pipelines/mysql-nightly.yaml validates', { timeout: MINUTE }, async (t) => {
  const file = path.join(repoRoot, 'pipelines', 'mysql-nightly.yaml');
  assert.ok(existsSync(file), 'pipelines/mysql-nightly.yaml exists');
  const text = readFileSync(file, 'utf8');
  const names = new Set(
    [...text.matchAll(/\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g), ...text.matchAll(/\benv:\s*([A-Za-z_][A-Za-z0-9_]*)/g)].map(
      (m) => m[1]!,
    ),
  );
  const env = Object.fromEntries([...names].map((n) => [n, /URL/i.test(n) ? `${MY_URL}app` : 'dbflow-validate-test-value']));
  const r = await dbflow(['validate', file], { cwd: tmpDir(t), env });
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
});
