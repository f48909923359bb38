// Archiving from a standby through a failover: the standby is promoted (timeline 2) while dbflow archive streams
// from it; the history file and the new timeline are archived with no gap, and recovery from a base backup of the
// old primary follows the promotion.
import assert from 'node:assert/strict';
import { chownSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { asServerUser, instanceDir, startInstance } from '../../plugins/postgres/instance.js';
import { dbflow } from '../helpers/cli.js';
import { withClient } from '../helpers/postgres.js';
import { archiving, baseBackupSetup, inRestored, rowsByPhase, systemFolder } from '../helpers/wal-archive.js';

const MINUTE = 60_000;

function chownTree(p: string, owner: { uid: number; gid: number }): void {
  chownSync(p, owner.uid, owner.gid);
  if (lstatSync(p).isDirectory()) for (const f of readdirSync(p)) chownTree(path.join(p, f), owner);
}

void test(
  'archiving from a standby goes on through its promotion: the new timeline and its history file are stored, and recovery follows them',
  { timeout: 5 * MINUTE },
  async (t) => {
    const s = await baseBackupSetup(t);
    if (!s) return;
    const password = s.pg.password;
    const sql = (url: string, text: string): Promise<unknown> => withClient(url, (c) => c.query(text), password);
    const insert = (url: string, phase: string, n: number): Promise<unknown> =>
      sql(url, `INSERT INTO failover_rows SELECT g, '${phase}' FROM generate_series(1, ${n}) g`);
    await sql(s.pg.url, 'CREATE TABLE failover_rows (n int, phase text)');

    // A streaming standby of the throwaway primary.
    const inst = await instanceDir();
    const primaryPort = new URL(s.pg.url).port;
    await execa('pg_basebackup', ['-h', '127.0.0.1', '-p', primaryPort, '-U', 'postgres', '-D', inst.data, '-R', '-X', 'stream'], {
      env: { PGPASSWORD: password },
    });
    chownTree(inst.data, inst.owner);
    const standby = await startInstance({ bin: s.pg.bin, dir: inst, timeoutS: 60, settings: ['hot_standby=on'] });
    t.after(() => standby.stop());
    const standbyUrl = standby.url('postgres', 'postgres');
    const inRecovery = async (url: string): Promise<boolean> =>
      withClient(url, async (c) => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, password);
    assert.equal(await inRecovery(standbyUrl), true, 'the standby is in recovery');

    // The archive streams from the standby; the base backup is taken on the primary (the same system).
    const basePipeline = path.join(s.dir, 'base.yaml');
    writeFileSync(basePipeline, readFileSync(s.pipeline, 'utf8'));
    writeFileSync(s.pipeline, readFileSync(s.pipeline, 'utf8').replace(s.pg.url, standbyUrl));
    const archiver = archiving(t, s);
    await sleep(2000);
    const run = await dbflow(['run', basePipeline], { env: s.env, cwd: s.dir });
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    // A base backup of the standby is refused before anything starts: its counts need a restore point on the primary.
    const onStandby = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(onStandby.exitCode, 1, onStandby.stdout + onStandby.stderr);
    assert.match(
      onStandby.stdout + onStandby.stderr,
      /a base backup on the primary \(this server is a standby.*point the database at the primary/,
    );
    await insert(s.pg.url, 'before-failover', 100);
    await sql(s.pg.url, 'SELECT pg_switch_wal()');
    await insert(s.pg.url, 'before-failover-open', 10);
    // The standby has replayed everything the primary wrote; then the primary goes away and the standby is promoted.
    const lsn = async (url: string, expr: string): Promise<string> =>
      withClient(url, async (c) => (await c.query<{ l: string }>(`SELECT ${expr}::text AS l`)).rows[0]!.l, password);
    const written = await lsn(s.pg.url, 'pg_current_wal_lsn()');
    for (let i = 0; i < 100; i++) {
      const replayed = await lsn(standbyUrl, 'pg_last_wal_replay_lsn()');
      if (
        await withClient(
          standbyUrl,
          async (c) => (await c.query('SELECT $1::pg_lsn >= $2::pg_lsn AS ok', [replayed, written])).rows[0].ok as boolean,
          password,
        )
      )
        break;
      await sleep(200);
    }
    await asServerUser(path.join(s.pg.bin, 'pg_ctl'), ['stop', '-D', s.pg.data, '-m', 'fast', '-w']);
    await sql(standbyUrl, 'SELECT pg_promote(true, 60)');
    assert.equal(await inRecovery(standbyUrl), false, 'the standby was promoted');
    await insert(standbyUrl, 'after-failover', 100);
    await sql(standbyUrl, 'SELECT pg_switch_wal()');
    await insert(standbyUrl, 'after-failover-open', 10);
    // pg_receivewal reconnects (5 s) after the promotion ended its stream, then stores up to the open segment.
    await sleep(9000);
    await archiver.stop();

    const stored = readdirSync(systemFolder(s.root));
    assert.ok(stored.includes('00000002.history.json'), `the history file is archived: ${stored.join(' ')}`);
    assert.ok(
      stored.some((f) => /^00000002[0-9A-F]{16}(\.partial)?\.json$/.test(f)),
      `timeline 2 is archived: ${stored.join(' ')}`,
    );
    const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);

    const datadir = path.join(s.dir, 'latest');
    const restored = await dbflow(
      ['restore', 'file://./repo', '--to-datadir', datadir, '--latest', '--passphrase-file', s.passphraseFile],
      {
        env: s.env,
        cwd: s.dir,
      },
    );
    assert.equal(restored.exitCode, 0, restored.stdout + restored.stderr);
    const phases = await inRestored(datadir, s.pg.bin, (url) => rowsByPhase(url, password, 'failover_rows'));
    assert.deepEqual(phases, { 'before-failover': 100, 'before-failover-open': 10, 'after-failover': 100, 'after-failover-open': 10 });
  },
);
