// A killed `dbflow restore` or `verify` leaves its temporary folder (a passfile in it, say): the next prune or run removes
// it once the command's process is gone, and never the folder of a command still running.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { execa } from 'execa';
import { dbflow } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

it('prune removes the temporary folders of killed restore and verify commands, not those of live ones', async (t) => {
  const dir = tmpDir(t);
  // A process that has ended: its pid is free (and, on a machine this size, not reused within the test).
  const gone = execa('sleep', ['0']);
  const deadPid = gone.pid!;
  await gone;
  // The command gets a temporary folder of its own: a prune or run of another test, running meanwhile, reaps the shared one too.
  const tmp = path.join(dir, 'tmp');
  const dead = path.join(tmp, `dbflow-restore-pid${deadPid}-${path.basename(dir)}`);
  const live = path.join(tmp, `dbflow-verify-pid${process.pid}-${path.basename(dir)}`);
  for (const folder of [dead, live]) {
    mkdirSync(path.join(folder, 'pgpass-x'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(folder, 'pgpass-x', 'pgpass'), '*:*:*:*:secret\n', { mode: 0o600 });
    t.after(() => execa('rm', ['-rf', folder]));
  }
  mkdirSync(path.join(dir, 'repo'));
  writeFileSync(path.join(dir, 'repo', 'stray'), 'x');

  const r = await dbflow(['prune', `file://${dir}/repo`, '--keep-last', '1', '--state-dir', path.join(dir, 'state')], {
    cwd: dir,
    env: { TMPDIR: tmp },
  });
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  assert.equal(existsSync(dead), false, `the folder of the killed command is removed:\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`removed ${dead.replace(/[.]/g, '\\.')}`));
  assert.equal(existsSync(path.join(live, 'pgpass-x', 'pgpass')), true, 'the folder of a live command is kept');
});
