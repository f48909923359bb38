// A plugin written for plugin contract 1.1 (test/fixtures/plugins/contract-1.ts: a driver and a codec that take
// positional parameters) loads and works through dbflow's adapter in every command that calls them.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Manifest } from '../../src/index.js';
import { runIdOf } from '../helpers/backup-run.js';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'contract-1.ts');

test('a 1.1 plugin backs up, restore-tests, dry-runs and restores with its driver and codec', { timeout: 120_000 }, async (t) => {
  const dir = tmpDir(t);
  const data = { orders: [{ id: 1 }, { id: 2 }, { id: 3 }], items: [{ sku: 'a' }] };
  writeFileSync(path.join(dir, 'app.json'), JSON.stringify(data));
  writeFileSync(
    path.join(dir, 'p.yaml'),
    `version: 1
name: old
plugins: [${JSON.stringify(PLUGIN)}]
databases:
  app: { driver: jsondb, url: "jsondb:${path.join(dir, 'app.json')}" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: scramble, uses: xor, input: dump, with: { key: 90 } }
  - { id: upload, uses: upload, input: scramble, with: { to: "file://./backups/{{ run.id }}/app.json.xor" } }
  - { id: restore_test, uses: restore-test, with: { from: upload } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`,
  );
  const run = (args: string[]) => dbflow(args, { cwd: dir, env: { XDG_CONFIG_HOME: dir, DBFLOW_PLUGINS: undefined } });

  const made = await run(['run', 'p.yaml']);
  assert.equal(made.exitCode, 0, `${made.stdout}\n${made.stderr}`);
  assert.match(made.stdout, /> app\.json/, "the summary's stock restore is the driver's");
  const id = runIdOf(made.stdout);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'backups', id, 'manifest.json'), 'utf8')) as Manifest;
  assert.equal(manifest.status, 'verified');
  assert.deepEqual(manifest.databases.app?.tables, { orders: { rows: 3 }, items: { rows: 1 } });
  assert.deepEqual(
    manifest.artifacts.map((a) => a.layers),
    [[{ codec: 'xor', key: 90 }]],
  );
  assert.equal(manifest.plugins?.find((p) => p.name === 'contract-1')?.contract, '1.1');

  const dry = await run(['run', '--dry-run', 'p.yaml']);
  assert.equal(dry.exitCode, 0, `${dry.stdout}\n${dry.stderr}`);
  assert.match(dry.stdout, /jsondb 1/, "the driver's preflight ran");

  const target = path.join(dir, 'restored.json');
  const restored = await run(['restore', `file://./backups/${id}`, '--to', `jsondb:${target}`, '--create']);
  assert.equal(restored.exitCode, 0, `${restored.stdout}\n${restored.stderr}`);
  assert.match(restored.stdout, /✔ 2 tables, 4 rows equal to the backup's counts/);
  assert.deepEqual(JSON.parse(readFileSync(target, 'utf8')), data);
});
