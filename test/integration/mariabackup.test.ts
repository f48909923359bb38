// MariaDB physical base backups (mariadb-backup) on throwaway servers: streamed, restore-tested in a throwaway instance, counted exactly.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { PASSPHRASE, readManifest, runBackup, TEST_STEPS_PLUGIN, writePipeline } from '../helpers/backup-run.js';
import { dbflow } from '../helpers/cli.js';
import { signalAt } from '../helpers/kill-case.js';
import { connectionOptions, requireMyBackupTools, startedOn, throwawayMariadb, withConnection, withDatabase } from '../helpers/mysql.js';
import { tmpDir } from '../helpers/tmp.js';

const MINUTE = 60_000;

// mariabackup → zstd → OpenPGP → file → restore-test → rowcount-check, with `extra` steps after the upload.
function basePipeline(url: string, extra = ''): string {
  return `version: 1
name: mariabase
timeout: 3m
${extra ? `plugins: ${JSON.stringify([TEST_STEPS_PLUGIN])}\n` : ''}secrets:
  passphrase: { env: TEST_PASSPHRASE }
databases:
  app: { driver: mysql, url: "${url}" }
steps:
  - { id: base, uses: mariabackup, with: { database: app } }
  - { id: compress, uses: compress, input: base, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.xbstream.zst.pgp" } }
${extra}  - { id: restore_test, uses: restore-test, ${extra ? 'needs: [damage], ' : ''}with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: base } }
`;
}

const ENV = { TEST_PASSPHRASE: PASSPHRASE };

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

// mariadbd processes on a data directory of a throwaway instance: a server that was not stopped.
function instanceServers(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    })
    .filter((cmd) => /mariadbd .*--datadir=\S*dbflow-instance-pid/.test(cmd));
}

// A throwaway MariaDB (binlog in ROW format) with a database `app` holding two InnoDB tables, and the tools a base backup uses.
async function server(t: TestContext) {
  if (!(await requireMyBackupTools(t, 'mariadb-backup', 'zstd'))) return undefined;
  const s = await throwawayMariadb(t, { args: ['--binlog-format=ROW'] });
  if (!s) return undefined;
  await withConnection(s.url, async (c) => {
    await c.query('CREATE DATABASE app');
    await c.query(`USE app;
      CREATE TABLE app.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64)) ENGINE=InnoDB;
      CREATE TABLE app.customers (id INT PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB;
      INSERT INTO app.customers SELECT seq, MD5(seq) FROM seq_1_to_2000;
      INSERT INTO app.orders (note) SELECT MD5(seq) FROM seq_1_to_5000;`);
  });
  return { server: s, app: withDatabase(s.url, 'app') };
}

