// A new timeline: a cluster recovered to a point (and promoted) goes on writing on timeline 2; archiving it into
// the same archive stores the history file and the new timeline, and recovery from the old base follows it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { asServerUser, instanceDir, startInstance } from '../../plugins/postgres/instance.js';
import { dbflow } from '../helpers/cli.js';
import { withClient } from '../helpers/postgres.js';
import { archiving, baseBackupSetup, inRestored, rowsByPhase, systemFolder } from '../helpers/wal-archive.js';

const MINUTE = 60_000;

void test(
  'after recovery to a point the new timeline is archived with its history file, and recovery follows it',
  { timeout: 5 * MINUTE },
  async (t) => {
    const s = await baseBackupSetup(t);
    if (!s) return;
    const sql = (url: string, text: string): Promise<unknown> => withClient(url, (c) => c.query(text), s.pg.password);
    const insert = (url: string, phase: string, n: number): Promise<unknown> =>
      sql(url, `INSERT INTO timeline_rows SELECT g, '${phase}' FROM generate_series(1, ${n}) g`);
    await sql(s.pg.url, 'CREATE TABLE timeline_rows (n int, phase text)');
    let archiver = archiving(t, s);
    await insert(s.pg.url, 'before-base', 100);
    const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    await insert(s.pg.url, 'before-fork', 100);
    await sql(s.pg.url, "SELECT pg_create_restore_point('fork')");
    // Written on timeline 1 after the fork: the recovered cluster never holds these.
    await insert(s.pg.url, 'lost-at-fork', 100);
    await sql(s.pg.url, 'SELECT pg_switch_wal()');
    await sleep(3000);
    await archiver.stop();
    await asServerUser(path.join(s.pg.bin, 'pg_ctl'), ['stop', '-D', s.pg.data, '-m', 'immediate', '-w']);

    const restore = async (name: string, ...target: string[]): Promise<string> => {
      const datadir = path.join(s.dir, name);
      const r = await dbflow(['restore', 'file://./repo', '--to-datadir', datadir, ...target, '--passphrase-file', s.passphraseFile], {
        env: s.env,
        cwd: s.dir,
      });
      assert.equal(r.exitCode, 0, `${target.join(' ')}\n${r.stdout}${r.stderr}`);
      return datadir;
    };
    const phases = (url: string): Promise<Record<string, number>> => rowsByPhase(url, s.pg.password, 'timeline_rows');

    // The recovered cluster becomes the primary: it promotes onto timeline 2 and the pipeline now archives it.
    const forked = await restore('forked', '--to-restore-point', 'fork');
    const inst = await instanceDir();
    const primary = await startInstance({ bin: s.pg.bin, dir: { ...inst, data: forked }, timeoutS: 60 });
    t.after(() => primary.stop());
    const url = primary.url('postgres', 'postgres');
    assert.deepEqual(await phases(url), { 'before-base': 100, 'before-fork': 100 });
    writeFileSync(s.pipeline, readFileSync(s.pipeline, 'utf8').replace(s.pg.url, url));
    archiver = archiving(t, s);
    await insert(url, 'timeline-2', 100);
    await sql(url, 'SELECT pg_switch_wal()');
    await insert(url, 'timeline-2-open', 10);
    await sleep(3000);
    await archiver.stop();
    await asServerUser(path.join(s.pg.bin, 'pg_ctl'), ['stop', '-D', forked, '-m', 'fast', '-w']);

    const stored = readdirSync(systemFolder(s.root));
    assert.ok(stored.includes('00000002.history.json'), `the history file is archived: ${stored.join(' ')}`);
    assert.ok(
      stored.some((f) => /^00000002[0-9A-F]{16}\.json$/.test(f)),
      `timeline 2's segments are archived: ${stored.join(' ')}`,
    );
    const verify = await dbflow(['verify', 'file://./repo/wal'], { env: s.env, cwd: s.dir });
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
    const listed = await dbflow(['backups', 'list', 'file://./repo', '--json'], { env: s.env, cwd: s.dir });
    assert.equal(listed.exitCode, 0, listed.stderr);
    const ranges = (JSON.parse(listed.stdout) as { backups: { restorable?: { gap?: string } }[] }).backups.map((b) => b.restorable);
    assert.ok(ranges[0] && !ranges[0].gap, JSON.stringify(ranges));

    // Recovery from the timeline 1 base backup to the newest point follows the history file onto timeline 2.
    const latest = await restore('latest', '--latest');
    assert.deepEqual(await inRestored(latest, s.pg.bin, phases), {
      'before-base': 100,
      'before-fork': 100,
      'timeline-2': 100,
      'timeline-2-open': 10,
    });
  },
);
