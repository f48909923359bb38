// A storage key rendered from templates stays inside its repository: a value with "..", ".", "//", a leading "/" or a
// control character fails the upload step, naming it and the key (secrets masked), before anything is written.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { builtinRegistry } from '../../src/index.js';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { quickstartCopy } from '../helpers/quickstart-copy.js';
import { requireS3, setEnv, stopS3 } from '../helpers/s3.js';
import { startSshd } from '../helpers/sshd.js';
import { filesUnder } from '../helpers/repo.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

const TO = '{{ vars.repo }}/{{ env.X }}';

// The failed run's output: exit 1, the upload named as the failing step with the rendered key and the problem.
function assertRefused(run: { exitCode: number; stdout: string; stderr: string }, key: string, problem: RegExp): void {
  const output = run.stdout + run.stderr;
  assert.equal(run.exitCode, 1, output);
  assert.ok(output.includes(`step "upload": the upload's key "${key}"`), `names the step and the key ${key}:\n${output}`);
  assert.match(output, problem);
  assert.match(output, /^ {2}failed {4}upload\b/m, `the summary names the upload first:\n${output}`);
  assert.equal(hasStackTrace(output), false, output);
}

void test('file://: keys that climb out, or have ".", "//" or control characters, fail the upload; nothing is written anywhere', async (t) => {
  const top = tmpDir(t, 'dbflow-keys-');
  const cwd = path.join(top, 'a', 'b', 'c');
  mkdirSync(cwd, { recursive: true });
  const file = quickstartCopy(cwd, { to: TO });
  const cases: [string, string, RegExp][] = [
    ['../../../escaped/x', `file://${cwd}/backups/quickstart/../../../escaped/x`, /has a "\.\." segment/],
    ['/etc/escaped', `file://${cwd}/backups/quickstart//etc/escaped`, /has an empty segment/],
    ['run/./x', `file://${cwd}/backups/quickstart/run/./x`, /has a "\." segment/],
    ['run/x\ny', `file://${cwd}/backups/quickstart/run/x\\u000ay`, /control character U\+000A/],
  ];
  for (const [x, key, problem] of cases) {
    const run = await dbflow(['run', file], { cwd, env: { X: x } });
    assertRefused(run, key, problem);
  }
  // Nothing outside the pipeline's folder, nothing in the repository (no artifact, no manifest).
  assert.deepEqual(
    filesUnder(top).filter((f) => !f.startsWith(path.join('a', 'b', 'c'))),
    [],
  );
  assert.deepEqual(filesUnder(path.join(cwd, 'backups')), []);
  assert.equal(existsSync('/etc/escaped'), false);

  // A secret that fills the key is masked in the message.
  const secretFile = quickstartCopy(cwd, { to: '{{ vars.repo }}/{{ secrets.passphrase }}/{{ env.X }}' });
  const masked = await dbflow(['run', secretFile], { cwd, env: { X: '../x' } });
  assertRefused(masked, `file://${cwd}/backups/quickstart/***/../x`, /has a "\.\." segment/);
  assert.doesNotMatch(masked.stdout + masked.stderr, /dbflow-quickstart-demo-passphrase/);

  // An ordinary key still works, with a relative repository above the pipeline's folder.
  const fine = await dbflow(['run', quickstartCopy(cwd, { repo: 'file://../../backups/{{ pipeline.name }}', to: TO })], {
    cwd,
    env: { X: 'run-1/demo.pgp' },
  });
  assert.equal(fine.exitCode, 0, fine.stdout + fine.stderr);
  assert.deepEqual(filesUnder(path.join(top, 'a', 'backups')).sort(), ['quickstart/run-1/demo.pgp', 'quickstart/run-1/manifest.json']);
});

void test('s3://: a key that climbs out of its prefix fails the upload; the bucket stays empty', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { repo: `s3://${bucket}/backups/{{ pipeline.name }}`, to: TO });
  for (const [x, problem] of [
    ['../../escaped/x', /has a "\.\." segment/],
    ['/x', /has an empty segment/],
  ] as const) {
    const run = await dbflow(['run', file], { cwd, env: { ...s3.env, X: x } });
    assertRefused(run, `s3://${bucket}/backups/quickstart/${x}`, problem);
  }
  t.after(setEnv(s3.env));
  const storage = (await builtinRegistry()).storages.get('s3')!;
  assert.deepEqual(await storage.list(`s3://${bucket}/`), []);
});

void test('sftp://: a key that climbs out of its folder fails the upload; nothing is written on the server', async (t) => {
  const sshd = await startSshd(t);
  if (!sshd) return;
  const top = tmpDir(t, 'dbflow-sftp-keys-');
  const repo = path.join(top, 'repo');
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { repo: sshd.url(`${repo}/{{ pipeline.name }}`), to: TO });
  const run = await dbflow(['run', file], { cwd, env: { ...sshd.env, X: '../../escaped/x' } });
  assertRefused(run, `${sshd.url(repo)}/quickstart/../../escaped/x`, /has a "\.\." segment/);
  assert.deepEqual(filesUnder(top), []);
});
