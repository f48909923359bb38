// The file storage: atomic puts, reads, listing and deletes on a real folder.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { DbflowError, RepositoryError } from '../../src/index.js';
import { fileStorage as storage, readAll, tempDir } from '../helpers/sqlite-fixtures.js';

const signal = (): AbortSignal => new AbortController().signal;

// A URL relative to the working directory, as pipelines write them: file://../x or file://./x.
function relativeUrl(file: string): string {
  const rel = path.relative(process.cwd(), file).split(path.sep).join('/');
  return `file://${rel.startsWith('.') ? rel : `./${rel}`}`;
}

void test('put then get returns the same bytes, under absolute and relative URLs', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const chunks = Array.from({ length: 50 }, (_, i) =>
    data.subarray(Math.floor((i * data.length) / 50), Math.floor(((i + 1) * data.length) / 50)),
  );
  const url = `file://${dir}/run-1/app.sqlite3.zst`;
  assert.deepEqual(await storage.put(url, Readable.from(chunks), { signal: signal() }), { url, bytes: data.length });
  assert.ok((await readAll(await storage.get(url))).equals(data));
  assert.deepEqual(readdirSync(path.join(dir, 'run-1')), ['app.sqlite3.zst']);

  const rel = relativeUrl(path.join(dir, 'nested', 'deeper', 'manifest.json'));
  await storage.put(rel, Readable.from([Buffer.from('{"ok":true}\n')]), { signal: signal() });
  assert.equal((await readAll(await storage.get(rel))).toString(), '{"ok":true}\n');
  assert.equal((await readAll(await storage.get(`file://${dir}/nested/deeper/manifest.json`))).toString(), '{"ok":true}\n');

  // A second put replaces the object whole.
  await storage.put(url, Readable.from([Buffer.from('v2')]), { signal: signal() });
  assert.equal((await readAll(await storage.get(url))).toString(), 'v2');
});

void test('a body stream that fails leaves no file, neither partial nor final', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  const url = `file://${dir}/out/app.dump`;
  function* failing(): Generator<Buffer> {
    yield randomBytes(256 * 1024);
    yield randomBytes(256 * 1024);
    throw new Error('encoder broke');
  }
  await assert.rejects(storage.put(url, Readable.from(failing()), { signal: signal() }), /encoder broke/);
  assert.deepEqual(readdirSync(path.join(dir, 'out')), []);

  // A stream that fails before the put even reads it.
  const early = new PassThrough();
  early.destroy(new Error('failed at once'));
  await assert.rejects(storage.put(url, early, { signal: signal() }), /failed at once/);
  assert.deepEqual(readdirSync(path.join(dir, 'out')), []);
});

void test('an aborted put leaves no file, whether aborted before or during the write', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  const folder = path.join(dir, 'out');
  const url = `file://${folder}/app.dump`;

  const controller = new AbortController();
  const body = new PassThrough();
  const putting = storage.put(url, body, { signal: controller.signal });
  body.write(randomBytes(512 * 1024));
  // Wait until the temporary file exists and holds data, then abort mid-stream.
  for (let i = 0; i < 200 && !(existsSync(folder) && readdirSync(folder).length > 0); i++) await sleep(5);
  assert.match(readdirSync(folder)[0] ?? '', /^\.app\.dump\.partial-[0-9a-f]{12}$/);
  await sleep(20);
  controller.abort(new Error('cancelled by the test'));
  await assert.rejects(putting, /cancelled by the test/);
  assert.deepEqual(readdirSync(folder), []);

  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(storage.put(`file://${dir}/other/x.dump`, Readable.from([Buffer.from('x')]), { signal: aborted.signal }));
  assert.equal(existsSync(path.join(dir, 'other')), false);
});

void test('list finds every object under a prefix, recursively, without partials; delete removes one', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  const base = `file://${dir}/backups/nightly`;
  const objects = ['run-1/app.dump', 'run-1/manifest.json', 'run-2/app.dump', 'run-2/sub/deep.bin'];
  for (const o of objects) await storage.put(`${base}/${o}`, Readable.from([Buffer.from(o)]), { signal: signal() });
  await storage.put(`file://${dir}/backups/nightly-old/x`, Readable.from([Buffer.from('old')]), { signal: signal() });
  writeFileSync(path.join(dir, 'backups', 'nightly', 'run-2', '.app.dump.partial-0123456789ab'), 'half');
  mkdirSync(path.join(dir, 'backups', 'nightly', 'run-3'));

  const listed = await storage.list(`${base}/`);
  assert.deepEqual(
    listed,
    objects.map((o) => ({ url: `${base}/${o}`, bytes: o.length })),
  );
  assert.deepEqual(
    (await storage.list(`${base}/run-1`)).map((o) => o.url),
    [`${base}/run-1/app.dump`, `${base}/run-1/manifest.json`],
  );
  assert.deepEqual((await storage.list(base)).length, 5, 'a prefix without / also matches nightly-old');
  assert.deepEqual(await storage.list(`file://${dir}/missing/`), []);

  // A relative prefix lists relative URLs that get() reads.
  const relBase = relativeUrl(path.join(dir, 'backups', 'nightly'));
  const relListed = await storage.list(`${relBase}/run-2/`);
  assert.deepEqual(
    relListed.map((o) => o.url),
    [`${relBase}/run-2/app.dump`, `${relBase}/run-2/sub/deep.bin`],
  );
  assert.equal((await readAll(await storage.get(relListed[1]!.url))).toString(), 'run-2/sub/deep.bin');

  await storage.delete(`${base}/run-1/app.dump`);
  await storage.delete(`${base}/run-1/app.dump`);
  assert.deepEqual(
    (await storage.list(`${base}/run-1/`)).map((o) => o.url),
    [`${base}/run-1/manifest.json`],
  );
  await assert.rejects(storage.get(`${base}/run-1/app.dump`), (err: Error) => {
    assert.ok(err instanceof RepositoryError);
    assert.match(err.message, /object "file:\/\/.*\/run-1\/app\.dump" does not exist/);
    return true;
  });
});

void test('URLs that are not file://./relative or file:///absolute are refused with a hint', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  for (const bad of ['file://host/x', 's3://bucket/key', 'file:relative/x', 'file://', 'backups/x']) {
    await assert.rejects(storage.get(bad), (err: Error) => {
      assert.ok(err instanceof DbflowError);
      assert.ok(
        err.message.includes(`"${bad}" is not a file storage URL; write file://./relative/path or file:///absolute/path.`),
        err.message,
      );
      return true;
    });
  }
  await assert.rejects(storage.put(`file://${dir}/folder/`, Readable.from([]), { signal: signal() }), /names a folder, not an object/);
  await assert.rejects(storage.get(`file://${dir}`), /names a folder|is a folder/);
  mkdirSync(path.join(dir, 'sub'));
  await assert.rejects(storage.get(`file://${dir}/sub`), /is a folder, not an object/);
});
