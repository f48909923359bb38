// --audit-repository: the audit record of run, verify and prune also lands in the repository, one object per command, outside the backups.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readAudit, type AuditRecord } from '../../src/ops/audit.js';
import { writePipeline } from '../helpers/backup-run.js';
import { dbflow } from '../helpers/cli.js';
import { OPS_PASSPHRASE, sqlitePipeline } from '../helpers/ops.js';
import { tmpDir } from '../helpers/tmp.js';

const env = {
  TEST_PASSPHRASE: OPS_PASSPHRASE,
  DBFLOW_STATE_DIR: undefined,
  DBFLOW_PASSPHRASE: undefined,
  DBFLOW_AUDIT_REPOSITORY: undefined,
};

test('audit records in the repository: the same record as audit.jsonl, not listed as a backup or an orphan, never pruned', async (t) => {
  const cwd = tmpDir(t);
  const stateDir = path.join(cwd, '.dbflow');
  const repo = path.join(cwd, 'backups', 'shop');
  const auditDir = path.join(repo, 'dbflow-audit');
  const stored = (): AuditRecord[] =>
    existsSync(auditDir)
      ? readdirSync(auditDir)
          .sort()
          .map((f) => JSON.parse(readFileSync(path.join(auditDir, f), 'utf8')) as AuditRecord)
      : [];
  const file = writePipeline(cwd, sqlitePipeline('shop'), 'shop.yaml');
  const run = async (args: string[], extra: Record<string, string> = {}): Promise<void> => {
    const r = await dbflow(args, { cwd, env: { ...env, ...extra } });
    assert.equal(r.exitCode, 0, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /warning/, r.stderr);
  };

  await run(['run', file]);
  assert.deepEqual(stored(), [], 'nothing in the repository without --audit-repository');
  await run(['run', file, '--audit-repository']);
  assert.equal(stored().length, 1);
  assert.deepEqual(stored()[0], readAudit(stateDir).at(-1), 'the stored record is the audit.jsonl line');
  assert.equal(stored()[0]!.repository, `file://${repo}`);

  // verify (by the environment variable) and prune (by the flag) store theirs too.
  const backup = JSON.parse((await dbflow(['backups', 'list', 'file://./backups/shop', '--json'], { cwd, env })).stdout) as {
    backups: { url: string }[];
    orphans: { folders: unknown[] };
  };
  assert.equal(backup.backups.length, 2, 'two backups listed');
  assert.deepEqual(backup.orphans.folders, [], 'audit records are not orphans');
  await run(['verify', backup.backups[0]!.url], { DBFLOW_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_AUDIT_REPOSITORY: '1' });
  await run(['prune', 'file://./backups/shop', '--keep-last', '1', '--audit-repository']);
  assert.deepEqual(
    stored().map((r) => r.command),
    ['run', 'verify', 'prune'],
  );
  assert.deepEqual(stored(), readAudit(stateDir).slice(-3), 'the same records as the last three lines of audit.jsonl');
  const after = JSON.parse((await dbflow(['backups', 'list', 'file://./backups/shop', '--json'], { cwd, env })).stdout) as {
    backups: unknown[];
    orphans: { folders: unknown[] };
  };
  assert.equal(after.backups.length, 1, 'prune removed one backup');
  assert.deepEqual(after.orphans.folders, []);
  assert.equal(stored().length, 3, 'prune left the audit records alone');
});
