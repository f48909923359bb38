// The sqlite driver's preflight: the database file is readable, the temp folder writable; a file still to be made is a note.
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { IntegrityError, type PreflightReport } from '../../src/index.js';
import { repoRoot } from '../helpers/cli.js';
import { grantsOf, preflightOf } from '../helpers/preflight.js';
import { createLiveDatabase } from '../helpers/sqlite-fixtures.js';
import { tmpDir } from '../helpers/tmp.js';

const helper = path.join(repoRoot, 'test', 'helpers', 'preflight.ts');

void test('a readable database file: nothing missing; server and user named', async (t) => {
  const file = path.join(tmpDir(t), 'app.db');
  createLiveDatabase(file, 100);
  const report = await preflightOf('sqlite', `sqlite:${file}`);
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.notes, []);
  assert.match(report.server ?? '', /^SQLite 3\.\d+\.\d+$/);
  assert.equal(report.user, os.userInfo().username);
});

void test('a file that does not exist yet is a note, not an error', async (t) => {
  const file = path.join(tmpDir(t), 'later.db');
  const report = await preflightOf('sqlite', `sqlite:${file}`);
  assert.deepEqual(report.missing, []);
  assert.match(
    report.notes.join('\n'),
    /does not exist yet: a step before the snapshot must create it \(as the quickstart's sqlite-seed step does\)/,
  );
});

void test('a file that is not a database fails, naming it', async (t) => {
  const file = path.join(tmpDir(t), 'notes.db');
  writeFileSync(file, 'these are not the bytes of a database, '.repeat(200));
  await assert.rejects(
    preflightOf('sqlite', `sqlite:${file}`),
    (err: Error) => err instanceof IntegrityError && err.message.includes(file),
  );
});

void test('a file the user may not read: the grant names the user and the file', async (t) => {
  const dir = tmpDir(t);
  chmodSync(dir, 0o755);
  const file = path.join(dir, 'secret.db');
  createLiveDatabase(file, 10);
  if (process.getuid?.() !== 0) {
    chmodSync(file, 0o200);
    const report = await preflightOf('sqlite', `sqlite:${file}`);
    assert.deepEqual(grantsOf(report), [`setfacl -m u:${os.userInfo().username}:r '${file}'`]);
    return;
  }
  // Root reads any file: the check runs as nobody, for a file only root may read.
  chmodSync(file, 0o600);
  const code = `import { preflightOf } from ${JSON.stringify(helper)}; console.log(JSON.stringify(await preflightOf('sqlite', ${JSON.stringify(`sqlite:${file}`)})));`;
  const r = await execa('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { HOME: os.tmpdir() },
    reject: false,
  });
  if (r.exitCode !== 0 && /runuser|nobody/.test(r.stderr)) return void t.skip(`cannot run as nobody: ${r.stderr}`);
  assert.equal(r.exitCode, 0, r.stderr);
  const report = JSON.parse(r.stdout) as PreflightReport;
  assert.deepEqual(report.missing, [{ need: `the snapshot reads the database file ${file}`, grant: `setfacl -m u:nobody:r '${file}'` }]);
  assert.equal(report.user, 'nobody');
});
