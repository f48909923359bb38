// The quickstart through the CLI, and its artifact restored with stock tools alone.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { requireTool } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

const passphraseFile = path.join(repoRoot, 'pipelines', 'quickstart.passphrase');

test('quickstart: a verified backup that gpg, zstd and sqlite3 restore alone', async (t) => {
  for (const [tool, pkg] of [
    ['gpg', 'gnupg'],
    ['zstd', 'zstd'],
    ['sqlite3', 'sqlite3'],
  ] as const) {
    if (!(await requireTool(t, tool, pkg))) return;
  }
  // A copy of the clone's pipelines/ folder, run from the clone: the quickstart writes beside the pipeline file.
  const cwd = tmpDir(t);
  mkdirSync(path.join(cwd, 'pipelines'));
  for (const f of ['quickstart.yaml', 'quickstart.passphrase'])
    copyFileSync(path.join(repoRoot, 'pipelines', f), path.join(cwd, 'pipelines', f));
  const run = await dbflow(['run', 'pipelines/quickstart.yaml'], { cwd });
  assert.equal(run.exitCode, 0, run.stderr);
  assert.match(run.stdout, /✔ quickstart: success/);
  assert.match(run.stdout, /verified {2}demo {2}rowcount: 3 tables, \d+ rows equal/);
  const artifactUrl = /artifact {2}demo {2}(\S+)/.exec(run.stdout)?.[1];
  assert.ok(artifactUrl, run.stdout);
  const manifestUrl = /manifest {2}(\S+)/.exec(run.stdout)?.[1];
  assert.ok(manifestUrl);

  const artifact = artifactUrl.replace(/^file:\/\//, '');
  assert.equal(
    path.dirname(path.dirname(artifact)),
    path.join(cwd, 'pipelines', 'backups', 'quickstart'),
    'the backup is beside the pipeline file, in pipelines/backups/quickstart/<run-id>/',
  );
  const manifest = JSON.parse(readFileSync(path.resolve(cwd, manifestUrl.replace(/^file:\/\//, '')), 'utf8')) as {
    status: string;
    databases: Record<string, { tables: Record<string, { rows: number }> }>;
    artifacts: { path: string; sha256: string }[];
  };
  assert.equal(manifest.status, 'verified');
  assert.equal(manifest.artifacts[0]?.path, path.basename(artifact));
  assert.doesNotMatch(JSON.stringify(manifest), /dbflow-quickstart-demo-passphrase/);

  // gpg --decrypt | zstd -d > restored.sqlite3, as the README says.
  const gnupgHome = tmpDir(t);
  const restored = path.join(cwd, 'restored.sqlite3');
  await execa({
    shell: false,
  })`gpg --batch --homedir ${gnupgHome} --pinentry-mode loopback --passphrase-file ${passphraseFile} --decrypt ${artifact}`
    .pipe`zstd -d -q -o ${restored}`;
  const expected = manifest.databases.demo!.tables;
  for (const [table, { rows }] of Object.entries(expected)) {
    const { stdout } = await execa('sqlite3', [restored, `SELECT count(*) FROM "${table}"`]);
    assert.equal(Number(stdout.trim()), rows, `rows of ${table}`);
  }
  const { stdout: check } = await execa('sqlite3', [restored, 'PRAGMA integrity_check']);
  assert.equal(check.trim(), 'ok');

  // The run is listed with its status.
  const runs = await dbflow(['runs', '--json'], { cwd });
  const listed = JSON.parse(runs.stdout) as { pipeline: string; status: string }[];
  assert.deepEqual(
    listed.map((r) => [r.pipeline, r.status]),
    [['quickstart', 'success']],
  );
});
