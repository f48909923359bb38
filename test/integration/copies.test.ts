// Several copies: one upload writes one stream to a file:// repository and to S3 (s3rver) at once. Each copy is
// published with a manifest of its own, and lists, verifies and restores from its repository alone; an S3 server
// killed mid-upload fails the run with no manifest anywhere; continue_on_error keeps the copy that succeeded.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import type { Manifest } from '../../src/index.js';
import { manifestsUnder, runIdOf, writePipeline } from '../helpers/backup-run.js';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import { ok } from '../helpers/repo.js';
import { startRedis } from '../helpers/redis.js';
import { startProxy } from '../helpers/s3-proxy.js';
import { requireS3, startS3, stopS3, type S3Server } from '../helpers/s3.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

const PASSPHRASE = 'copies-test-passphrase-7d1f';
const NAME = 'app.sqlite3.zst.pgp';
const MiB = 1024 * 1024;

interface Copies {
  /** The upload's destinations, in order. */
  to: string[];
  continueOnError?: boolean;
}

// A verified SQLite backup whose upload writes every URL of `to` at once.
function copiesPipeline({ to, continueOnError }: Copies): string {
  return `version: 1
name: copies
secrets:
  passphrase: { env: COPIES_PASSPHRASE }
databases:
  app: { driver: sqlite, url: "sqlite:./data/app.sqlite3" }
steps:
  - { id: seed, uses: sqlite-seed, with: { database: app, rows: 3000 } }
  - { id: snapshot, uses: snapshot, needs: seed, with: { databases: [app] } }
  - { id: dump, uses: dump, with: { database: app, snapshot: snapshot } }
  - { id: compress, uses: compress, input: dump, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - id: upload
    uses: upload
    input: encrypt${continueOnError ? '\n    continue_on_error: true' : ''}
    with:
      to:
${to.map((u) => `        - ${JSON.stringify(u)}`).join('\n')}
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function s3Object(s3: S3Server, bucket: string, key: string): Promise<Buffer> {
  const client = s3.client();
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } finally {
    client.destroy();
  }
}

async function s3Keys(s3: S3Server, bucket: string): Promise<string[]> {
  const client = s3.client();
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (out.Contents ?? []).map((o) => o.Key ?? '').sort();
  } finally {
    client.destroy();
  }
}

// Every file below `dir` (relative paths), hidden ones too.
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(path.join(dir, f), { throwIfNoEntry: false })?.isFile()) // a file may go as it is listed
    .sort();
}

// A ~96 MiB SQLite database that does not compress, and a pipeline that uploads its dump to a file:// repository and
// to S3 at once: the upload takes long enough for a fault to land while the bytes flow.
function bigUpload(cwd: string, bucket: string): { file: string; dbBytes: number } {
  mkdirSync(path.join(cwd, 'data'));
  const dbFile = path.join(cwd, 'data', 'big.sqlite3');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO blobs (body) VALUES (randomblob(1048576))');
  db.transaction(() => {
    for (let i = 0; i < 96; i++) insert.run();
  })();
  db.close();
  const file = writePipeline(
    cwd,
    `version: 1
name: copies
databases:
  big: { driver: sqlite, url: "sqlite:./data/big.sqlite3" }
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [big] } }
  - { id: dump, uses: dump, with: { database: big, snapshot: snapshot } }
  - id: upload
    uses: upload
    input: dump
    with: { to: ["file://./repo/{{ run.id }}/big.sqlite3", "s3://${bucket}/repo/{{ run.id }}/big.sqlite3"] }
`,
  );
  return { file, dbBytes: statSync(dbFile).size };
}

// A folder with the pipeline whose upload writes a file:// repository and S3 (s3rver) at once; undefined when skipped.
async function fileAndS3(t: TestContext) {
  const s3 = await requireS3(t);
  if (!s3) return undefined;
  const bucket = await s3.bucket();
  const cwd = tmpDir(t);
  const env = { ...s3.env, COPIES_PASSPHRASE: PASSPHRASE };
  const file = writePipeline(
    cwd,
    copiesPipeline({ to: [`file://./repo/{{ run.id }}/${NAME}`, `s3://${bucket}/repo/{{ run.id }}/${NAME}`] }),
  );
  return { s3, bucket, cwd, env, file };
}

