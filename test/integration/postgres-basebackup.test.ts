// PostgreSQL physical base backups on throwaway clusters: streamed, restore-tested in a throwaway instance, counted exactly.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { asServerUser, instanceDir, startInstance } from '../../plugins/postgres/instance.js';
import { PASSPHRASE, readManifest, runBackup, TEST_STEPS_PLUGIN, writePipeline } from '../helpers/backup-run.js';
import { dbflow } from '../helpers/cli.js';
import { signalAt, type Trigger } from '../helpers/kill-case.js';
import { requireTools, throwawayPostgres, withClient, withDatabase, withPassword, type ThrowawayPostgres } from '../helpers/postgres.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;

// basebackup → zstd → OpenPGP → file → restore-test → rowcount-check, with `extra` steps after the upload.
function pitrPipeline(url: string, extra = ''): string {
  return `version: 1
name: pitr
timeout: 3m
${extra ? `plugins: ${JSON.stringify([TEST_STEPS_PLUGIN])}\n` : ''}secrets:
  passphrase: { env: TEST_PASSPHRASE }
  pg_password: { env: TEST_PG_PASSWORD }
databases:
  app: { driver: postgres, url: "${url}", password: "{{ secrets.pg_password }}" }
steps:
  - { id: base, uses: basebackup, with: { database: app } }
  - { id: compress, uses: compress, input: base, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.base.tar.zst.pgp" } }
${extra}  - { id: restore_test, uses: restore-test, ${extra ? 'needs: [damage], ' : ''}with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: base } }
`;
}

// Folders of throwaway instances whose process is gone: an instance that was not stopped and removed.
function leftInstances(): string[] {
  return readdirSync(os.tmpdir()).filter((f) => {
    const pid = /^dbflow-instance-pid(\d+)-/.exec(f)?.[1];
    if (pid === undefined || Number(pid) === process.pid) return false;
    try {
      process.kill(Number(pid), 0);
      return false;
    } catch {
      return true;
    }
  });
}

// A throwaway cluster with a database `app` holding a table, and the tools a base backup uses.
async function cluster(t: Parameters<typeof throwawayPostgres>[0], settings: string[] = []) {
  if (!(await requireTools(t, 'pg_basebackup', 'pg_receivewal', 'zstd'))) return undefined;
  const server = await throwawayPostgres(t, { settings });
  if (!server) return undefined;
  await withClient(server.url, (c) => c.query('CREATE DATABASE app'), server.password);
  const app = withDatabase(server.url, 'app');
  await withClient(
    app,
    (c) =>
      c.query(`CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
               CREATE TABLE customers (id int PRIMARY KEY, name text);
               INSERT INTO customers SELECT i, md5(i::text) FROM generate_series(1, 2000) i;
               INSERT INTO orders (note) SELECT md5(i::text) FROM generate_series(1, 5000) i;`),
    server.password,
  );
  return { server, app };
}

function env(server: ThrowawayPostgres): Record<string, string> {
  return { TEST_PASSPHRASE: PASSPHRASE, TEST_PG_PASSWORD: server.password };
}

