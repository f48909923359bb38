// The mysql driver's connections through the CLI: a unix socket, and TLS with a verified server certificate.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import type { Manifest } from '../../src/index.js';
import { databasesStartingWith, requireMyBackupTools, scratchDatabase, throwawayMariadb, throwawayUser } from '../helpers/mysql.js';
import { seedShop } from '../helpers/mysql-data.js';
import { myBackupEnv, myBackupPipeline } from '../helpers/mysql-run.js';

import { tmpDir } from '../helpers/tmp.js';
import { readManifest, runBackup, verifyPrefix, writePipeline } from '../helpers/backup-run.js';

const MINUTE = 60_000;

// A verified backup of `app` with exactly `tables`.
function verifiedApp(m: Manifest, tables: readonly string[]): void {
  assert.equal(m.status, 'verified');
  assert.deepEqual(m.verification.map((v) => [v.check, v.ok]).sort(), [
    ['restore', true],
    ['rowcount', true],
  ]);
  assert.deepEqual(Object.keys(m.databases.app!.tables).sort(), [...tables].sort());
}

void test('over the unix socket (?socket=), as root without a password', { timeout: MINUTE }, async (t) => {
  if (!(await requireMyBackupTools(t, 'zstd'))) return;
  const socket = '/run/mysqld/mysqld.sock';
  if (process.getuid?.() !== 0 || !existsSync(socket) || process.env.DBFLOW_TEST_MYSQL_URL)
    return void t.skip(`needs root and the local server's socket ${socket}`);
  const db = await scratchDatabase(t);
  const shop = await seedShop(db.pool, { rows: 200 });
  const cwd = tmpDir(t);
  const url = `mysql://root@localhost/${db.name}?socket=${encodeURIComponent(socket)}`;
  const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url })), myBackupEnv());
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  verifiedApp(readManifest(cwd, r.runId), shop.tables);
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId)), []);
});

void test(
  'over TLS (ssl-mode=VERIFY_IDENTITY, ssl-ca) as a user that requires SSL; without TLS it is refused',
  { timeout: MINUTE },
  async (t) => {
    if (!(await requireMyBackupTools(t, 'zstd'))) return;
    const server = await throwawayMariadb(t, { tls: true });
    if (!server) return;
    const db = await scratchDatabase(t, server.url);
    const shop = await seedShop(db.pool, { rows: 200 });
    const { user, password } = await throwawayUser(t, server.url, { requireSsl: true });
    const url = new URL(db.url);
    url.username = user;
    url.searchParams.set('ssl-mode', 'VERIFY_IDENTITY');
    url.searchParams.set('ssl-ca', server.ca!);
    const cwd = tmpDir(t);
    const r = await runBackup(cwd, writePipeline(cwd, myBackupPipeline({ url: url.toString(), password: true })), myBackupEnv(password));
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    verifiedApp(readManifest(cwd, r.runId), shop.tables);
    assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId), server.url), []);

    // Without TLS the same user is refused.
    url.searchParams.set('ssl-mode', 'DISABLED');
    const plain = tmpDir(t);
    const refused = await runBackup(
      plain,
      writePipeline(plain, myBackupPipeline({ url: url.toString(), password: true })),
      myBackupEnv(password),
    );
    assert.equal(refused.exitCode, 1, refused.stdout);
    assert.match(refused.stdout + refused.stderr, /access denied/);
  },
);
