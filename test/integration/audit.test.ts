// The audit trail: run, verify, restore and prune each append one line to <state dir>/audit.jsonl; never a secret.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { dbflowVersion } from '../../src/engine/versions.js';
import { readAudit, withoutCredentials, type AuditRecord } from '../../src/ops/audit.js';
import { writePipeline } from '../helpers/backup-run.js';
import { dbflow, repoRoot } from '../helpers/cli.js';
import { failingPipeline, OPS_PASSPHRASE, resultsIn, sqlitePipeline } from '../helpers/ops.js';
import { tmpDir } from '../helpers/tmp.js';

const env = { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: undefined, DBFLOW_PASSPHRASE: undefined };
const URL_PASSWORD = 'hunter2-in-the-url';

test('audit: one line per run, verify, restore and prune, with who, where and how it ended; no passphrase, no password', async (t) => {
  const cwd = tmpDir(t);
  const stateDir = path.join(cwd, '.dbflow');
  const passphraseFile = path.join(cwd, 'passphrase');
  writeFileSync(passphraseFile, `${OPS_PASSPHRASE}\n`, { mode: 0o600 });
  const ok = writePipeline(cwd, sqlitePipeline('shop'), 'shop.yaml');
  const broken = writePipeline(cwd, failingPipeline('broken', 'the disk is on fire'), 'broken.yaml');
  // Runs `dbflow <args>` and returns the one audit line it appended.
  const audited = async (args: string[], code: number, extraEnv: Record<string, string> = {}): Promise<AuditRecord> => {
    const before = readAudit(stateDir).length;
    const r = await dbflow(args, { cwd, env: { ...env, ...extraEnv } });
    assert.equal(r.exitCode, code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    const after = readAudit(stateDir);
    assert.equal(after.length, before + 1, `one line for ${args.join(' ')}`);
    return after.at(-1)!;
  };

  const run = await audited(['run', ok], 0);
  const runId = resultsIn(stateDir).find((r) => r.pipeline === 'shop')!.run_id;
  assert.equal(run.command, 'run');
  assert.equal(run.outcome, 'success');
  assert.equal(run.exit_code, 0);
  assert.equal(run.run_id, runId);
  assert.equal(run.pipeline, 'shop');
  assert.equal(run.target, ok);
  assert.equal(run.user, os.userInfo().username);
  assert.equal(run.uid, os.userInfo().uid);
  assert.equal(run.host, os.hostname());
  assert.equal(run.dbflow, dbflowVersion());
  assert.ok(Number.isInteger(run.pid) && run.pid !== process.pid);
  assert.ok(run.duration_ms > 0);
  assert.ok(Math.abs(Date.now() - Date.parse(run.time)) < 60_000, run.time);
  assert.equal(statSync(path.join(stateDir, 'audit.jsonl')).mode & 0o777, 0o600);

  const failed = await audited(['run', broken], 1);
  assert.equal(failed.command, 'run');
  assert.equal(failed.outcome, 'failed');
  assert.equal(failed.exit_code, 1);
  assert.equal(failed.pipeline, 'broken');
  assert.equal(failed.run_id, resultsIn(stateDir).find((r) => r.pipeline === 'broken')!.run_id);

  const backup = `file://./backups/shop/${runId}`;
  const verify = await audited(['verify', backup], 0, { DBFLOW_PASSPHRASE: OPS_PASSPHRASE });
  assert.deepEqual([verify.command, verify.outcome, verify.exit_code, verify.target], ['verify', 'success', 0, backup]);
  assert.equal(verify.user, os.userInfo().username);
  assert.equal(verify.host, os.hostname());

  const restored = path.join(cwd, 'restored.sqlite3');
  writeFileSync(restored, ''); // an empty target, as restore asks
  const restore = await audited(['restore', backup, '-d', 'demo', '--to', `sqlite:${restored}`, '--passphrase-file', passphraseFile], 0);
  assert.deepEqual([restore.command, restore.outcome, restore.exit_code], ['restore', 'success', 0]);
  assert.ok(restore.target.includes(backup) && restore.target.includes(restored), restore.target);

  // A password written into a URL is stripped from the target and from the error.
  const refused = await audited(
    ['restore', backup, '-d', 'demo', '--to', `postgres://app:${URL_PASSWORD}@127.0.0.1:9/app`, '--passphrase-file', passphraseFile],
    1,
  );
  assert.equal(refused.command, 'restore');
  assert.notEqual(refused.outcome, 'success');
  assert.ok(refused.target.includes('postgres://app@127.0.0.1:9/app'), refused.target);
  assert.match(refused.error ?? '', /postgres:\/\/app@127\.0\.0\.1:9\/app/); // the command's own message quotes the URL whole

  const pruneRun = await audited(['run', ok], 0); // a second backup, so --keep-last 1 deletes one
  assert.equal(pruneRun.outcome, 'success');
  const prune = await audited(['prune', 'file://./backups/shop', '--keep-last', '1'], 0);
  assert.deepEqual([prune.command, prune.outcome, prune.exit_code, prune.target], ['prune', 'success', 0, 'file://./backups/shop']);
  const dryRun = await audited(['prune', 'file://./backups/shop', '--keep-last', '1', '--dry-run'], 0);
  assert.equal(dryRun.dry_run, true);

  // Never a secret in the trail.
  const text = readFileSync(path.join(stateDir, 'audit.jsonl'), 'utf8');
  assert.doesNotMatch(text, new RegExp(OPS_PASSPHRASE));
  assert.doesNotMatch(text, new RegExp(URL_PASSWORD));
  assert.deepEqual(
    readAudit(stateDir).map((a) => a.command),
    ['run', 'run', 'verify', 'restore', 'restore', 'run', 'prune', 'prune'],
  );
});

test('audit: DBFLOW_STATE_DIR decides where a command outside a run writes its line', async (t) => {
  const cwd = tmpDir(t);
  const elsewhere = path.join(cwd, 'state');
  const r = await dbflow(['prune', 'file://./nothing-here', '--keep-last', '1'], { cwd, env: { ...env, DBFLOW_STATE_DIR: elsewhere } });
  const lines = readAudit(elsewhere);
  assert.equal(lines.length, 1, r.stderr);
  assert.equal(lines[0]!.command, 'prune');
  assert.equal(lines[0]!.exit_code, r.exitCode);
  assert.deepEqual(readAudit(path.join(cwd, '.dbflow')), []);
});

test('audit: lines of concurrent writers never interleave', async (t) => {
  const stateDir = tmpDir(t);
  const writer = `
    import { appendAudit } from ${JSON.stringify(path.join(repoRoot, 'src', 'ops', 'audit.ts'))};
    for (let i = 0; i < 100; i++) appendAudit(process.argv[1], { command: 'prune', target: 'file://x', outcome: 'failed', exit_code: 1, duration_ms: i, error: 'x'.repeat(16_000) });
  `;
  const tsx = import.meta.resolve('tsx');
  await Promise.all([1, 2, 3, 4].map(() => execa(process.execPath, ['--import', tsx, '--input-type=module', '-e', writer, stateDir])));
  const lines = readFileSync(path.join(stateDir, 'audit.jsonl'), 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 400);
  for (const line of lines) assert.equal((JSON.parse(line) as AuditRecord).error?.length, 16_000);
});

test('audit: credentials are stripped from every URL in a text', () => {
  const cases: [string, string][] = [
    ['postgres://app:s3cret@db:5432/app', 'postgres://app@db:5432/app'],
    ['failed: connect "mysql://root:p@ss@db/app" refused', 'failed: connect "mysql://root@db/app" refused'],
    ['postgres://app:base64/+pw@db/app', 'postgres://app@db/app'],
    ['s3://bucket/x?X-Amz-Signature=abc&X-Amz-Credential=AKIA&part=1', 's3://bucket/x?X-Amz-Signature=***&X-Amz-Credential=***&part=1'],
    ['https://h/p?password=a&token=b&sig=c&key=d&secret=e&keep=f', 'https://h/p?password=***&token=***&sig=***&key=***&secret=***&keep=f'],
    ['postgres://db:5432/app?email=a@b', 'postgres://db:5432/app?email=a@b'],
    ['sftp://backup@host/x and sqlite:/tmp/a.db', 'sftp://backup@host/x and sqlite:/tmp/a.db'],
  ];
  for (const [input, expected] of cases) assert.equal(withoutCredentials(input), expected, input);
});
