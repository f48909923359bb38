// Storages take their settings from the pipeline's `storage:` (and, for commands without a pipeline, the config
// file's): every call of a run and of `backups list`, `verify` and `prune` gets them; bad ones are refused up front.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { execa } from 'execa';
import { dbflow, escapeRegExp, hasStackTrace } from '../helpers/cli.js';
import { quickstartCopy } from '../helpers/quickstart-copy.js';
import { requireS3, S3RVER_KEY, stopS3 } from '../helpers/s3.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

// Credentials only: where S3 is, and how it is addressed, must come from the settings.
const credentialsOnly = {
  AWS_ACCESS_KEY_ID: S3RVER_KEY,
  AWS_SECRET_ACCESS_KEY: S3RVER_KEY,
  AWS_REGION: undefined,
  AWS_ENDPOINT_URL: undefined,
  AWS_ENDPOINT_URL_S3: undefined,
  DBFLOW_S3_FORCE_PATH_STYLE: undefined,
  AWS_PROFILE: undefined,
  AWS_CONFIG_FILE: '/nonexistent',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
};

// The quickstart in `dir` with `storage` (YAML lines, indented two spaces) added at its end.
function withStorage(dir: string, changes: Parameters<typeof quickstartCopy>[1], storage: string): string {
  const file = quickstartCopy(dir, changes);
  writeFileSync(file, `${readFileSync(file, 'utf8').trimEnd()}\nstorage:\n${storage}\n`);
  return file;
}

// A config file under `dir` (as XDG_CONFIG_HOME) with `text`; the environment that points at it.
function configHome(dir: string, text: string): Record<string, string> {
  mkdirSync(path.join(dir, 'config', 'dbflow'), { recursive: true });
  writeFileSync(path.join(dir, 'config', 'dbflow', 'config.yaml'), text);
  return { XDG_CONFIG_HOME: path.join(dir, 'config') };
}

void test('storage.s3 in the pipeline: a run backs up to s3:// with no endpoint in the environment; commands read it with the config file', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const cwd = tmpDir(t);
  const settings = [`    endpoint: ${s3.endpoint}`, '    region: us-east-1', '    force_path_style: true', '    part_size_mib: 5'];
  const file = withStorage(cwd, { repo: `s3://${bucket}/backups/{{ pipeline.name }}` }, `  s3:\n${settings.join('\n')}`);
  const env = { ...credentialsOnly, ...configHome(cwd, '') };

  const run = await dbflow(['run', file], { cwd, env });
  assert.equal(run.exitCode, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /verified {2}demo {2}rowcount: 3 tables/);
  // "Restore without dbflow" carries the settings to the AWS CLI.
  assert.match(
    run.stdout,
    new RegExp(
      `aws s3 cp --endpoint-url '${escapeRegExp(s3.endpoint)}' --region 'us-east-1' 's3://${bucket}/backups/quickstart/[^']+/demo\\.sqlite3\\.zst\\.pgp' -`,
    ),
  );
  const stored = await s3.client().send(new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: bucket }));
  assert.equal(stored.Contents?.filter((o) => o.Key?.endsWith('/manifest.json')).length, 1, 'the manifest is where the settings said');

  // Commands without a pipeline: the config file's storage.s3.
  const repo = `s3://${bucket}/backups/quickstart`;
  const configured = {
    ...credentialsOnly,
    ...configHome(cwd, `storage:\n  s3:\n    endpoint: ${s3.endpoint}\n    force_path_style: true\n`),
  };
  const list = await dbflow(['backups', 'list', repo, '--json'], { cwd, env: configured });
  assert.equal(list.exitCode, 0, list.stdout + list.stderr);
  const backups = (JSON.parse(list.stdout) as { backups: { url: string; status: string }[] }).backups;
  assert.equal(backups.length, 1, list.stdout);
  const verify = await dbflow(['verify', backups[0]!.url, '--passphrase-file', path.join(cwd, 'quickstart.passphrase')], {
    cwd,
    env: configured,
  });
  assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /verified/);
  const prune = await dbflow(['prune', repo, '--keep-last', '1', '--dry-run'], { cwd, env: configured });
  assert.equal(prune.exitCode, 0, prune.stdout + prune.stderr);
  assert.match(prune.stdout, /1 kept, 0 to remove/);
});

