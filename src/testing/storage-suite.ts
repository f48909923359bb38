// describeStorage: the conformance suite every storage passes, first-party ones included.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import type { Storage } from '../plugins/types.js';
import { abortedPut, failedPut, invisibleWhileStreaming, overwrite } from './storage-atomic.js';
import {
  assertMissing,
  expected,
  ISO_TIME,
  listed,
  neverAborted,
  type StorageSuiteOptions,
  type StorageSuiteSettings,
  type StorageUnderTest,
} from './storage-checks.js';
import { chunksOf, digest, randomStream, readAll } from './streams.js';
import { prepare, type Setup } from './support.js';

/** What an author's setup gives the storage suite, for one test. */
export interface StorageSetup {
  storage: Storage;
  /**
   * A URL prefix ending in `/` under which nothing exists yet and the suite may write, e.g.
   * `s3://bucket/<random>/`. Use a new one for every call (every test), so tests do not see each other.
   */
  prefix: string;
  /** Removes what the test left (the suite deletes what it put, but not after a failure). */
  cleanup?(): void | Promise<void>;
}

const MiB = 1024 * 1024;

/**
 * Registers the storage conformance suite with `node:test`: a `describe(name)` holding one test per
 * rule of the Storage contract (see "Testing your plugin" in docs/plugins.md for the rules). `setup`
 * runs at the start of every test and gives a storage and a fresh prefix.
 */
export function describeStorage(name: string, setup: Setup<StorageSetup>, options: StorageSuiteOptions = {}): void {
  const o: StorageSuiteSettings = {
    unfinished: true,
    modified: true,
    bigBytes: 6 * MiB,
    streamingBytes: 6 * MiB,
    timeout: 120_000,
    ...options,
  };
  const storageTest = (title: string, body: (s: StorageUnderTest, o: StorageSuiteSettings, t: TestContext) => Promise<void>): void => {
    test(title, { timeout: o.timeout }, async (t) => {
      const s = await prepare(t, setup);
      if (!s) return;
      assert.ok(s.prefix.endsWith('/'), `the setup's prefix must end in "/": "${s.prefix}"`);
      assert.ok(s.prefix.startsWith(`${s.storage.scheme}:`), `the setup's prefix "${s.prefix}" must be a ${s.storage.scheme}: URL`);
      await body(s, o, t);
    });
  };
  describe(name, () => {
    storageTest(
      'put then get round-trips the bytes exactly (empty, small, and a multi-MiB body in uneven chunks); put returns the URL and the size',
      roundTrips,
    );
    storageTest(
      'an object is not visible while its put streams: get fails, list leaves it out (with { unfinished: true } it is listed, marked unfinished)',
      invisibleWhileStreaming,
    );
    storageTest(
      "a body that fails mid-stream rejects the put with the body's error and leaves nothing (not listed, not even unfinished; get fails)",
      failedPut,
    );
    storageTest(
      'an aborted put rejects promptly, destroys its body and leaves nothing; one aborted before it starts writes nothing',
      abortedPut,
    );
    storageTest(
      'overwriting replaces an object atomically: while the new body streams get returns the old one whole; a failed overwrite keeps it',
      overwrite,
    );
    storageTest(
      'list(prefix): every object whose URL starts with the prefix string, sub-folders included, with its URL exactly as put and its size',
      listRules,
    );
    storageTest('list of a prefix with nothing under it is empty, not an error', emptyPrefix);
    storageTest('delete removes an object; deleting a missing object is not an error', deletes);
    storageTest('get of a missing object rejects with a RepositoryError that names the URL', missingObjects);
    storageTest('names with spaces and non-ASCII characters round-trip through put, get, list and delete', names);
    storageTest(
      'a signal aborted before get, list or delete rejects it with its reason and changes nothing; an abort while a get streams errors the stream',
      abortedReads,
    );
  });
}

