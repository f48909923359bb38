// A PostgreSQL password from a secret: it reaches the server and nothing else (no argv, no log, no manifest, no output).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { databasesStartingWith, requireBackupTools, throwawayPostgres, withClient, withDatabase } from '../helpers/postgres.js';
import { seedShop } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline } from '../helpers/postgres-run.js';
import { tmpDir } from '../helpers/tmp.js';
import { readManifest, runBackup, runIdOf, runRecordText, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { assertNoSecrets, runWatched } from '../helpers/program-watch.js';

const MINUTE = 60_000;

// Every file below `dir` that contains `needle` (as bytes).
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(dir, f);
    if (statSync(file).isFile() && readFileSync(file).includes(needle)) hits.push(f);
  }
  return hits;
}

// A database `app` with the shop in it on a throwaway password server, and that server.
async function passwordServer(t: Parameters<typeof throwawayPostgres>[0], rows: number) {
  // Characters a passfile or a connection string must escape.
  const password = `p@ss:w0rd \\ '${Math.random().toString(16).slice(2, 10)}' end`;
  const server = await throwawayPostgres(t, { password });
  if (!server) return undefined;
  await withClient(server.url, (c) => c.query('CREATE DATABASE app'), password);
  const app = withDatabase(server.url, 'app');
  await withClient(app, (c) => seedShop(c, { rows }), password);
  return { server, password, app };
}

void test(
  'the password never appears in argv, the run record, the manifest, the working folder or the output',
  { timeout: 2 * MINUTE },
  async (t) => {
    if (!(await requireBackupTools(t, 'zstd'))) return;
    const setup = await passwordServer(t, 20_000);
    if (!setup) return;
    const { server, password, app } = setup;
    const cwd = tmpDir(t);
    const file = writePipeline(cwd, backupPipeline({ url: app, password: true, throttleMs: 5 }));
    const done = await runWatched(['run', file], { cwd, env: backupEnv(password) });
    const output = `${done.stdout}\n${done.stderr}`;
    assert.equal(done.exitCode, 0, output);
    // No program the run starts holds the password (or a part of it) in its argv or environment.
    const core = password.slice(password.indexOf("'") + 1, password.lastIndexOf("'"));
    assertNoSecrets(done, { password, 'a part of the password': core }, ['pg_dump', 'zstd']);

    const runId = runIdOf(done.stdout);
    assert.equal(readManifest(cwd, runId).status, 'verified');
    assert.ok(!output.includes(core), 'the CLI output does not hold the password');
    for (const [name, text] of Object.entries(runRecordText(cwd, runId)))
      assert.ok(!text.includes(core), `.dbflow/runs/${runId}/${name} holds the password`);
    assert.deepEqual(filesContaining(cwd, core), [], 'no file in the working folder holds the password (manifest, logs, passfiles)');
    assert.deepEqual(await databasesStartingWith(verifyPrefix(runId), server.url, password), []);
  },
);

void test('a unix-socket URL with a password backs up and verifies', { timeout: 2 * MINUTE }, async (t) => {
  if (!(await requireBackupTools(t, 'zstd'))) return;
  const setup = await passwordServer(t, 1000);
  if (!setup) return;
  const { server, password } = setup;
  const cwd = tmpDir(t);
  const url = `postgres:///app?host=${encodeURIComponent(server.socketDir)}&port=${server.port}&user=postgres`;
  const r = await runBackup(cwd, writePipeline(cwd, backupPipeline({ url, password: true })), backupEnv(password));
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  const m = readManifest(cwd, r.runId);
  assert.equal(m.status, 'verified');
  assert.equal(m.databases.app!.tables['public.orders']?.rows, 1000);
  assert.deepEqual(await databasesStartingWith(verifyPrefix(r.runId), server.url, password), []);
});