void test('bad storage settings: file:line:col with a did-you-mean in a pipeline (exit 2), the file and setting in the config file', async (t) => {
  const cwd = tmpDir(t);
  const cases: { storage: string; message: RegExp }[] = [
    { storage: '  s3:\n    endpont: http://127.0.0.1:9', message: /:\d+:\d+: .*"endpont".*[Dd]id you mean "endpoint"/ },
    { storage: '  s4:\n    region: x', message: /:\d+:\d+: no storage serves "s4:" URLs\. Did you mean "s3"\?/ },
    { storage: '  s3:\n    part_size_mib: 2', message: /:\d+:\d+: .*part_size_mib.*5/ },
    { storage: '  file:\n    mode: "0600"', message: /:\d+:\d+: storage "file:" has no settings\./ },
    { storage: '  sftp:\n    connect_timeout: "{{ env.HOME }}"', message: /:\d+:\d+: .*template/ },
  ];
  for (const c of cases) {
    const file = withStorage(cwd, {}, c.storage);
    const r = await dbflow(['validate', file], { cwd });
    const output = r.stdout + r.stderr;
    assert.equal(r.exitCode, 2, `${c.storage}\n${output}`);
    assert.match(output, c.message, c.storage);
    assert.equal(hasStackTrace(output), false, output);
  }

  const env = configHome(cwd, 'storage:\n  s3:\n    regoin: eu-west-1\n');
  const r = await dbflow(['backups', 'list', 's3://bucket/x'], { cwd, env });
  assert.equal(r.exitCode, 2, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `the config file ${escapeRegExp(path.join(cwd, 'config', 'dbflow', 'config.yaml'))}: storage\\.s3 has no setting "regoin"\\. Did you mean "region"\\?`,
    ),
  );
  assert.equal(hasStackTrace(r.stderr), false, r.stderr);
});

void test('storage.sftp from the config file: its key logs in, its connect_timeout limits the handshake with a silent server', async (t) => {
  const cwd = tmpDir(t);
  const key = path.join(cwd, 'backup_key');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const missing = await dbflow(['backups', 'list', 'sftp://backup@127.0.0.1:1/repo'], {
    cwd,
    env: configHome(cwd, `storage:\n  sftp:\n    key: ${key}.gone\n`),
  });
  assert.match(
    missing.stderr,
    new RegExp(`cannot read the SSH key "${escapeRegExp(key)}\\.gone" named by storage\\.sftp\\.key \\(ENOENT\\)`),
  );

  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => silent.close());
  const { port } = silent.address() as net.AddressInfo;
  const env = {
    ...configHome(cwd, `storage:\n  sftp:\n    key: ${key}\n    connect_timeout: 0.5\n`),
    DBFLOW_SFTP_CONNECT_TIMEOUT: undefined,
    DBFLOW_SFTP_KEY: undefined,
    SSH_AUTH_SOCK: undefined,
  };
  const started = performance.now();
  const r = await dbflow(['backups', 'list', `sftp://backup@127.0.0.1:${port}/repo`], { cwd, env });
  const seconds = (performance.now() - started) / 1000;
  assert.notEqual(r.exitCode, 0, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `no SSH handshake with 127\\.0\\.0\\.1:${port} within 0\\.5 s; .*\\(storage\\.sftp\\.connect_timeout or DBFLOW_SFTP_CONNECT_TIMEOUT sets the limit`,
    ),
  );
  assert.ok(seconds < 15, `failed after ${seconds.toFixed(1)} s, not after the 20 s default`);
});
