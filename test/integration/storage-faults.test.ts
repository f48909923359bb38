// A storage that fails under a run says why, naming the object: a full disk, a read-only repository, a dropped S3
// connection. The failing step is the upload (not a stream neighbour that it closed), and no manifest is published.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { execa } from 'execa';
import { builtinRegistry } from '../../src/index.js';
import { dbflow, hasStackTrace } from '../helpers/cli.js';
import { quickstartCopy } from '../helpers/quickstart-copy.js';
import { requireS3, setEnv, stopS3 } from '../helpers/s3.js';
import { startProxy } from '../helpers/s3-proxy.js';
import { filesUnder } from '../helpers/repo.js';
import { tmpDir } from '../helpers/tmp.js';

after(stopS3);

// A tmpfs of `size` mounted at a fresh folder (root only), unmounted when the test ends; undefined when skipped.
async function smallDisk(t: TestContext, size: string): Promise<string | undefined> {
  const top = mkdtempSync(path.join(os.tmpdir(), 'dbflow-disk-'));
  const dir = path.join(top, 'mnt');
  mkdirSync(dir);
  t.after(async () => {
    await execa('umount', [dir], { reject: false });
    rmSync(top, { recursive: true, force: true });
  });
  const mounted = await execa('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { reject: false });
  if (mounted.exitCode !== 0) {
    const why = `mounting a tmpfs needs root (CAP_SYS_ADMIN): ${mounted.stderr.trim() || mounted.message}`;
    if (process.env.CI === 'true') throw new Error(why);
    t.skip(why);
    return undefined;
  }
  return dir;
}

// Exit 1; the upload failed with `cause` on an object under `prefix`; its neighbours name it; no stack.
function assertUploadFailed(run: { exitCode: number; stdout: string; stderr: string }, prefix: string, cause: RegExp): void {
  const output = run.stdout + run.stderr;
  assert.equal(run.exitCode, 1, output);
  const error = /^\S+ upload: FAILED after \S+: (.*)$/m.exec(output)?.[1] ?? '';
  assert.ok(error, `the upload's failure is shown:\n${output}`);
  assert.ok(error.includes(`"${prefix}`), `the upload's failure names the object under ${prefix}:\n${error}`);
  assert.match(error, cause);
  assert.match(
    run.stdout,
    /^ {2}failed {4}upload \(and in its stream chain: /m,
    `the summary names the upload as where it failed:\n${output}`,
  );
  assert.match(output, /encrypt: FAILED after \S+: its stream chain failed at "upload"/);
  assert.doesNotMatch(output, /The operation was aborted|ENOENT/);
  assert.equal(hasStackTrace(output), false, output);
}

void test('a full disk (ENOSPC) fails the upload with "no space left", naming the object; nothing is published', async (t) => {
  const disk = await smallDisk(t, '1m');
  if (!disk) return;
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { repo: `file://${disk}/{{ pipeline.name }}` });
  const run = await dbflow(['run', file], { cwd });
  assertUploadFailed(
    run,
    `file://${disk}/quickstart/`,
    /writing "[^"]+\/demo\.sqlite3\.zst\.pgp" failed: no space left on the device \(ENOSPC\)/,
  );
  assert.deepEqual(filesUnder(disk), [], 'no manifest, no artifact, no temporary file');
});

void test('a read-only repository (EROFS) fails the upload with "read-only", naming the object; nothing is published', async (t) => {
  const disk = await smallDisk(t, '4m');
  if (!disk) return;
  mkdirSync(path.join(disk, 'quickstart'));
  await execa('mount', ['-o', 'remount,ro', disk]);
  const cwd = tmpDir(t);
  // A new run folder, then an existing one: mkdir and open both fail on the read-only file system.
  for (const to of ['{{ vars.repo }}/{{ run.id }}/demo.sqlite3.zst.pgp', '{{ vars.repo }}/demo.sqlite3.zst.pgp']) {
    const file = quickstartCopy(cwd, { repo: `file://${disk}/{{ pipeline.name }}`, to });
    const run = await dbflow(['run', file], { cwd });
    assertUploadFailed(
      run,
      `file://${disk}/quickstart/`,
      /"[^"]+\/demo\.sqlite3\.zst\.pgp" failed: the repository is on a read-only file system \(EROFS\)/,
    );
  }
  assert.deepEqual(filesUnder(disk), []);
});

void test('a dropped S3 connection fails the upload naming the connection, the endpoint and the object; nothing is published', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return;
  const bucket = await s3.bucket();
  // Every connection that carries more than 1 MiB is reset: no part gets through, retries included.
  const proxy = await startProxy(s3.port, { cutAfter: 2 ** 20 });
  t.after(() => proxy.close());
  const cwd = tmpDir(t);
  const file = quickstartCopy(cwd, { repo: `s3://${bucket}/backups/{{ pipeline.name }}` });
  // Without compression the artifact (~6 MiB) is larger than a 5 MiB part: a multipart upload, its body read in parts.
  const text = readFileSync(file, 'utf8');
  const uncompressed = text.replace(/^ {2}- id: compress\n(?: {4}.*\n)+/m, '').replace('input: compress', 'input: dump');
  assert.notEqual(uncompressed, text);
  writeFileSync(file, uncompressed);
  const env = { ...s3.env, AWS_ENDPOINT_URL_S3: proxy.endpoint, DBFLOW_S3_PART_SIZE_MIB: '5' };
  const run = await dbflow(['run', file], { cwd, env });
  assertUploadFailed(
    run,
    `s3://${bucket}/backups/quickstart/`,
    new RegExp(
      `the S3 endpoint ${proxy.endpoint} could not be reached or dropped the connection while writing "[^"]+" \\((ECONNRESET|EPIPE)\\)`,
    ),
  );
  assert.ok(proxy.cuts() >= 1, `the proxy cut ${proxy.cuts()} connections`);
  t.after(setEnv(s3.env));
  const storage = (await builtinRegistry()).storages.get('s3')!;
  // (s3rver keeps what arrived of a PutObject whose connection was reset; S3 itself stores no partial object.)
  const stored = (await storage.list(`s3://${bucket}/`)).map((o) => o.url);
  assert.deepEqual(
    stored.filter((u) => u.endsWith('/manifest.json')),
    [],
    'no manifest',
  );
  assert.deepEqual(await s3.multipartUploads(bucket), []);
});
