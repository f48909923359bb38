// The file storage beyond the contract: relative URLs, temporary files of puts, and the URLs it refuses.
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

// (The Storage contract itself — round trips, atomic puts, failed and aborted puts, list, delete, missing objects,
// names — is checked by the conformance suite in test/conformance/storage-file.test.ts.)

void test('a relative URL and the absolute one name the same object', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  const rel = relativeUrl(path.join(dir, 'nested', 'deeper', 'manifest.json'));
  await storage.put(rel, Readable.from([Buffer.from('{"ok":true}\n')]), { signal: signal() });
  assert.equal((await readAll(await storage.get(rel))).toString(), '{"ok":true}\n');
  assert.equal((await readAll(await storage.get(`file://${dir}/nested/deeper/manifest.json`))).toString(), '{"ok":true}\n');
  assert.deepEqual(readdirSync(path.join(dir, 'nested', 'deeper')), ['manifest.json'], 'no temporary file is left');
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

void test('list leaves out empty folders and the temporary files of puts that died, unless asked for unfinished writes', async (t) => {
  const dir = tempDir(t, 'dbflow-file-');
  const base = `file://${dir}/backups/nightly`;
  await storage.put(`${base}/run-2/app.dump`, Readable.from([Buffer.from('dump')]), { signal: signal() });
  // What a put killed mid-write (SIGKILL) leaves behind, and a folder without objects.
  writeFileSync(path.join(dir, 'backups', 'nightly', 'run-2', '.app.dump.partial-0123456789ab'), 'half');
  mkdirSync(path.join(dir, 'backups', 'nightly', 'run-3'));
  assert.deepEqual(await storage.list(`${base}/`), [{ url: `${base}/run-2/app.dump`, bytes: 4 }]);
  assert.deepEqual(await storage.list(`${base}/`, { unfinished: true }), [
    { url: `${base}/run-2/.app.dump.partial-0123456789ab`, bytes: 4, unfinished: {} },
    { url: `${base}/run-2/app.dump`, bytes: 4 },
  ]);
  await storage.delete(`${base}/run-2/.app.dump.partial-0123456789ab`);
  assert.deepEqual(await storage.list(`${base}/`, { unfinished: true }), [{ url: `${base}/run-2/app.dump`, bytes: 4 }]);
  await assert.rejects(storage.get(`${base}/run-1/app.dump`), (err: Error) => {
    assert.ok(err instanceof RepositoryError);
    assert.match(
      err.message,
      /object "file:\/\/.*\/run-1\/app\.dump" does not exist \(looked for .*\); check the URL, or list the repository\./,
    );
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