// Commits one order after another until stopped: the backup runs while they commit.
function writer(url: string, password: string): { stop: () => Promise<number> } {
  const client = new pg.Client({ connectionString: withPassword(url, password) });
  client.on('error', () => undefined);
  let running = true;
  let n = 0;
  const loop = (async () => {
    await client.connect();
    while (running) {
      await client.query("INSERT INTO orders (note) VALUES ('during the backup')");
      n++;
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return n;
    },
  };
}

void test(
  'a base backup with writers committing: restore-tested in a throwaway instance, counts equal, positions recorded',
  { timeout: 3 * MINUTE },
  async (t) => {
    const c = await cluster(t);
    if (!c) return;
    const dir = tmpDir(t);
    chmodSync(dir, 0o755);
    const w = writer(c.app, c.server.password);
    const run = await runBackup(dir, writePipeline(dir, pitrPipeline(c.app)), env(c.server));
    const written = await w.stop();
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    assert.ok(written > 0, 'the writer committed during the backup');
    assert.match(run.stdout, /verified {2}app {2}rowcount: 2 tables, \d+ rows equal/);
    assert.match(run.stdout, /restore without dbflow:\n.*tar -x -C <datadir>.*recovery_target_name=dbflow_/);
    const manifest = readManifest(dir, run.runId);
    assert.equal(manifest.status, 'verified');
    const artifact = manifest.artifacts[0]!;
    assert.equal(artifact.format, 'pg-basebackup-tar');
    const p = artifact.position as Record<string, unknown>;
    const sysid = await withClient(
      c.server.url,
      async (cl) => (await cl.query('SELECT system_identifier::text AS s FROM pg_control_system()')).rows[0].s as string,
      c.server.password,
    );
    assert.equal(p.system_identifier, sysid);
    assert.equal(p.timeline, 1);
    assert.equal(p.restore_point, `dbflow_${run.runId}`);
    for (const k of ['start_lsn', 'stop_lsn', 'restore_point_lsn']) assert.match(String(p[k]), /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.match(JSON.stringify(p.wal), /"first":"[0-9A-F]{24}","last":"[0-9A-F]{24}"/);
    assert.equal(manifest.databases.app!.position.restore_point, p.restore_point);
    const counted = manifest.databases.app!.tables;
    assert.equal(counted['public.customers']?.rows, 2000);
    assert.ok(counted['public.orders']!.rows >= 5000);
    assert.ok(manifest.databases.app!.tables['public.orders']!.checksum, 'checksums were taken');
    // No throwaway instance is left running, and no folder of one.
    assert.deepEqual(leftInstances(), []);

    // restore --to-datadir: a data directory that starts and holds exactly the counts.
    const datadir = path.join(dir, 'restored');
    const restored = await dbflow(['restore', `backups/${run.runId}`, '--to-datadir', datadir], {
      cwd: dir,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
    assert.match(restored.stdout, /2 tables, \d+ rows equal to the backup's counts and checksums/);
    assert.equal(statSync(datadir).mode & 0o777, 0o700);
    const again = await dbflow(['restore', `backups/${run.runId}`, '--to-datadir', datadir], {
      cwd: dir,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(again.exitCode, 2);
    assert.match(again.stderr, /not an empty folder/);
    // It starts, as it is, with the installed server.
    const inst = await instanceDir();
    const started = await startInstance({ bin: c.server.bin, dir: { ...inst, data: datadir }, timeoutS: 60 });
    try {
      const n = await withClient(
        started.url('postgres', 'app'),
        async (cl) => (await cl.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')).rows[0]!.n,
        c.server.password,
      );
      assert.equal(n, counted['public.orders']!.rows);
    } finally {
      await asServerUser(path.join(c.server.bin, 'pg_ctl'), ['stop', '-D', datadir, '-m', 'fast', '-w']).catch(() => undefined);
      inst.remove();
    }

    // verify --restore: recovered in a throwaway instance and counted, without the source server.
    await asServerUser(path.join(c.server.bin, 'pg_ctl'), ['stop', '-D', c.server.data, '-m', 'immediate', '-w']);
    const verified = await dbflow(['verify', '--restore', `backups/${run.runId}`], { cwd: dir, env: { DBFLOW_PASSPHRASE: PASSPHRASE } });
    assert.equal(verified.exitCode, 0, verified.stdout + verified.stderr);
    assert.match(
      verified.stdout,
      new RegExp(
        `restored +app +app\\.base\\.tar\\.zst\\.pgp +recovered in a throwaway instance to restore point dbflow_${run.runId}: 2 tables, \\d+ rows equal to the backup's counts and checksums`,
      ),
    );
    assert.match(verified.stdout, /✔ 1 of 1 artifact restored and counted/);
    const record = readFileSync(path.join(dir, 'backups', run.runId, 'verify.json'), 'utf8');
    assert.match(record, /recovered in a throwaway instance/);
    assert.deepEqual(leftInstances(), []);
    // A manifest whose counts the recovered cluster does not hold fails it, naming the table.
    const manifestFile = path.join(dir, 'backups', run.runId, 'manifest.json');
    writeFileSync(manifestFile, readFileSync(manifestFile, 'utf8').replace(/("public\.customers": \{\s*"rows": )2000/, '$11999'));
    const differs = await dbflow(['verify', '--restore', '--no-record', `backups/${run.runId}`], {
      cwd: dir,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(differs.exitCode, 1, differs.stdout + differs.stderr);
    assert.match(differs.stderr, /differs from the backup's counts: public\.customers: backup 1999, restored 2000/);
    assert.deepEqual(leftInstances(), []);
  },
);

// Servers of a throwaway instance or an unfinished restore whose folder is gone: a server the reaper did not stop.
function strayServers(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })
    .filter((cmd) => /\bpostgres -D \S*(dbflow-instance-pid\d+-|dbflow-unfinished)/.test(cmd))
    .filter((cmd) => !existsSync(/-D (\S+)/.exec(cmd)![1]!));
}

void test(
  'a base backup run killed while pg_basebackup streams, or while its restore-test instance runs, publishes nothing; the next run stops and removes what it left, and is verified',
  { timeout: 4 * MINUTE },
  async (t) => {
    const c = await cluster(t);
    if (!c) return;
    const dir = tmpDir(t);
    chmodSync(dir, 0o755);
    const file = writePipeline(dir, pitrPipeline(c.app));
    const e = env(c.server);
    const points: [string, Trigger][] = [
      [
        'while pg_basebackup streams',
        { at: (ev) => ev.type === 'step:start' && ev.id === 'base', child: 'pg_basebackup', signal: 'SIGKILL' },
      ],
      [
        'while the restore-test instance runs',
        {
          at: (ev) => ev.type === 'step:log' && ev.id === 'restore_test' && /started as a throwaway instance/.test(ev.message),
          signal: 'SIGKILL',
        },
      ],
    ];
    for (const [name, trigger] of points) {
      const killed = await signalAt(['run', file, '--json'], { cwd: dir, env: e }, trigger, true);
      assert.ok(killed.signalled && !killed.ended, `${name}: killed before the end\n${killed.stdout}${killed.stderr}`);
      assert.ok(killed.runId, name);
      assert.ok(!existsSync(path.join(dir, 'backups', killed.runId, 'manifest.json')), `${name}: no manifest is published`);
      const next = await runBackup(dir, file, e);
      assert.equal(next.exitCode, 0, `${name}: the next run\n${next.stdout}${next.stderr}`);
      assert.equal(readManifest(dir, next.runId).status, 'verified', name);
      assert.deepEqual(leftInstances(), [], `${name}: no instance folder is left`);
      assert.deepEqual(strayServers(), [], `${name}: no instance server is left running`);
      const listed = await dbflow(['backups', 'list', 'backups', '--json'], { cwd: dir });
      const backups = (JSON.parse(listed.stdout) as { backups: { url: string }[] }).backups;
      assert.ok(
        backups.every((b) => !b.url.includes(killed.runId!)),
        `${name}: the killed run is not listed as a backup`,
      );
    }
    // restore --to-datadir killed while the server recovers the data directory: the target is not there (the folder
    // beside it says unfinished); the next restore replaces that, stops the server the killed one left, and succeeds.
    const last = (
      JSON.parse((await dbflow(['backups', 'list', 'backups', '--json'], { cwd: dir })).stdout) as { backups: { url: string }[] }
    ).backups[0]!.url;
    const datadir = path.join(dir, 'restored');
    for (const child of ['tar', 'pg_ctl']) {
      const killed = await signalAt(
        ['restore', last, '--to-datadir', datadir],
        { cwd: dir, env: { DBFLOW_PASSPHRASE: PASSPHRASE } },
        { at: () => true, child, signal: 'SIGKILL' },
        false,
      );
      assert.ok(killed.signalled, `restore killed while ${child} runs\n${killed.stdout}${killed.stderr}`);
      assert.equal(existsSync(datadir), false, `a killed restore (${child}) leaves no data directory that looks whole`);
      assert.ok(existsSync(path.join(dir, '.restored.dbflow-unfinished')), 'the unfinished folder says what it is');
    }
    const again = await dbflow(['restore', last, '--to-datadir', datadir], { cwd: dir, env: { DBFLOW_PASSPHRASE: PASSPHRASE } });
    assert.equal(again.exitCode, 0, again.stdout + again.stderr);
    assert.ok(existsSync(path.join(datadir, 'PG_VERSION')));
    assert.equal(existsSync(path.join(dir, '.restored.dbflow-unfinished')), false);
    assert.deepEqual(leftInstances(), []);
    assert.deepEqual(strayServers(), []);
    // Nothing of the killed runs holds the server: no base backup or WAL sender is left.
    const senders = await withClient(
      c.server.url,
      async (cl) =>
        (await cl.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'walsender'")).rows[0]!.n,
      c.server.password,
    );
    assert.equal(senders, 0);
  },
);

void test('restore-test fails clearly on a damaged base backup', { timeout: 3 * MINUTE }, async (t) => {
  const c = await cluster(t);
  if (!c) return;
  const dir = tmpDir(t);
  const damage = `  - { id: damage, uses: damage-file, needs: [upload], with: { path: "backups/{{ run.id }}/app.base.tar.zst.pgp", how: flip } }\n`;
  const run = await runBackup(dir, writePipeline(dir, pitrPipeline(c.app, damage)), env(c.server));
  assert.equal(run.exitCode, 1, run.stdout + run.stderr);
  assert.match(run.stdout + run.stderr, /restore_test: FAILED.*sha256/i);
  assert.doesNotMatch(run.stdout, /verified {2}app/);
  assert.deepEqual(leftInstances(), []);
});

void test('wrong settings are refused with what to change: no REPLICATION, a tablespace', { timeout: 3 * MINUTE }, async (t) => {
  const c = await cluster(t);
  if (!c) return;
  const dir = tmpDir(t);
  await withClient(
    c.app,
    (cl) => cl.query(`CREATE ROLE plain LOGIN PASSWORD '${c.server.password}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO plain`),
    c.server.password,
  );
  const plainUrl = c.app.replace('postgres@', 'plain@');
  const file = writePipeline(dir, pitrPipeline(plainUrl));
  const dry = await dbflow(['run', file, '--dry-run'], { cwd: dir, env: env(c.server) });
  assert.equal(dry.exitCode, 1, dry.stdout + dry.stderr);
  assert.match(dry.stdout + dry.stderr, /ALTER ROLE plain REPLICATION;/);
  assert.doesNotMatch(dry.stdout + dry.stderr, /CREATEDB/);
  const run = await runBackup(dir, file, env(c.server));
  assert.equal(run.exitCode, 1);
  assert.match(run.stdout + run.stderr, /ALTER ROLE plain REPLICATION;/);
  assert.match(run.stdout + run.stderr, /GRANT EXECUTE ON FUNCTION pg_catalog\.pg_create_restore_point\(text\) TO plain;/);

  const space = path.join(path.dirname(c.server.data), 'space');
  mkdirSync(space);
  const owner = statSync(c.server.data);
  chownSync(space, owner.uid, owner.gid);
  await withClient(c.server.url, (cl) => cl.query(`CREATE TABLESPACE extra LOCATION '${space}'`), c.server.password);
  const refused = await runBackup(dir, writePipeline(dir, pitrPipeline(c.app)), env(c.server));
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stdout + refused.stderr, /tablespaces extra: pg_basebackup cannot stream them/);
  assert.match(refused.stdout + refused.stderr, /DROP TABLESPACE extra/);
});

void test('max_wal_senders = 0 is refused with what to change', { timeout: 3 * MINUTE }, async (t) => {
  const c = await cluster(t, ['max_wal_senders=0']);
  if (!c) return;
  const dir = tmpDir(t);
  const run = await runBackup(dir, writePipeline(dir, pitrPipeline(c.app)), env(c.server));
  assert.equal(run.exitCode, 1);
  assert.match(run.stdout + run.stderr, /max_wal_senders = 10; then restart the server/);
});
