// "Restore without dbflow": the printed stock command, pasted into bash as is, restores the artifact even when its
// folder's name holds shell syntax ($(…), backquotes, quotes, spaces), and runs none of it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { execa } from 'execa';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { quickstartCopy } from '../helpers/quickstart-copy.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { startSshd } from '../helpers/sshd.js';
import { requireTool } from '../helpers/step-context.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

// A folder name that runs `touch pwned-*` in the current folder wherever a shell reads it unquoted.
const HOSTILE = `it's a $(touch pwned-dollar) \`touch pwned-tick\` "q" $HOME ; touch pwned-semi`;
const passphraseFile = path.join(repoRoot, 'pipelines', 'quickstart.passphrase');

// The "restore without dbflow" line of a run's summary.
function stockLine(stdout: string): string {
  const line = /restore without dbflow:\n {4}(.+)$/m.exec(stdout)?.[1];
  assert.ok(line, `a stock restore command:\n${stdout}`);
  return line;
}

// Runs `command` with bash in `cwd`, after `prelude` (shell functions that give the stock tools the test's keys).
async function pasted(t: TestContext, cwd: string, command: string, prelude = ''): Promise<void> {
  const home = tmpDir(t, 'dbflow-gnupg-');
  const gpg = `gpg() { command gpg --batch --quiet --homedir ${home} --pinentry-mode loopback --passphrase-file ${passphraseFile} "$@"; }`;
  const r = await execa('bash', ['-o', 'pipefail', '-c', `${gpg}\n${prelude}\n${command}`], { cwd, reject: false });
  assert.equal(r.exitCode, 0, `${command}\n${r.stderr}`);
  assert.deepEqual(
    readdirSync(cwd).filter((f) => f.startsWith('pwned')),
    [],
    'no part of the name ran',
  );
}

// The restored SQLite database holds the demo's tables.
async function assertRestored(file: string): Promise<void> {
  assert.ok(existsSync(file), `${file} was written`);
  const { stdout } = await execa('sqlite3', [file, 'PRAGMA integrity_check; SELECT count(*) FROM customers;']);
  assert.deepEqual(stdout.trim().split('\n'), ['ok', '2500']);
}

void test('file://: the printed command decrypts the artifact from a hostile folder name and runs none of it', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg')) || !(await requireTool(t, 'zstd', 'zstd'))) return;
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { to: `{{ vars.repo }}/${HOSTILE}/demo.sqlite3.zst.pgp` });
  const run = await dbflow(['run', file], { cwd });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  const line = stockLine(run.stdout);
  assert.ok(existsSync(path.join(cwd, 'backups', 'quickstart', HOSTILE, 'demo.sqlite3.zst.pgp')));
  await pasted(t, cwd, line);
  await assertRestored(path.join(cwd, 'demo.sqlite3'));
});

void test('s3://: the printed aws command gets the object URL as one argument, whatever its key holds', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { repo: `s3://${bucket}/backups`, to: `{{ vars.repo }}/${HOSTILE}/demo.sqlite3.zst.pgp` });
  const run = await dbflow(['run', file], { cwd, env: s3.env });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  const line = stockLine(run.stdout);
  // The AWS CLI is not needed to check the quoting: a function in its place records its arguments.
  const args = path.join(cwd, 'aws-args');
  await pasted(t, cwd, line.split(' | ')[0]!, `aws() { printf '%s\\n' "$@" > ${args}; }`);
  const { stdout } = await execa('cat', [args]);
  assert.deepEqual(stdout.split('\n'), ['s3', 'cp', `s3://${bucket}/backups/${HOSTILE}/demo.sqlite3.zst.pgp`, '-']);
});

void test('sftp://: the printed ssh command reads the artifact from a hostile folder name and runs none of it', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg')) || !(await requireTool(t, 'zstd', 'zstd'))) return;
  const sshd = await startSshd(t);
  if (!sshd) return;
  const repo = tmpDir(t, 'dbflow-sftp-repo-');
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { repo: sshd.url(repo), to: `{{ vars.repo }}/${HOSTILE}/demo.sqlite3.zst.pgp` });
  const run = await dbflow(['run', file], { cwd, env: sshd.env });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  const line = stockLine(run.stdout);
  assert.match(line, /^ssh -p \d+ /);
  const ssh = `ssh() { command ssh -o BatchMode=yes -i ${sshd.userKey} -o UserKnownHostsFile=${sshd.knownHosts} "$@"; }`;
  await pasted(t, cwd, line, ssh);
  await assertRestored(path.join(cwd, 'demo.sqlite3'));
  assert.deepEqual(
    readdirSync(sshd.home).filter((f) => f.startsWith('pwned')),
    [],
    'nothing ran on the server',
  );
});
