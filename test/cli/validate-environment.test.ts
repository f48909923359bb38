// What validation says about the environment: unset and empty secrets, and `validate --no-env` for CI.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const UNSET_DB = 'DBFLOW_TEST_UNSET_DB_PATH_71c2';
const PASS_VAR = 'DBFLOW_TEST_PASSPHRASE_71c2';

// A complete backup of a SQLite database; the passphrase comes from `secret`.
function pipeline(dir: string, secret: string, dbUrl = 'sqlite:./app.db'): string {
  const file = path.join(dir, 'nightly.yaml');
  writeFileSync(
    file,
    `version: 1
name: nightly
secrets:
  passphrase: ${secret}
databases:
  app: { driver: sqlite, url: "${dbUrl}" }
steps:
  - { id: seed, uses: sqlite-seed, with: { database: app, rows: 10 } }
  - { id: snapshot, uses: snapshot, needs: seed, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: encrypt, uses: encrypt, input: dump, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/app.pgp" } }
`,
  );
  return file;
}

it('an empty passphrase is refused before anything runs, at the secret declaration (run and validate)', async (t) => {
  const dir = tmpDir(t);
  const file = pipeline(dir, `{ env: ${PASS_VAR} }`);
  const state = path.join(dir, 'state');
  const env = { [PASS_VAR]: '' };
  const run = await dbflow(['run', file, '--state-dir', state], { cwd: dir, env });
  assert.equal(run.exitCode, 2, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(
      `^${file}:4:\\d+: secret "passphrase" reads environment variable "${PASS_VAR}", which is empty; set it to the secret's value\\.\\n4 \\|   passphrase: \\{ env: ${PASS_VAR} \\}\\n +\\| +\\^`,
      'm',
    ),
  );
  assert.equal(hasStackTrace(run.stderr), false, run.stderr);
  assert.equal(existsSync(path.join(dir, 'app.db')), false, 'the seed step did not run');
  assert.equal(existsSync(path.join(dir, 'backups')), false, 'nothing was uploaded');
  assert.deepEqual(existsSync(path.join(state, 'runs')) ? readdirSync(path.join(state, 'runs')) : [], [], 'no run record');

  const validate = await dbflow(['validate', file], { cwd: dir, env });
  assert.equal(validate.exitCode, 2, validate.stderr);
  assert.match(validate.stderr, /:4:\d+: secret "passphrase" reads environment variable "DBFLOW_TEST_PASSPHRASE_71c2", which is empty/);

  // The same from a secret file that holds only a line break.
  writeFileSync(path.join(dir, 'pass.txt'), '\n');
  const fromFile = await dbflow(['validate', pipeline(dir, '{ file: pass.txt }')], { cwd: dir });
  assert.equal(fromFile.exitCode, 2, fromFile.stderr);
  assert.match(fromFile.stderr, /:4:\d+: secret "passphrase" reads file "pass.txt", which is empty; write the secret's value into it\./);
});

it('validate --no-env checks everything but the environment; without it the unset variables are named', async (t) => {
  const dir = tmpDir(t);
  const file = pipeline(dir, `{ env: ${PASS_VAR} }`, `{{ env.${UNSET_DB} }}`);
  const env = { [PASS_VAR]: undefined, [UNSET_DB]: undefined };
  const offline = await dbflow(['validate', '--no-env', file], { cwd: dir, env });
  assert.equal(offline.exitCode, 0, offline.stderr);
  assert.match(offline.stdout, /nightly\.yaml: ok \(5 steps\)/);

  const full = await dbflow(['validate', file], { cwd: dir, env });
  assert.equal(full.exitCode, 2, full.stderr);
  assert.match(full.stderr, new RegExp(`secret "passphrase" reads environment variable "${PASS_VAR}", which is not set`));
  assert.match(full.stderr, new RegExp(`environment variable "${UNSET_DB}" is not set`));

  // An unset secret file too; other mistakes are still found offline.
  const broken = pipeline(dir, '{ file: missing.txt }');
  writeFileSync(broken, `${readFileSync(broken, 'utf8')}  - { id: extra, uses: compres }\n`);
  const offlineBroken = await dbflow(['validate', '--no-env', broken], { cwd: dir });
  assert.equal(offlineBroken.exitCode, 2, offlineBroken.stderr);
  assert.match(offlineBroken.stderr, /unknown step type "compres"\. Did you mean "compress"\?/);
  assert.doesNotMatch(offlineBroken.stderr, /missing\.txt/);
});