async function abortedReads(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  const url = `${s.prefix}aborted/object.bin`;
  const data = randomBytes(Math.max(o.bigBytes, 4 * MiB));
  await s.storage.put(url, Readable.from(chunksOf(data)), { signal: neverAborted() });
  const reason = new Error('aborted by the test');
  const aborted = AbortSignal.abort(reason);
  for (const [what, call] of [
    ['get', () => s.storage.get(url, { signal: aborted })],
    ['list', () => s.storage.list(s.prefix, { signal: aborted })],
    ['delete', () => s.storage.delete(url, { signal: aborted })],
  ] as const) {
    await assert.rejects(call(), (err) => err === reason, `${what} with an aborted signal rejects with the signal's reason`);
  }
  assert.deepEqual(await listed(s, `${s.prefix}aborted/`), [[url, data.length]], 'the aborted delete left the object');
  // Aborted after the first bytes arrived: the stream errors (whatever the error), promptly, and does not end normally.
  const controller = new AbortController();
  const stream = await s.storage.get(url, { signal: controller.signal });
  let read = 0;
  const started = Date.now();
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) {
        read += (chunk as Buffer).length;
        if (!controller.signal.aborted) controller.abort(reason);
      }
    })(),
    'a get aborted while it streams errors its stream',
  );
  assert.ok(read < data.length, `the stream stopped before its end (${read} of ${data.length} bytes)`);
  assert.ok(Date.now() - started < 10_000, 'promptly');
}

async function roundTrips(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  for (const [label, data] of [
    ['empty', Buffer.alloc(0)],
    ['small', randomBytes(1000)],
  ] as const) {
    const url = `${s.prefix}round-trip/${label}.bin`;
    const put = await s.storage.put(url, Readable.from(chunksOf(data)), { signal: neverAborted() });
    assert.equal(put.url, url, `put resolves with the URL it wrote (${label})`);
    assert.equal(put.bytes, data.length, `put resolves with the number of bytes stored (${label})`);
    assert.ok((await readAll(await s.storage.get(url))).equals(data), `get returns exactly what was put (${label})`);
  }
  const url = `${s.prefix}round-trip/big.bin`;
  const big = randomStream(o.bigBytes);
  const put = await s.storage.put(url, big.stream, { signal: neverAborted() });
  assert.equal(put.url, url);
  assert.equal(put.bytes, o.bigBytes, 'put resolves with the number of bytes stored (big)');
  const got = await digest(await s.storage.get(url));
  assert.equal(got.bytes, o.bigBytes, 'get returns as many bytes as were put (big)');
  assert.equal(got.sha256, await big.sha256, 'get returns exactly what was put (big)');
  assert.deepEqual(
    await listed(s, `${s.prefix}round-trip/`),
    expected([
      [`${s.prefix}round-trip/empty.bin`, 0],
      [`${s.prefix}round-trip/small.bin`, 1000],
      [url, o.bigBytes],
    ]),
  );
}

async function listRules(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  const p = `${s.prefix}list/`;
  const names = ['a/one', 'a/two.bin', 'a/sub/deep/three', 'ab/four', 'b'];
  for (const n of names) await s.storage.put(`${p}${n}`, Readable.from([Buffer.from(`object ${n}`)]), { signal: neverAborted() });
  const entry = (n: string): [string, number] => [`${p}${n}`, `object ${n}`.length];
  assert.deepEqual(
    await listed(s, `${p}a/`),
    expected(['a/one', 'a/two.bin', 'a/sub/deep/three'].map(entry)),
    'a folder prefix lists everything in it, sub-folders included',
  );
  assert.deepEqual(
    await listed(s, `${p}a`),
    expected(['a/one', 'a/two.bin', 'a/sub/deep/three', 'ab/four'].map(entry)),
    'a prefix is a string prefix: "a" also matches "ab/…"',
  );
  assert.deepEqual(await listed(s, `${p}a/t`), expected([entry('a/two.bin')]), 'a prefix may end inside a name');
  assert.deepEqual(await listed(s, `${p}a/one`), expected([entry('a/one')]), "an object's own URL lists that object");
  assert.deepEqual(await listed(s, p), expected(names.map(entry)), 'the whole prefix');
  const plain = await s.storage.list(p);
  assert.ok(
    plain.every((x) => x.unfinished === undefined),
    'finished objects are not marked unfinished',
  );
  if (!o.modified) return;
  const before = Date.now() - 24 * 3600_000;
  const after = Date.now() + 24 * 3600_000;
  for (const x of await s.storage.list(p, { modified: true })) {
    assert.ok(
      typeof x.modified === 'string' && ISO_TIME.test(x.modified),
      `list(prefix, { modified: true }) gives an ISO 8601 time for ${x.url}: ${String(x.modified)}`,
    );
    const at = Date.parse(x.modified);
    assert.ok(at > before && at < after, `the modified time of ${x.url} is about now: ${x.modified}`);
  }
}

