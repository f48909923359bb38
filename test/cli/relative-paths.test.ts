// One rule for relative paths: inside a pipeline they are relative to the pipeline file, and the state
// folder has one home, so cron (from $HOME) and a user (from the clone) back up to, and see, the same place.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const PIPELINE = `version: 1
name: rel
rpo: 1h
secrets:
  passphrase: { file: secrets/passphrase.txt }
vars:
  repo: file://./backups/{{ pipeline.name }}
databases:
  app: { driver: sqlite, url: "sqlite:./data/app.db" }
steps:
  - { id: seed, uses: sqlite-seed, with: { database: app, rows: 50 } }
  - { id: snapshot, uses: snapshot, needs: seed, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: encrypt, uses: encrypt, input: dump, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "{{ vars.repo }}/{{ run.id }}/app.sqlite3.pgp" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;

it('a pipeline run from its clone and from another folder writes to one place, and runs, status and backups list see both', async (t) => {
  const root = tmpDir(t);
  const repo = path.join(root, 'repo');
  const elsewhere = path.join(root, 'home');
  mkdirSync(path.join(repo, 'pipelines', 'secrets'), { recursive: true });
  mkdirSync(path.join(repo, 'pipelines', 'data'));
  mkdirSync(elsewhere);
  writeFileSync(path.join(repo, 'pipelines', 'p.yaml'), PIPELINE);
  writeFileSync(path.join(repo, 'pipelines', 'secrets', 'passphrase.txt'), 'relative-paths-passphrase\n');
  // No --state-dir, no DBFLOW_STATE_DIR: the default home, under this test's own HOME.
  const env = { HOME: elsewhere, XDG_STATE_HOME: undefined, DBFLOW_STATE_DIR: '' };

  const fromRepo = await dbflow(['run', 'pipelines/p.yaml'], { cwd: repo, env });
  assert.equal(fromRepo.exitCode, 0, fromRepo.stderr);
  const fromHome = await dbflow(['run', '../repo/pipelines/p.yaml'], { cwd: elsewhere, env });
  assert.equal(fromHome.exitCode, 0, fromHome.stderr);

  const backups = path.join(repo, 'pipelines', 'backups', 'rel');
  assert.equal(readdirSync(backups).length, 2, 'both runs stored their backup beside the pipeline');
  for (const id of readdirSync(backups)) assert.ok(existsSync(path.join(backups, id, 'manifest.json')), `${id} has its manifest`);
  assert.ok(existsSync(path.join(repo, 'pipelines', 'data', 'app.db')), 'the sqlite: URL is relative to the pipeline');
  for (const stray of [
    path.join(repo, 'backups'),
    path.join(elsewhere, 'backups'),
    path.join(repo, 'data'),
    path.join(elsewhere, 'data'),
    path.join(repo, '.dbflow'),
    path.join(elsewhere, '.dbflow'),
  ]) {
    assert.equal(existsSync(stray), false, `nothing written to ${stray}`);
  }
  const state = path.join(elsewhere, '.local', 'state', 'dbflow');
  assert.equal(readdirSync(path.join(state, 'runs')).length, 2, 'both run records in ~/.local/state/dbflow');

  for (const [cwd, file] of [
    [repo, 'pipelines/p.yaml'],
    [elsewhere, '../repo/pipelines/p.yaml'],
  ] as const) {
    const runs = await dbflow(['runs', '--json'], { cwd, env });
    assert.deepEqual(
      (JSON.parse(runs.stdout) as { pipeline: string; status: string }[]).map((r) => [r.pipeline, r.status]),
      [
        ['rel', 'success'],
        ['rel', 'success'],
      ],
      `runs from ${cwd}`,
    );
    const status = await dbflow(['status', file, '--json'], { cwd, env });
    assert.equal(status.exitCode, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { state: string }[])[0]?.state, 'ok', `status from ${cwd}`);
    const list = await dbflow(['backups', 'list', `file://${backups}`, '--json'], { cwd, env });
    assert.equal(list.exitCode, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as { backups: unknown[] }).backups.length, 2, `backups list from ${cwd}`);
    assert.equal(hasStackTrace(runs.stderr + status.stderr + list.stderr), false);
  }
  // XDG_STATE_HOME, when set, is the home instead.
  const xdg = path.join(root, 'xdg');
  const none = await dbflow(['runs', '--json'], { cwd: repo, env: { ...env, XDG_STATE_HOME: xdg } });
  assert.deepEqual(JSON.parse(none.stdout), []);
});
