// The repository commands over S3 (s3rver, with the test helper's ListMultipartUploads and AbortMultipartUpload):
// unfinished multipart uploads are orphans with their age, prune aborts them after the grace, never a live run's.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, test } from 'node:test';
import { CreateMultipartUploadCommand, ListObjectsV2Command, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { dbflow, spawnDbflow } from '../helpers/cli.js';
import { waitFor } from '../helpers/processes.js';
import { ok } from '../helpers/repo.js';
import { requireS3, stopS3 } from '../helpers/s3.js';
import { startProxy } from '../helpers/s3-proxy.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

interface Listed {
  orphans: { folders: { folder: string; unfinished: { url: string; upload?: string }[] }[] };
  in_progress: { folder: string; run_id: string }[];
}

void test('an unfinished multipart upload is an orphan; prune --orphan-grace 0s aborts it, but not one of a run alive on another host', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const client = s3.client();
  t.after(() => client.destroy());
  const start = async (Key: string): Promise<string> => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    await client.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 1) }));
    return UploadId!;
  };
  const dead = await start('backups/20200101T000000Z-dead/app.dump');
  const live = await start('backups/20200102T000000Z-live/app.dump');
  const now = new Date().toISOString();
  const lease = {
    format: 'dbflow-run-lease',
    version: 1,
    run_id: '20200102T000000Z-live',
    pipeline: 'nightly',
    host: `not-${hostname()}`,
    pid: 1,
    started_at: now,
    heartbeat_at: now,
    heartbeat_ms: 30000,
  };
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: 'backups/20200102T000000Z-live/.dbflow-run.json', Body: JSON.stringify(lease) }),
  );
  const cwd = tmpDir(t);
  const repo = `s3://${bucket}/backups`;

  const listed = JSON.parse(ok(await dbflow(['backups', 'list', repo, '--json'], { cwd, env: s3.env }), 'backups list')) as Listed;
  assert.deepEqual(
    listed.orphans.folders.map((f) => [f.folder, f.unfinished.map((u) => [u.url, u.upload])]),
    [[`${repo}/20200101T000000Z-dead`, [[`${repo}/20200101T000000Z-dead/app.dump`, dead]]]],
  );
  assert.deepEqual(
    listed.in_progress.map((p) => [p.folder, p.run_id]),
    [[`${repo}/20200102T000000Z-live`, '20200102T000000Z-live']],
  );
  const text = ok(await dbflow(['backups', 'list', repo], { cwd, env: s3.env }), 'backups list');
  assert.match(text, /^orphaned: s3:\/\/.+\/20200101T000000Z-dead\/ \(1 object, 1 unfinished write, \d+d(\d+h)? old\)$/m);

  const pruned = await dbflow(['prune', repo, '--keep-last', '1', '--orphan-grace', '0s'], { cwd, env: s3.env });
  assert.equal(pruned.exitCode, 0, pruned.stderr);
  assert.match(
    pruned.stdout,
    /^keep orphaned .*20200102T000000Z-live\/ \(2 objects\): in progress: run 20200102T000000Z-live of "nightly" \(pid 1 on not-.*\) is running/m,
  );
  assert.deepEqual(
    (await s3.multipartUploads(bucket)).map((u) => u.uploadId),
    [live],
    "the dead run's upload was aborted, the live one's kept",
  );
});

void test('SIGINT stops a prune whose S3 endpoint stopped answering: exit 130 within seconds, nothing deleted', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  const client = s3.client();
  t.after(() => client.destroy());
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'backups/20200101T000000Z-dead/app.dump', Body: 'x' }));
  // Every connection stalls at once: the listing waits for an answer that never comes.
  const proxy = await startProxy(s3.port, { stallAfter: 0 });
  t.after(() => proxy.close());
  const cwd = tmpDir(t);
  const child = spawnDbflow(['prune', `s3://${bucket}/backups`, '--keep-last', '1', '--orphan-grace', '0s'], {
    cwd,
    env: { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint },
  });
  try {
    await waitFor('the listing to stall', () => proxy.stalls() > 0);
    child.kill('SIGINT');
    const started = performance.now();
    const r = await child;
    const seconds = (performance.now() - started) / 1000;
    assert.equal(r.exitCode, 130, `${String(r.stdout)}\n${String(r.stderr)}`);
    assert.match(String(r.stderr), /SIGINT: stopping prune/);
    assert.ok(seconds < 10, `exited ${seconds.toFixed(1)} s after SIGINT`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const left = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  assert.deepEqual(
    left.Contents?.map((o) => o.Key),
    ['backups/20200101T000000Z-dead/app.dump'],
  );
});
