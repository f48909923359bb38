// `dbflow watch`: re-validates pipelines on save and prints their errors.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { spawnDbflow } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const good =
  'version: 1\nname: w\nsteps:\n  - { id: a, uses: rowcount-check, with: { restored: b, snapshot: b } }\n  - { id: b, uses: snapshot, with: { databases: [] } }\n';

test('watch reports a broken edit with file:line:col, then the fix', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'p.yaml');
  await new Promise((r) => setTimeout(r, 500));
  writeFileSync(file, 'version: 1\nname: w\nsteps:\n  - { id: a, uses: snapshott, with: {} }\n');
  const proc = spawnDbflow(['watch', dir]);
  let out = '';
  const seen = (re: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${out}`)), 30_000);
      const check = (): void => {
        if (re.test(out)) {
          clearTimeout(timer);
          proc.stdout.off('data', onData);
          resolve();
        }
      };
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        check();
      };
      proc.stdout.on('data', onData);
      check();
    });
  await seen(/p\.yaml:4:20: unknown step type "snapshott"\. Did you mean "snapshot"\?/);
  await new Promise((r) => setTimeout(r, 500)); // a person saves again after a moment
  writeFileSync(file, good.replace('databases: []', 'databases: [x]'));
  await seen(/unknown database "x"/);
  await new Promise((r) => setTimeout(r, 500));
  writeFileSync(
    file,
    'version: 1\nname: w\nsteps:\n  - { id: a, uses: noop_missing }\n'.replace(
      'noop_missing',
      'rowcount-check, with: { restored: a, snapshot: a }',
    ),
  );
  await seen(/itself/);
  proc.kill('SIGINT');
  const result = await proc;
  assert.equal(result.exitCode, 0);
});
