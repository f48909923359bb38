// A PostgreSQL password from a secret: it reaches the server and nothing else (no argv, no log, no manifest, no output).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { spawnDbflow } from '../helpers/cli.js';
import { databasesStartingWith, requireBackupTools, throwawayPostgres, withClient, withDatabase } from '../helpers/postgres.js';
import { seedShop } from '../helpers/postgres-data.js';
import { backupEnv, backupPipeline } from '../helpers/postgres-run.js';
import { tmpDir } from '../helpers/tmp.js';
import { readManifest, runBackup, runIdOf, runRecordText, verifyPrefix, writePipeline } from '../helpers/backup-run.js';
import { descendants, type ProcessInfo } from '../helpers/processes.js';

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
    const sub = spawnDbflow(['run', file], { cwd, env: backupEnv(password) });
    t.after(() => void sub.kill('SIGKILL'));

    // Every process below the CLI while it runs, as often as we can look.
    const seen = new Map<string, ProcessInfo>();
    let running = true;
    const sampling = (async () => {
      const deadline = Date.now() + 90_000;
      while (running && Date.now() < deadline) {
        for (const p of descendants(sub.pid!)) seen.set(`${p.pid} ${p.cmdline}`, p);
        await sleep(5);
      }
    })();
    const done = await sub.finally(() => (running = false));
    await sampling;
    const output = `${String(done.stdout)}\n${String(done.stderr)}`;
    assert.equal(done.exitCode, 0, output);

    const tools = [...seen.values()].filter((p) => ['pg_dump', 'pg_restore'].includes(p.comm));
    assert.ok(
      tools.some((p) => p.comm === 'pg_dump' && path.basename(p.exe) === 'pg_dump'),
      `pg_dump was seen running: ${JSON.stringify([...seen.values()].map((p) => p.comm))}`,
    );
    for (const p of seen.values())
      assert.ok(!p.cmdline.includes(password), `argv of ${p.comm} (${p.pid}) holds the password: ${p.cmdline}`);
    const core = password.slice(password.indexOf("'") + 1, password.lastIndexOf("'"));
    for (const p of seen.values()) assert.ok(!p.cmdline.includes(core), `argv of ${p.comm} holds a part of the password`);
    // The CLI got the password in its environment; the programs its steps start do not inherit it
    // (esbuild is tsx's compiler, which runs the CLI from source here). A child sampled between fork and
    // exec is still a copy of the CLI's own node process, with the CLI's environment: not a program it ran.
    const started = [...seen.values()].filter((p) => p.comm !== 'esbuild' && p.exe !== process.execPath);
    assert.ok(started.some((p) => p.comm === 'zstd'), 'zstd was seen running');
    for (const p of started) assert.ok(!p.environ.includes(core), `the environment of ${p.comm} (${p.pid}) holds the password`);

    const runId = runIdOf(String(done.stdout));
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
