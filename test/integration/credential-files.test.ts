// The files that hand a database password to pg_dump, pg_restore, mariadb-dump and mariadb: 0600 in a 0700 folder, gone once their program ends — after success, failure and cancel.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runIdOf, writePipeline } from '../helpers/backup-run.js';
import { driverPipeline, type DriverCase } from '../helpers/driver-pipeline.js';
import { requireMyBackupTools, scratchDatabase as myScratch, throwawayUser } from '../helpers/mysql.js';
import { seedShop as seedMyShop } from '../helpers/mysql-data.js';
import { requireBackupTools, throwawayPostgres, withClient, withDatabase } from '../helpers/postgres.js';
import { seedShop } from '../helpers/postgres-data.js';
import { runWatched, type WatchedRun } from '../helpers/program-watch.js';
import type { ProcessInfo } from '../helpers/processes.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;

// A seeded database `app` on a throwaway scram-sha-256 cluster, with its password.
async function pgCase(t: TestContext): Promise<DriverCase | undefined> {
  if (!(await requireBackupTools(t, 'zstd'))) return undefined;
  const server = await throwawayPostgres(t);
  if (!server) return undefined;
  await withClient(server.url, (c) => c.query('CREATE DATABASE app'), server.password);
  await withClient(withDatabase(server.url, 'app'), (c) => seedShop(c, { rows: 20_000 }), server.password);
  return { driver: 'postgres', url: withDatabase(server.url, 'app'), password: server.password, repo: 'file://./backups' };
}

// A seeded database on the shared MariaDB, reached as a throwaway user with a password.
async function myCase(t: TestContext): Promise<DriverCase | undefined> {
  if (!(await requireMyBackupTools(t, 'zstd'))) return undefined;
  const { user, password } = await throwawayUser(t);
  const app = await myScratch(t);
  await seedMyShop(app.pool, { rows: 20_000 });
  const url = new URL(app.url);
  url.username = user;
  return { driver: 'mysql', url: url.toString(), password, repo: 'file://./backups' };
}

const env = (c: DriverCase): Record<string, string> => ({
  BACKUP_PASSPHRASE: 'credential-files-test-passphrase',
  DB_PASSWORD: c.password!,
});

// The credential files seen: each 0600, in a 0700 folder of its own inside a 0700 scratch folder, and none left now.
function checkSeen(run: WatchedRun, name: string, runId: string): void {
  const ours = run.credentials.filter((c) => path.basename(c.file) === name && c.file.includes(`dbflow-${runId}-`));
  assert.ok(
    ours.length > 0,
    `a ${name} file was seen while the run ran (${run.samples} samples; seen: ${JSON.stringify(run.credentials.map((c) => c.file))})`,
  );
  for (const c of ours) {
    assert.deepEqual(
      [c.mode, c.folderMode, c.tmpdirMode].map((m) => m.toString(8)),
      ['600', '700', '700'],
      `modes of ${c.file} and its folders`,
    );
    assert.ok(!existsSync(path.dirname(c.file)), `${path.dirname(c.file)} is removed`);
  }
}

// Scratch folders of a run that are still there.
const leftOf = (runId: string): string[] => readdirSync(os.tmpdir()).filter((d) => d.startsWith(`dbflow-${runId}-`));

for (const driver of ['postgres', 'mysql'] as const) {
  const name = driver === 'postgres' ? 'pgpass' : 'my.cnf';
  void test(
    `${driver}: each ${name} file lives only while its program runs, and nothing is left after the run`,
    { timeout: 3 * MINUTE },
    async (t) => {
      const c = driver === 'postgres' ? await pgCase(t) : await myCase(t);
      if (!c) return;
      const cwd = tmpDir(t);
      const report = path.join(cwd, 'tmpdirs.json');
      // Between the restore-test and the rowcount-check the snapshot's and the restore-test's scratch folders are
      // still held, but the dump tool and the restore tool have ended: their credential files must be gone.
      const pipeline = driverPipeline({ ...c, afterRestore: [{ id: 'look', uses: 'run-tmpdirs', with: { report } }] });
      const run = await runWatched(['run', writePipeline(cwd, pipeline)], { cwd, env: env(c) });
      assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
      const runId = runIdOf(run.stdout);
      const held = JSON.parse(readFileSync(report, 'utf8')) as Record<string, number>;
      assert.ok(
        Object.keys(held).some((p) => path.basename(p).startsWith(`dbflow-${runId}-`)),
        `the run's scratch folders were looked at: ${JSON.stringify(held)}`,
      );
      assert.deepEqual(
        Object.keys(held).filter((p) => /pgpass|\.cnf/.test(p)),
        [],
        'no credential file outlives its program',
      );
      checkSeen(run, name, runId);
      assert.deepEqual(leftOf(runId), [], 'no scratch folder is left');
    },
  );
}

// A credential file's path: its run id.
const CREDENTIAL_PATH = /\/dbflow-([0-9A-Za-z]+-[0-9a-z]+)-[^/]+\/(?:pgpass|my\.cnf)-/;

// Runs a backup and, once `program` runs, does `act` to it or to the CLI; returns the run and its id
// (read from the path of the credential file the program was given).
async function interrupted(
  c: DriverCase,
  cwd: string,
  program: string,
  act: (p: ProcessInfo, cli: number) => void,
): Promise<{ run: WatchedRun; runId: string }> {
  let done = false;
  let runId: string | undefined;
  const run = await runWatched(['run', writePipeline(cwd, driverPipeline(c))], {
    cwd,
    env: env(c),
    onSample: (programs, cli) => {
      if (done) return;
      // The dump itself (not its `--version` check): the one given a credential file.
      for (const p of programs.filter((q) => q.comm === program && path.basename(q.exe) === program)) {
        runId = CREDENTIAL_PATH.exec(`${p.cmdline}\n${p.environ}`)?.[1];
        if (!runId) continue;
        done = true;
        act(p, cli);
        return;
      }
    },
  });
  assert.ok(done && runId, `${program} was seen running with a credential file:\n${run.stdout}\n${run.stderr}`);
  return { run, runId };
}

void test(
  'postgres: cancelled (SIGINT) while pg_dump runs, no credential file or scratch folder is left',
  { timeout: 3 * MINUTE },
  async (t) => {
    const c = await pgCase(t);
    if (!c) return;
    const { run, runId } = await interrupted(c, tmpDir(t), 'pg_dump', (_p, cli) => process.kill(cli, 'SIGINT'));
    assert.equal(run.exitCode, 130, `${run.stdout}\n${run.stderr}`);
    checkSeen(run, 'pgpass', runId);
    assert.deepEqual(leftOf(runId), [], 'no scratch folder is left');
  },
);

void test('mysql: failed (mariadb-dump killed), no credential file or scratch folder is left', { timeout: 3 * MINUTE }, async (t) => {
  const c = await myCase(t);
  if (!c) return;
  const { run, runId } = await interrupted(c, tmpDir(t), 'mariadb-dump', (p) => process.kill(p.pid, 'SIGKILL'));
  assert.equal(run.exitCode, 1, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout + run.stderr, /mariadb-dump/);
  checkSeen(run, 'my.cnf', runId);
  assert.deepEqual(leftOf(runId), [], 'no scratch folder is left');
});