// Each of `repos` lists the backup of run `runId` and nothing else (nothing at all without one).
async function listsOnly(repos: string[], runId: string | undefined, o: { cwd: string; env: Record<string, string> }): Promise<void> {
  for (const repo of repos) {
    const listed = JSON.parse(ok(await dbflow(['backups', 'list', repo, '--json'], o), `backups list ${repo}`)) as {
      backups: { run_id: string }[];
    };
    assert.deepEqual(
      listed.backups.map((b) => b.run_id),
      runId ? [runId] : [],
      `${repo} lists only the backup published in every repository`,
    );
  }
}

/** S3 settings that keep the upload slow enough to be caught mid-stream: 5 MiB parts, one at a time. */
const SLOW_S3 = { DBFLOW_S3_PART_SIZE_MIB: '5', DBFLOW_S3_QUEUE_SIZE: '1' };

// The size of the file copy's temporary file in `repoDir` (0 before it exists).
function partialBytes(repoDir: string): number {
  const partial = filesUnder(repoDir).find((f) => /big\.sqlite3\.partial-/.test(f));
  return partial ? (statSync(path.join(repoDir, partial), { throwIfNoEntry: false })?.size ?? 0) : 0;
}

void test('one run writes file:// and S3 at once; each repository lists, verifies and restores its copy alone', async (t) => {
  const c = await fileAndS3(t);
  if (!c) return;
  const { s3, bucket, cwd, env, file } = c;
  const run = await dbflow(['run', file], { cwd, env });
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  const runId = runIdOf(run.stdout);
  // The run's lock and audit record know its repositories (the first: file://, as sorted).
  const audit = readFileSync(path.join(cwd, '.dbflow', 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n');
  assert.equal((JSON.parse(audit.at(-1)!) as { repository?: string }).repository, `file://${path.join(cwd, 'repo')}`);
  const fileRepo = 'file://./repo';
  const s3Repo = `s3://${bucket}/repo`;
  assert.match(run.stdout, new RegExp(`^ {2}copy {6}app {2}s3://${bucket}/repo/${runId}/${NAME.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(run.stdout, new RegExp(`^ {2}manifest {2}file://.*/repo/${runId}/manifest\\.json$`, 'm'));
  assert.match(run.stdout, new RegExp(`^ {2}manifest {2}s3://${bucket}/repo/${runId}/manifest\\.json$`, 'm'));

  // Two manifests, each naming its own copy, both listing every copy; the same bytes in both places.
  const local = JSON.parse(readFileSync(path.join(cwd, 'repo', runId, 'manifest.json'), 'utf8')) as Manifest;
  const remote = JSON.parse((await s3Object(s3, bucket, `repo/${runId}/manifest.json`)).toString()) as Manifest;
  const [la, ra] = [local.artifacts[0]!, remote.artifacts[0]!];
  assert.equal(local.status, 'verified');
  assert.equal(remote.status, 'verified');
  assert.equal(la.path, NAME);
  assert.equal(ra.path, NAME);
  assert.match(la.url, new RegExp(`^file:///.*/repo/${runId}/${NAME.replace(/\./g, '\\.')}$`));
  assert.equal(ra.url, `s3://${bucket}/repo/${runId}/${NAME}`);
  assert.deepEqual(la.copies, [{ url: la.url }, { url: ra.url }]);
  assert.deepEqual(ra.copies, la.copies);
  assert.equal(la.failed_copies, undefined);
  const localBytes = readFileSync(path.join(cwd, 'repo', runId, NAME));
  const remoteBytes = await s3Object(s3, bucket, `repo/${runId}/${NAME}`);
  assert.equal(localBytes.length, la.bytes);
  assert.equal(sha256(localBytes), la.sha256);
  assert.ok(localBytes.equals(remoteBytes), 'the two copies hold the same bytes');
  assert.equal(ra.sha256, la.sha256);
  assert.deepEqual(await s3.multipartUploads(bucket), [], 'no unfinished upload is left');

  // Each repository on its own: list, verify, restore.
  for (const repo of [fileRepo, s3Repo]) {
    const listed = JSON.parse(ok(await dbflow(['backups', 'list', repo, '--json'], { cwd, env }), `backups list ${repo}`)) as {
      backups: { run_id: string; url: string; status: string }[];
    };
    assert.deepEqual(
      listed.backups.map((b) => [b.run_id, b.status]),
      [[runId, 'verified']],
      `backups list ${repo}`,
    );
    assert.ok(listed.backups[0]!.url.endsWith(`repo/${runId}`), listed.backups[0]!.url);
    const backup = `${repo}/${runId}`;
    const verify = await dbflow(['verify', backup], { cwd, env: { ...env, DBFLOW_PASSPHRASE: PASSPHRASE } });
    assert.equal(verify.exitCode, 0, `verify ${backup}:\n${verify.stdout}\n${verify.stderr}`);
    assert.match(verify.stdout, /1 of 1 artifact verified/);
    const target = `restored-${repo.startsWith('s3') ? 's3' : 'file'}.sqlite3`;
    const restore = await dbflow(['restore', backup, '--to', `sqlite:./${target}`, '--create'], {
      cwd,
      env: { ...env, DBFLOW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(restore.exitCode, 0, `restore ${backup}:\n${restore.stdout}\n${restore.stderr}`);
    assert.match(restore.stdout, new RegExp(`restored .* from ${backup.replace(/[/.]/g, '\\$&')}/`));
    assert.match(restore.stdout, /rows equal to the backup's counts/);
    const db = new Database(path.join(cwd, target), { readonly: true });
    t.after(() => db.close());
    assert.equal(Number(db.prepare('SELECT count(*) FROM orders').pluck().get()), 3000);
  }
  // verify wrote its record beside each repository's manifest.
  assert.ok(existsSync(path.join(cwd, 'repo', runId, 'verify.json')));
  assert.ok((await s3Keys(s3, bucket)).includes(`repo/${runId}/verify.json`));
});

void test('killing the S3 server mid-upload fails the run: no manifest in either repository, nothing partial left', async (t) => {
  const cwd = tmpDir(t);
  let s3: S3Server | undefined = await startS3();
  t.after(async () => void (await s3?.close()));
  const bucket = await s3.bucket();
  const { file, dbBytes } = bigUpload(cwd, bucket);
  const sub = spawnDbflow(['run', file], { cwd, env: { ...s3.env, ...SLOW_S3 } });
  // Waits until both copies are being written: the file copy's temporary file has grown past 40 MiB and
  // s3rver holds parts of the multipart upload. Then the S3 side dies.
  const repoDir = path.join(cwd, 'repo');
  const uploads = path.join(s3.dir, bucket, '._S3rver_uploads');
  // The bytes s3rver holds of the unfinished upload (its parts as written so far).
  const s3Held = (): number =>
    filesUnder(uploads)
      .filter((f) => /(^|\/)\d+$/.test(f))
      .reduce((n, f) => n + statSync(path.join(uploads, f)).size, 0);
  let written: number;
  let held: number;
  const deadline = Date.now() + 60_000;
  for (;;) {
    assert.equal(sub.exitCode, null, 'the run is still writing');
    written = partialBytes(repoDir);
    held = s3Held();
    if (written > 40 * MiB && held > 0) break;
    assert.ok(Date.now() < deadline, `the upload never got going (file copy at ${written} bytes, s3rver holds ${held})`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const { port, dir } = s3;
  await s3.kill();
  t.diagnostic(`killed s3rver with ${written} of ${dbBytes} bytes in the file copy, ${held} bytes in s3rver's parts`);
  assert.ok(written < dbBytes, 'the kill landed while the stream was flowing');
  // One stream, paced by its slowest destination: the file copy is never far ahead of what S3 took (the S3
  // storage's part buffers, 2 × 5 MiB here, and each branch's 1 MiB), however much faster the disk is.
  assert.ok(written - held < 20 * MiB, `the file copy ran ${((written - held) / MiB).toFixed(1)} MiB ahead of the S3 copy`);

  const r = await sub;
  const out = `${String(r.stdout)}\n${String(r.stderr)}`;
  assert.equal(r.exitCode, 1, out);
  const runId = runIdOf(String(r.stdout));
  assert.match(out, /upload/);
  assert.match(out, /copy 2 of 2: every copy was stopped and none was kept/);
  assert.doesNotMatch(String(r.stdout), /^ {2}manifest/m);
  // The file repository: the copy that was still being written was abandoned, its temporary file removed.
  assert.deepEqual(filesUnder(repoDir), [], 'nothing is left in the file repository');
  assert.deepEqual(manifestsUnder(cwd), []);

  // The S3 repository, once its server is back on the same folder: no manifest, no object of the artifact.
  s3 = await startS3({ dir, port });
  const keys = await s3Keys(s3, bucket);
  assert.deepEqual(
    keys.filter((k) => !k.endsWith('/.dbflow-run.json')),
    [],
    `only the dead run's lease may be left: ${keys.join(', ')}`,
  );
  const s3Repo = `s3://${bucket}/repo`;
  const listed = JSON.parse(ok(await dbflow(['backups', 'list', s3Repo, '--json'], { cwd, env: s3.env }), 'backups list')) as {
    backups: unknown[];
    orphans: { folders: { folder: string }[] };
  };
  assert.deepEqual(listed.backups, []);
  // What the killed side kept (the unfinished multipart upload, the lease) is an orphan like any failed run's; prune reaps it.
  assert.deepEqual(
    listed.orphans.folders.map((f) => f.folder),
    [`${s3Repo}/${runId}`],
  );
  const pruned = await dbflow(['prune', s3Repo, '--keep-last', '1', '--orphan-grace', '0s'], { cwd, env: s3.env });
  assert.equal(pruned.exitCode, 0, `${pruned.stdout}\n${pruned.stderr}`);
  assert.deepEqual(await s3Keys(s3, bucket), []);
  assert.deepEqual(await s3.multipartUploads(bucket), []);
});

void test('a run stopped between its manifests: the next run withdraws the one it wrote, so no repository lists a backup another lacks', async (t) => {
  const c = await fileAndS3(t);
  if (!c) return;
  const { s3, bucket, cwd, env, file } = c;
  // The S3 side through a proxy that holds the manifest's PUT: by then the file repository's manifest is written.
  let stalled: (head: string) => void = () => undefined;
  const atManifest = new Promise<string>((resolve) => (stalled = resolve));
  const proxy = await startProxy(s3.port, { stallOn: /^PUT \S*\/manifest\.json/, onStall: (h) => stalled(h) });
  t.after(() => proxy.close());
  const sub = spawnDbflow(['run', file], { cwd, env: { ...env, AWS_ENDPOINT_URL_S3: proxy.endpoint } });
  const timeout = setTimeout(() => stalled(''), 120_000);
  const head = await atManifest;
  clearTimeout(timeout);
  if (!head) assert.fail(`the run never wrote its S3 manifest:\n${String((await sub).stderr)}`);
  sub.kill('SIGKILL');
  await sub;
  const [killed] = readdirSync(path.join(cwd, '.dbflow', 'runs'));
  assert.ok(killed);
  assert.deepEqual(manifestsUnder(path.join(cwd, 'repo')), [path.join(killed, 'manifest.json')], 'the file manifest was written');
  assert.ok(existsSync(path.join(cwd, '.dbflow', 'runs', killed, 'publishing.json')), 'the run noted what it was publishing');
  assert.deepEqual(
    (await s3Keys(s3, bucket)).filter((k) => k.endsWith('manifest.json')),
    [],
    'the S3 manifest was not written',
  );

  const next = await dbflow(['run', file], { cwd, env });
  assert.equal(next.exitCode, 0, `${next.stdout}\n${next.stderr}`);
  assert.match(
    next.stderr,
    new RegExp(
      `withdrew file://\\S+/repo/${killed}/manifest\\.json: run ${killed} stopped while publishing its backup, before s3://${bucket}/repo/${killed}/manifest\\.json was written`,
    ),
  );
  const nextId = runIdOf(next.stdout);
  await listsOnly(['file://./repo', `s3://${bucket}/repo`], nextId, { cwd, env });
  assert.equal(existsSync(path.join(cwd, '.dbflow', 'runs', killed, 'publishing.json')), false, 'the note is gone once acted on');
  assert.equal(existsSync(path.join(cwd, '.dbflow', 'runs', nextId, 'publishing.json')), false, 'a run that published leaves no note');
});

void test('fleet: a lease holder that stopped between the manifests leaves a note in Redis; the next holder, on any machine, withdraws them', async (t) => {
  const c = await fileAndS3(t);
  if (!c) return;
  const { s3, bucket, cwd, env, file } = c;
  const redis = await startRedis(t);
  if (!redis) return;
  // A run under the fleet's lease: published in both repositories, and no note is left.
  const first = await dbflow(['run', file, '--queue', redis.url], { cwd, env: { ...env, DBFLOW_STATE_DIR: path.join(cwd, 'machine-a') } });
  assert.equal(first.exitCode, 0, `${first.stdout}\n${first.stderr}`);
  const firstId = runIdOf(first.stdout);
  assert.deepEqual(await redis.client.keys('dbflow:fleet:publishing:*'), [], 'a run that published leaves no note');
  const [fence] = await redis.client.keys('dbflow:fleet:fence:*');
  assert.ok(fence, 'the lease was taken');
  const lease = fence.slice('dbflow:fleet:fence:'.length);

  // Its holder as if it had stopped between the manifests: the S3 one never written, the note left under the lease.
  const client = s3.client();
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `repo/${firstId}/manifest.json` }));
  client.destroy();
  const fileManifest = `file://${path.join(cwd, 'repo', firstId, 'manifest.json')}`;
  const s3Manifest = `s3://${bucket}/repo/${firstId}/manifest.json`;
  // A note is data: one that also names an object outside the pipeline's repositories does not get it deleted.
  const precious = path.join(cwd, 'precious.txt');
  writeFileSync(precious, 'not a manifest');
  await redis.client.set(
    `dbflow:fleet:publishing:${lease}`,
    JSON.stringify({ manifests: [fileManifest, s3Manifest, `file://${precious}`], run: firstId, fencing_token: 1 }),
  );

  // The next holder runs on another machine (its own state folder, which knows nothing of that run).
  const next = await dbflow(['run', file, '--queue', redis.url], { cwd, env: { ...env, DBFLOW_STATE_DIR: path.join(cwd, 'machine-b') } });
  assert.equal(next.exitCode, 0, `${next.stdout}\n${next.stderr}`);
  assert.ok(
    next.stderr.includes(
      `withdrew ${fileManifest}: run ${firstId} (fencing token 1) stopped while publishing its backup, before ${s3Manifest} was written`,
    ),
    next.stderr,
  );
  await listsOnly(['file://./repo', `s3://${bucket}/repo`], runIdOf(next.stdout), { cwd, env });
  assert.deepEqual(await redis.client.keys('dbflow:fleet:publishing:*'), [], 'the note is gone once acted on');
  assert.ok(existsSync(precious), 'what the note named outside the repositories is left alone');
  assert.match(next.stderr, /precious\.txt among its manifests, which is no manifest in this pipeline's repositories: left alone/);
});

void test('a manifest that cannot be written in the second repository: the first one is withdrawn, the run fails, nothing is listed', async (t) => {
  const c = await fileAndS3(t);
  if (!c) return;
  const { s3, bucket, cwd, env, file } = c;
  // Every PUT of a manifest to S3 is reset (each of the SDK's attempts): the file repository's was written first.
  const proxy = await startProxy(s3.port, { cutOn: /^PUT \S*\/manifest\.json/ });
  t.after(() => proxy.close());
  const run = await dbflow(['run', file], { cwd, env: { ...env, AWS_ENDPOINT_URL_S3: proxy.endpoint } });
  assert.equal(run.exitCode, 1, `${run.stdout}\n${run.stderr}`);
  assert.ok(proxy.cuts() >= 1, 'the S3 manifest was refused');
  assert.match(run.stdout + run.stderr, /writing the manifest failed: .*manifest\.json/);
  const [runId] = readdirSync(path.join(cwd, '.dbflow', 'runs'));
  assert.deepEqual(manifestsUnder(path.join(cwd, 'repo')), [], 'the file manifest written first was removed again');
  assert.deepEqual(
    (await s3Keys(s3, bucket)).filter((k) => k.endsWith('manifest.json')),
    [],
  );
  assert.equal(existsSync(path.join(cwd, '.dbflow', 'runs', runId!, 'publishing.json')), false, 'the run withdrew them itself');
  await listsOnly(['file://./repo', `s3://${bucket}/repo`], undefined, { cwd, env: s3.env });
});

void test('a copy that cannot be stored fails the run, the other copy is not kept; continue_on_error keeps it and records why', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const cwd = tmpDir(t);
  const env = { ...s3.env, COPIES_PASSPHRASE: PASSPHRASE };
  const missing = `s3://no-such-bucket-${Date.now()}/repo/{{ run.id }}/${NAME}`;
  const to = [`file://./repo/{{ run.id }}/${NAME}`, missing];

  const strict = await dbflow(['run', writePipeline(cwd, copiesPipeline({ to }), 'strict.yaml')], { cwd, env });
  assert.equal(strict.exitCode, 1, `${strict.stdout}\n${strict.stderr}`);
  assert.match(strict.stderr + strict.stdout, /copy 2 of 2: every copy was stopped and none was kept; with continue_on_error: true/);
  assert.deepEqual(filesUnder(path.join(cwd, 'repo')), [], 'the file copy was not kept');

  const tolerant = await dbflow(['run', writePipeline(cwd, copiesPipeline({ to, continueOnError: true }), 'tolerant.yaml')], { cwd, env });
  assert.equal(tolerant.exitCode, 0, `${tolerant.stdout}\n${tolerant.stderr}`);
  const runId = runIdOf(tolerant.stdout);
  assert.match(
    tolerant.stdout + tolerant.stderr,
    /copy 2 of 2 \(s3:\/\/no-such-bucket-.*\) was not stored: .*; continue_on_error keeps the 1 that were/,
  );
  const manifest = JSON.parse(readFileSync(path.join(cwd, 'repo', runId, 'manifest.json'), 'utf8')) as Manifest;
  const a = manifest.artifacts[0]!;
  assert.equal(manifest.status, 'verified');
  assert.deepEqual(a.copies, [{ url: a.url }], 'the failed copy is not listed among the copies');
  assert.equal(a.failed_copies?.length, 1);
  assert.equal(a.failed_copies[0]!.url, missing.replace('{{ run.id }}', runId));
  assert.match(a.failed_copies[0]!.error, /bucket/i);
  assert.doesNotMatch(JSON.stringify(manifest), new RegExp(`${s3.env.AWS_SECRET_ACCESS_KEY}|${PASSPHRASE}`));
  assert.deepEqual(manifestsUnder(cwd), [path.join('repo', runId, 'manifest.json')]);
  const restore = await dbflow(['restore', `file://./repo/${runId}`, '--to', 'sqlite:./restored.sqlite3', '--create'], {
    cwd,
    env: { ...env, DBFLOW_PASSPHRASE: PASSPHRASE },
  });
  assert.equal(restore.exitCode, 0, `${restore.stdout}\n${restore.stderr}`);
  assert.match(restore.stdout, /rows equal to the backup's counts/);
});

void test('copies of a run with two databases must make whole backups in every repository', async (t) => {
  const cwd = tmpDir(t);
  const pipeline = (second: string): string => `version: 1
name: copies
databases:
  a: { driver: sqlite, url: "sqlite:./data/a.sqlite3" }
  b: { driver: sqlite, url: "sqlite:./data/b.sqlite3" }
steps:
  - { id: seed_a, uses: sqlite-seed, with: { database: a, rows: 200 } }
  - { id: seed_b, uses: sqlite-seed, with: { database: b, rows: 200 } }
  - { id: snapshot, uses: snapshot, needs: [seed_a, seed_b], with: { databases: [a, b], coordinated: false } }
  - id: dump
    matrix: { db: [a, b] }
    uses: dump
    with: { database: "{{ matrix.db }}", snapshot: snapshot }
  - id: upload
    matrix: { db: [a, b] }
    uses: upload
    input: dump
    with: { to: ["file://./one/{{ run.id }}/{{ matrix.db }}.sqlite3", ${second}] }
`;
  // Both databases in both repositories: two whole backups.
  const whole = await dbflow(['run', writePipeline(cwd, pipeline('"file://./two/{{ run.id }}/{{ matrix.db }}.sqlite3"'), 'whole.yaml')], {
    cwd,
  });
  assert.equal(whole.exitCode, 0, `${whole.stdout}\n${whole.stderr}`);
  const runId = runIdOf(whole.stdout);
  for (const repo of ['one', 'two']) {
    const m = JSON.parse(readFileSync(path.join(cwd, repo, runId, 'manifest.json'), 'utf8')) as Manifest;
    assert.deepEqual(m.artifacts.map((x) => x.path).sort(), ['a.sqlite3', 'b.sqlite3'], repo);
  }
  // The second copy of each database in a folder of its own: no repository would hold the whole backup.
  const split = await dbflow(['run', writePipeline(cwd, pipeline('"file://./two/{{ matrix.db }}/{{ run.id }}/x.sqlite3"'), 'split.yaml')], {
    cwd,
  });
  assert.equal(split.exitCode, 1, `${split.stdout}\n${split.stderr}`);
  assert.match(split.stdout + split.stderr, /is not at the path "[ab]\.sqlite3" that its first copy .* has below the backup's folder/);
  assert.deepEqual(manifestsUnder(cwd).sort(), [path.join('one', runId, 'manifest.json'), path.join('two', runId, 'manifest.json')]);
});

void test('SIGINT while two copies are written: exit 130, neither repository keeps anything, the S3 upload is aborted', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const cwd = tmpDir(t);
  const { file, dbBytes } = bigUpload(cwd, bucket);
  const sub = spawnDbflow(['run', file], { cwd, env: { ...s3.env, ...SLOW_S3 } });
  const repoDir = path.join(cwd, 'repo');
  const deadline = Date.now() + 60_000;
  let written: number;
  while ((written = partialBytes(repoDir)) < 20 * MiB) {
    assert.equal(sub.exitCode, null, 'the run is still writing');
    assert.ok(Date.now() < deadline, 'the upload never got going');
    await new Promise((r) => setTimeout(r, 10));
  }
  sub.kill('SIGINT');
  const r = await sub;
  assert.equal(r.exitCode, 130, `${String(r.stdout)}\n${String(r.stderr)}`);
  assert.ok(written < dbBytes, 'the signal came while the stream was flowing');
  assert.deepEqual(filesUnder(repoDir), [], 'nothing is left in the file repository');
  assert.deepEqual(await s3Keys(s3, bucket), [], 'nothing is left in S3 (its run lease removed)');
  assert.deepEqual(await s3.multipartUploads(bucket), [], 'the multipart upload was aborted');
});