async function emptyPrefix(s: StorageUnderTest): Promise<void> {
  assert.deepEqual(await listed(s, s.prefix), [], 'the fresh prefix lists nothing');
  assert.deepEqual(await listed(s, `${s.prefix}missing/deeper/`), [], 'a folder that does not exist lists nothing');
  assert.deepEqual(await listed(s, `${s.prefix}missing`), [], 'a prefix that matches nothing lists nothing');
  assert.deepEqual(await listed(s, `${s.prefix}missing/`, { unfinished: true }), [], 'also with { unfinished: true }');
  await s.storage.put(`${s.prefix}present/x`, Readable.from([Buffer.from('x')]), { signal: neverAborted() });
  assert.deepEqual(await listed(s, `${s.prefix}present/y`), [], 'a prefix next to an object, matching none, lists nothing');
}

async function deletes(s: StorageUnderTest): Promise<void> {
  const keep = `${s.prefix}delete/keep.bin`;
  const gone = `${s.prefix}delete/gone.bin`;
  await s.storage.put(keep, Readable.from([Buffer.from('keep')]), { signal: neverAborted() });
  await s.storage.put(gone, Readable.from([Buffer.from('gone')]), { signal: neverAborted() });
  await s.storage.delete(gone);
  assert.deepEqual(await listed(s, `${s.prefix}delete/`), [[keep, 4]], 'the deleted object is not listed, the other one is');
  await assertMissing(s, gone, 'after delete');
  await s.storage.delete(gone);
  await s.storage.delete(`${s.prefix}delete/never-was.bin`);
  await s.storage.delete(`${s.prefix}no-such-folder/never-was.bin`);
  assert.equal((await readAll(await s.storage.get(keep))).toString(), 'keep', 'deleting one object leaves its neighbour');
}

async function missingObjects(s: StorageUnderTest): Promise<void> {
  await assertMissing(s, `${s.prefix}missing/object.bin`, 'an object in a folder that does not exist');
  await s.storage.put(`${s.prefix}present/x`, Readable.from([Buffer.from('x')]), { signal: neverAborted() });
  await assertMissing(s, `${s.prefix}present/y`, 'an object next to another one');
}

async function names(s: StorageUnderTest): Promise<void> {
  const objects = ['names/with space.bin', 'names/naïve café/Ünïcödé 日本語 ☃.txt', 'names/emoji 🦆/x'].map((n) => `${s.prefix}${n}`);
  for (const url of objects) {
    const put = await s.storage.put(url, Readable.from([Buffer.from(url)]), { signal: neverAborted() });
    assert.equal(put.url, url);
    assert.equal((await readAll(await s.storage.get(url))).toString(), url, `get("${url}") returns what was put`);
  }
  assert.deepEqual(
    await listed(s, `${s.prefix}names/`),
    expected(objects.map((u) => [u, Buffer.byteLength(u)])),
    'list gives the names exactly as put',
  );
  assert.deepEqual(
    await listed(s, `${s.prefix}names/naïve`),
    expected([[objects[1]!, Buffer.byteLength(objects[1]!)]]),
    'a non-ASCII prefix matches',
  );
  for (const url of objects) await s.storage.delete(url);
  assert.deepEqual(await listed(s, `${s.prefix}names/`), [], 'delete removes them');
}