// Commits one order after another until stopped: the backup runs while they commit.
function writer(url: string): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    const c = await mysql.createConnection(connectionOptions(url));
    while (running) {
      await c.query("INSERT INTO orders (note) VALUES ('during the backup')");
      n++;
    }
    await c.end();
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
  'a mariadb-backup base backup with a writer committing: restore-tested in a throwaway instance, counts equal, positions recorded',
  { timeout: 4 * MINUTE },
  async (t) => {
    const c = await server(t);
    if (!c) return;
    const dir = tmpDir(t);
    chmodSync(dir, 0o755);
    const w = writer(c.app);
    await sleep(200);
    const run = await runBackup(dir, writePipeline(dir, basePipeline(c.app)), ENV);
    const written = await w.stop();
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    assert.ok(written > 0, 'the writer committed during the backup');
    assert.match(run.stdout, /verified {2}app {2}rowcount: 2 tables, \d+ rows equal/);
    assert.match(run.stdout, /mbstream -x -C <dir> && mariadb-backup --prepare/);
    const manifest = readManifest(dir, run.runId);
    assert.equal(manifest.status, 'verified');
    const artifact = manifest.artifacts[0]!;
    assert.equal(artifact.format, 'mariadb-backup-xbstream');
    const p = artifact.position as Record<string, unknown>;
    assert.equal(p.binlog, 'on');
    assert.match(String(p.file), /^binlog\.\d{6}$/);
    assert.ok(Number(p.position) > 4);
    assert.match(String(p.gtid), /^0-7-\d+$/);
    assert.equal(p.database_name, 'app');
    // The position recorded is the server's own: its binary log holds a GTID event at or before it.
    const db = manifest.databases.app!;
    assert.equal(db.position.file, p.file);
    assert.equal(db.position.position, p.position);
    const counted = db.tables;
    assert.equal(counted.customers?.rows, 2000);
    assert.ok(counted.orders!.rows > 5000, 'rows the writer committed before the end are counted');
    assert.ok(counted.orders!.checksum, 'checksums were taken');
    // The backup ends before the writer stopped: the server holds more rows than the backup.
    const now = await withConnection(c.app, async (cl) => {
      const [rows] = await cl.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM orders');
      return Number(rows[0]!.n);
    });
    assert.equal(now, 5000 + written);
    assert.deepEqual(leftInstances(), []);
    assert.deepEqual(instanceServers(), []);

    // Recovery past its end needs the archived binary log, and this pipeline archives none: said before anything is written.
    const past = await dbflow(['restore', `backups/${run.runId}`, '--to-datadir', path.join(dir, 'past'), '--latest'], {
      cwd: dir,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(past.exitCode, 2, past.stdout + past.stderr);
    assert.match(past.stderr, /there is no log archive at .*backups\/wal \(no dbflow-archive\.json\): give --wal/);
    assert.equal(existsSync(path.join(dir, 'past')), false);

    // restore --to-datadir: a data directory that holds exactly the counts and starts with the installed mariadbd.
    const datadir = path.join(dir, 'restored');
    const restored = await dbflow(['restore', `backups/${run.runId}`, '--to-datadir', datadir], {
      cwd: dir,
      env: { DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
    assert.match(restored.stdout, /2 tables, \d+ rows equal to the backup's counts and checksums/);
    assert.equal(existsSync(path.join(dir, '.restored.dbflow-unfinished')), false);
    const n = await startedOn(t, datadir, async (url) =>
      withConnection(url, async (cl) => {
        const [rows] = await cl.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM app.orders');
        return Number(rows[0]!.n);
      }),
    );
    assert.equal(n, counted.orders!.rows);

    // verify --restore: prepared and counted in a throwaway instance, without the source server.
    const verified = await dbflow(['verify', '--restore', `backups/${run.runId}`], { cwd: dir, env: { DBFLOW_PASSPHRASE: PASSPHRASE } });
    assert.equal(verified.exitCode, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /restored +app +app\.xbstream\.zst\.pgp +recovered in a throwaway instance: 2 tables, \d+ rows equal/);
    assert.deepEqual(leftInstances(), []);
    assert.deepEqual(instanceServers(), []);
  },
);

void test('restore-test fails clearly on a damaged mariadb-backup artifact', { timeout: 3 * MINUTE }, async (t) => {
  const c = await server(t);
  if (!c) return;
  const dir = tmpDir(t);
  const damage = `  - { id: damage, uses: damage-file, needs: [upload], with: { path: "backups/{{ run.id }}/app.xbstream.zst.pgp", how: flip } }\n`;
  const run = await runBackup(dir, writePipeline(dir, basePipeline(c.app, damage)), ENV);
  assert.equal(run.exitCode, 1, run.stdout + run.stderr);
  assert.match(run.stdout + run.stderr, /restore_test: FAILED.*sha256/i);
  assert.doesNotMatch(run.stdout, /verified {2}app/);
  assert.deepEqual(leftInstances(), []);
  assert.deepEqual(instanceServers(), []);
});

void test('a user without the privileges a base backup needs is told the GRANT to run', { timeout: 3 * MINUTE }, async (t) => {
  const c = await server(t);
  if (!c) return;
  const dir = tmpDir(t);
  await withConnection(c.server.url, (cl) => cl.query("CREATE USER 'plain'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON app.* TO 'plain'@'%'"));
  const plain = c.app.replace('root@', 'plain:pw@');
  const file = writePipeline(dir, basePipeline(plain));
  const dry = await dbflow(['run', file, '--dry-run'], { cwd: dir, env: ENV });
  assert.equal(dry.exitCode, 1, dry.stdout + dry.stderr);
  assert.match(dry.stdout + dry.stderr, /GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON \*\.\* TO 'plain'@'%';/);
  assert.doesNotMatch(dry.stdout + dry.stderr, /dbflow\\_verify/);
  const run = await runBackup(dir, file, ENV);
  assert.equal(run.exitCode, 1);
  assert.match(
    run.stdout + run.stderr,
    /cannot take a base backup .*\n.*GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR ON \*\.\* TO 'plain'@'%';/,
  );
  assert.ok(!readdirSync(path.join(dir, 'backups'), { recursive: true }).some((f) => String(f).endsWith('manifest.json')));
});

void test(
  'a run killed while its restore-test instance runs publishes nothing; the next command stops that server and removes its folder',
  { timeout: 4 * MINUTE },
  async (t) => {
    const c = await server(t);
    if (!c) return;
    const dir = tmpDir(t);
    chmodSync(dir, 0o755);
    const file = writePipeline(dir, basePipeline(c.app));
    const killed = await signalAt(
      ['run', file, '--json'],
      { cwd: dir, env: ENV },
      {
        at: (ev) => ev.type === 'step:log' && ev.id === 'restore_test' && /started as a throwaway instance/.test(ev.message),
        signal: 'SIGKILL',
      },
      true,
    );
    assert.ok(killed.signalled && !killed.ended, `killed before the end\n${killed.stdout}${killed.stderr}`);
    assert.ok(!existsSync(path.join(dir, 'backups', killed.runId!, 'manifest.json')), 'no manifest is published');
    const next = await runBackup(dir, file, ENV);
    assert.equal(next.exitCode, 0, next.stdout + next.stderr);
    assert.equal(readManifest(dir, next.runId).status, 'verified');
    assert.deepEqual(leftInstances(), [], 'no instance folder is left');
    assert.deepEqual(instanceServers(), [], 'no instance server is left running');
  },
);

void test(
  'a run killed while mariadb-backup streams publishes nothing, leaves no mariadb-backup and no lock behind: commits go on, the next run is verified',
  { timeout: 4 * MINUTE },
  async (t) => {
    const c = await server(t);
    if (!c) return;
    // Enough data that mariadb-backup is still streaming when its first bytes are counted.
    await withConnection(c.app, async (cl) => {
      await cl.query('CREATE TABLE app.bulk (id INT PRIMARY KEY, pad VARCHAR(300)) ENGINE=InnoDB');
      await cl.query('INSERT INTO app.bulk SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_300000');
    });
    const dir = tmpDir(t);
    chmodSync(dir, 0o755);
    const file = writePipeline(dir, basePipeline(c.app));
    const w = writer(c.app);
    const killed = await signalAt(
      ['run', file, '--json'],
      { cwd: dir, env: ENV },
      { at: (ev) => ev.type === 'step:progress' && ev.id === 'base' && ev.bytes > 0, child: 'mariadb-backup', signal: 'SIGKILL' },
      true,
    );
    assert.ok(killed.signalled && !killed.ended, `killed while mariadb-backup ran\n${killed.stdout}${killed.stderr}`);
    // The backup tool goes with it (its output closed), and with it the server's backup locks: commits go on.
    const tools = killed.children.filter((p) => p.comm === 'mariadb-backup').map((p) => p.pid);
    assert.ok(tools.length > 0, 'mariadb-backup was running');
    const gone = Date.now() + 20_000;
    while (tools.some(alive) && Date.now() < gone) await sleep(100);
    assert.deepEqual(tools.filter(alive), [], 'no mariadb-backup is left running');
    const before = await orders(c.app);
    await sleep(1000);
    assert.ok((await orders(c.app)) > before, 'the writer commits after the kill');
    await w.stop();
    assert.ok(!existsSync(path.join(dir, 'backups', killed.runId!, 'manifest.json')), 'no manifest is published');
    const next = await runBackup(dir, file, ENV);
    assert.equal(next.exitCode, 0, next.stdout + next.stderr);
    assert.equal(readManifest(dir, next.runId).status, 'verified');
    const listed = await dbflow(['backups', 'list', 'backups', '--json'], { cwd: dir });
    const ids = (JSON.parse(listed.stdout) as { backups: { run_id?: string; url: string }[] }).backups.map((b) => b.url);
    assert.ok(
      ids.every((u) => !u.includes(killed.runId!)),
      `the killed run is not listed as a backup: ${ids.join(', ')}`,
    );
    assert.deepEqual(leftInstances(), []);
  },
);

// Whether a process is still there (and not a zombie).
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function orders(url: string): Promise<number> {
  return withConnection(url, async (cl) => Number((await cl.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM orders'))[0][0]!.n));
}
