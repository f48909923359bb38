// What a backup creates on file:// and sftp:// is private (artifact and manifest 0600, folders 0700) unless the upload's
// `storage: { mode: "0640" }` says otherwise; then the manifest and the folders follow the artifact's mode.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { quickstartCopy } from '../helpers/quickstart-copy.js';
import { startSshd } from '../helpers/sshd.js';
import { tmpDir } from '../helpers/tmp.js';

const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8).padStart(4, '0');

// The modes of a backup's artifact, manifest and the folders the run made below `repo`.
function modesOfBackup(repo: string, stdout: string): { artifact: string; manifest: string; folders: string[] } {
  const runId = /\(run ([0-9A-Za-z-]+)\)/.exec(stdout)?.[1];
  assert.ok(runId, stdout);
  const folder = path.join(repo, 'quickstart', runId);
  return {
    artifact: modeOf(path.join(folder, 'demo.sqlite3.zst.pgp')),
    manifest: modeOf(path.join(folder, 'manifest.json')),
    folders: [repo, path.join(repo, 'quickstart'), folder].map(modeOf),
  };
}

void test('file://: artifacts, manifests and new folders are 0600/0700 by default, as with.storage.mode asks otherwise', async (t) => {
  const cwd = tmpDir(t);
  const repo = path.join(cwd, 'repo');
  const run = await dbflow(['run', quickstartCopy(cwd, { repo: `file://${repo}/{{ pipeline.name }}` })], { cwd });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.deepEqual(modesOfBackup(repo, run.stdout), { artifact: '0600', manifest: '0600', folders: ['0700', '0700', '0700'] });

  const shared = path.join(cwd, 'shared');
  const file = quickstartCopy(cwd, { repo: `file://${shared}/{{ pipeline.name }}`, storage: '{ mode: "0640" }' });
  const group = await dbflow(['run', file], { cwd });
  assert.equal(group.exitCode, 0, group.stdout + group.stderr);
  assert.deepEqual(modesOfBackup(shared, group.stdout), { artifact: '0640', manifest: '0640', folders: ['0750', '0750', '0750'] });

  // A mode that is not a quoted octal string, or that takes the owner's own access, is refused before anything is written.
  for (const [mode, message] of [
    [
      '640',
      /mode in the upload's storage settings for "file:\/\/[^"]+" is 640; write the permission bits as a quoted octal string, e.g\. mode: "0640"\./,
    ],
    ['"0440"', /is "0440"; the owner must keep read and write/],
    ['"0640", acl: x', /the file storage takes only "mode" in the upload's storage settings for "file:\/\/[^"]+"; remove "acl"\./],
  ] as const) {
    const bad = path.join(cwd, `bad-${mode.length}`);
    const refused = await dbflow(
      ['run', quickstartCopy(cwd, { repo: `file://${bad}/{{ pipeline.name }}`, storage: `{ mode: ${mode} }` })],
      { cwd },
    );
    assert.equal(refused.exitCode, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, message);
    assert.throws(() => statSync(bad), /ENOENT/, 'nothing was written');
  }
});

void test('sftp://: artifacts, manifests and new folders are 0600/0700 on the server by default, as with.storage.mode asks otherwise', async (t) => {
  const sshd = await startSshd(t);
  if (!sshd) return;
  const top = tmpDir(t, 'dbflow-sftp-modes-');
  const cwd = tmpDir(t);
  const repo = path.join(top, 'private');
  const run = await dbflow(['run', quickstartCopy(cwd, { repo: sshd.url(`${repo}/{{ pipeline.name }}`) })], { cwd, env: sshd.env });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.deepEqual(modesOfBackup(repo, run.stdout), { artifact: '0600', manifest: '0600', folders: ['0700', '0700', '0700'] });

  const shared = path.join(top, 'shared');
  const file = quickstartCopy(cwd, { repo: sshd.url(`${shared}/{{ pipeline.name }}`), storage: '{ mode: "0644" }' });
  const group = await dbflow(['run', file], { cwd, env: sshd.env });
  assert.equal(group.exitCode, 0, group.stdout + group.stderr);
  assert.deepEqual(modesOfBackup(shared, group.stdout), { artifact: '0644', manifest: '0644', folders: ['0755', '0755', '0755'] });
});
