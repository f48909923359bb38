// Point-in-time restore of PostgreSQL: a writer commits while a base backup is taken and the WAL is archived; recovery
// to random times, to a restore point and to the end of the archive holds exactly the commits up to that point.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { asServerUser } from '../../plugins/postgres/instance.js';
import { dbflow } from '../helpers/cli.js';
import { commitsUpTo, commitTimes, startWriter, stateAfter, stateOf, type WriterState } from '../helpers/pg-writer.js';
import { withClient } from '../helpers/postgres.js';
import { archiving, baseBackupSetup, inRestored, systemFolder } from '../helpers/wal-archive.js';

// The restored data directory, started on its own: what do the writer's tables hold?
const stateIn = (datadir: string, bin: string, password: string): Promise<WriterState> =>
  inRestored(datadir, bin, (url) => stateOf(url, password));

// How long the writer commits after the base backup while its WAL is archived.
const WRITE_MS = 120_000;

void test(
  'after minutes of archiving a writer, recovery to random times, a restore point and the archive end holds exactly the commits up to it',
  { timeout: 600_000 },
  async (t) => {
    const s = await baseBackupSetup(t, ['track_commit_timestamp=on']);
    if (!s) return;
    const archiver = archiving(t, s);
    // About 1 KiB of WAL per commit, a commit every few milliseconds: the recovery targets fall across several segments.
    const writer = await startWriter(s.pg.url, { password: s.pg.password, padBytes: 1000, pauseMs: 2 });
    let baseFinished: Date;
    let restorePoint: { committedBefore: number };
    try {
      await sleep(1500);
      const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
      assert.equal(run.exitCode, 0, run.stdout + run.stderr);
      baseFinished = new Date();
      // Archiving runs for minutes while the writer commits: a restore point halfway, then until the WAL has moved
      // on by at least 3 segments since the base backup (pg_switch_wal adds none: the writer's own volume does).
      const segment = async (): Promise<number> =>
        withClient(
          s.pg.url,
          async (c) =>
            parseInt((await c.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f')).rows[0]!.f.slice(8), 16),
          s.pg.password,
        );
      const from = await segment();
      await sleep(WRITE_MS / 2);
      // A restore point between two of the writer's commits: recovery to it keeps exactly those before.
      restorePoint = await writer.between((c) => c.query("SELECT pg_create_restore_point('pitr_test_point')"));
      await sleep(WRITE_MS / 2);
      for (let waited = 0; (await segment()) < from + 3 && waited < 120; waited++) await sleep(1000);
    } finally {
      await writer.stop();
    }
    const commits = writer.commits().slice();
    assert.ok(commits.length > 100, `${commits.length} commits`);
    // Every commit reaches the archive (the open segment every flush); then the archiver stops, storing what it received.
    await sleep(3000);
    await archiver.stop();
    const segments = readdirSync(systemFolder(s.root)).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).length;
    t.diagnostic(`${commits.length} commits, ${segments} WAL segments archived whole`);
    assert.ok(segments >= 4, `${segments} segments: the targets should fall across several`);
    // The listing says what the base backup can restore to: up to the newest WAL stored.
    const listed = await dbflow(['backups', 'list', 'file://./repo', '--json'], { env: s.env, cwd: s.dir });
    assert.equal(listed.exitCode, 0, listed.stderr);
    const ranges = (JSON.parse(listed.stdout) as { backups: { restorable?: { from: string; to: string; gap?: string } }[] }).backups.map(
      (b) => b.restorable,
    );
    assert.equal(ranges.length, 1);
    assert.ok(ranges[0] && !ranges[0].gap && Date.parse(ranges[0].to) > Date.parse(ranges[0].from), JSON.stringify(ranges));
    const text = await dbflow(['backups', 'list', 'file://./repo'], { env: s.env, cwd: s.dir });
    assert.match(text.stdout, /^restorable: \S+ \(main\) to any time from \S+ to \S+, with the log in file:\/\/\S+\/repo\/wal\/\d+$/m);
    await commitTimes(s.pg.url, commits, s.pg.password);
    // Every restore below works without the source server.
    await asServerUser(path.join(s.pg.bin, 'pg_ctl'), ['stop', '-D', s.pg.data, '-m', 'immediate', '-w']);

    const restore = async (name: string, ...target: string[]): Promise<string> => {
      const datadir = path.join(s.dir, name);
      const r = await dbflow(
        ['restore', 'file://./repo', '--database', 'main', '--to-datadir', datadir, ...target, '--passphrase-file', s.passphraseFile],
        {
          env: s.env,
          cwd: s.dir,
        },
      );
      assert.equal(r.exitCode, 0, `${target.join(' ')}\n${r.stdout}${r.stderr}`);
      return datadir;
    };
    // Times between the base backup's end and the last commit, at random.
    const last = Number(commits[commits.length - 1]!.committedMicros! / 1000n);
    for (let i = 0; i < 4; i++) {
      const at = new Date(baseFinished!.getTime() + 1 + Math.floor(Math.random() * (last - baseFinished!.getTime())));
      const datadir = await restore(`at-${i}`, '--to-time', at.toISOString());
      const kept = commitsUpTo(commits, at);
      assert.deepEqual(
        await stateIn(datadir, s.pg.bin, s.pg.password),
        stateAfter(commits, kept),
        `recovered to ${at.toISOString()}: ${kept} commits`,
      );
    }
    const named = await restore('point', '--to-restore-point', 'pitr_test_point');
    assert.deepEqual(await stateIn(named, s.pg.bin, s.pg.password), stateAfter(commits, restorePoint!.committedBefore));
    const latest = await restore('latest', '--latest');
    assert.deepEqual(await stateIn(latest, s.pg.bin, s.pg.password), stateAfter(commits, commits.length));
  },
);

void test(
  'a damaged WAL file in the archive fails the restore before the server starts, naming it; nothing is left',
  { timeout: 180_000 },
  async (t) => {
    const s = await baseBackupSetup(t);
    if (!s) return;
    const archiver = archiving(t, s);
    const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    await withClient(s.pg.url, (c) => c.query('SELECT pg_switch_wal()'), s.pg.password);
    await sleep(3000);
    await archiver.stop();
    const folder = systemFolder(s.root);
    const segment = readdirSync(folder)
      .filter((f) => /^[0-9A-F]{24}\.zst\.pgp$/.test(f))
      .sort()
      .at(-1)!;
    const file = path.join(folder, segment);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
    const datadir = path.join(s.dir, 'restored');
    const r = await dbflow(['restore', 'file://./repo', '--to-datadir', datadir, '--latest', '--passphrase-file', s.passphraseFile], {
      env: s.env,
      cwd: s.dir,
    });
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${segment.replace(/\./g, '\\.')}.*(sha256|size)`));
    assert.equal(existsSync(datadir) && readdirSync(datadir).length > 0, false, 'no half-restored data directory');
  },
);

void test(
  'prune removes the WAL no kept base backup needs, and recovery from the kept one still holds every commit',
  { timeout: 240_000 },
  async (t) => {
    const s = await baseBackupSetup(t);
    if (!s) return;
    const archiver = archiving(t, s);
    const writer = await startWriter(s.pg.url, { password: s.pg.password, padBytes: 1000 });
    const runs: string[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        await sleep(2000);
        const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
        assert.equal(run.exitCode, 0, run.stdout + run.stderr);
        runs.push(/\(run ([0-9A-Za-z-]+)\)/.exec(run.stdout)![1]!);
      }
      await sleep(2000);
    } finally {
      await writer.stop();
    }
    await sleep(3000);
    await archiver.stop();
    const folder = systemFolder(s.root);
    const segments = (): string[] => readdirSync(folder).filter((f) => /^[0-9A-F]{24}\.json$/.test(f));
    const before = segments();
    const dry = await dbflow(['prune', 'file://./repo', '--keep-last', '1', '--dry-run', '--json'], { env: s.env, cwd: s.dir });
    assert.equal(dry.exitCode, 0, dry.stderr);
    const planned = (JSON.parse(dry.stdout) as { wal: { keep_from: string; files: string[] }[] }).wal;
    assert.equal(planned.length, 1, dry.stdout);
    const keepFrom = planned[0]!.keep_from;
    assert.deepEqual(segments(), before, 'a dry run deletes nothing');
    const pruned = await dbflow(['prune', 'file://./repo', '--keep-last', '1'], { env: s.env, cwd: s.dir });
    assert.equal(pruned.exitCode, 0, pruned.stdout + pruned.stderr);
    assert.match(
      pruned.stdout,
      new RegExp(`removed \\d+ objects of \\S+, the log files before ${keepFrom} and their records: no kept base needs them`),
    );
    const after = segments();
    assert.ok(after.length < before.length, `${before.length} → ${after.length} segments`);
    assert.ok(
      after.every((f) => f.slice(8, 24) >= keepFrom.slice(8)),
      'only segments from the kept base backup on remain',
    );
    assert.ok(!existsSync(path.join(s.dir, 'repo', runs[0]!, 'manifest.json')), 'the older base backup is gone');
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
    assert.deepEqual(await stateIn(datadir, s.pg.bin, s.pg.password), stateAfter(writer.commits(), writer.commits().length));
  },
);
