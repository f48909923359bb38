// The storage suite's atomicity cases: a put is invisible until it ends, and one that fails or is aborted leaves nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import {
  assertMissing,
  assertNothingUnder,
  listed,
  neverAborted,
  unfinishedOf,
  writeRandom,
  type StorageSuiteSettings,
  type StorageUnderTest,
} from './storage-checks.js';
import { digest, readAll } from './streams.js';
import { causedBy, describeError, waitFor } from './support.js';

/** How long an aborted put may take to reject. */
const PROMPT_MS = 5000;

export async function invisibleWhileStreaming(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  const url = `${s.prefix}streaming/object.bin`;
  const body = new PassThrough();
  const putting = s.storage.put(url, body, { signal: neverAborted() });
  putting.catch(() => undefined); // awaited below
  const hash = await writeRandom(body, o.streamingBytes);
  assert.deepEqual(await listed(s, s.prefix), [], 'list(prefix) does not show a put that is still streaming');
  await assertMissing(s, url, 'while its put streams');
  if (o.unfinished) {
    // A multipart upload may start a moment after its first part was read.
    const shown = await waitFor('list(prefix, { unfinished: true }) to show the write in progress', async () => {
      const all = await s.storage.list(s.prefix, { unfinished: true });
      return unfinishedOf(all).length > 0 ? all : undefined;
    });
    for (const x of shown) {
      assert.ok(x.unfinished !== undefined, `with { unfinished: true }, only the write in progress is listed, marked unfinished: ${x.url}`);
      assert.ok(x.url.startsWith(s.prefix), `an unfinished write's URL starts with the prefix: ${x.url}`);
      assert.ok(Number.isInteger(x.bytes) && x.bytes >= 0, `an unfinished write has a byte count (0 when unknown): ${x.bytes}`);
    }
  }
  const tail = randomBytes(1000);
  hash.update(tail);
  body.end(tail);
  const put = await putting;
  assert.equal(put.bytes, o.streamingBytes + tail.length, 'put resolves with the size of the whole body');
  assert.deepEqual(
    await listed(s, s.prefix),
    [[url, o.streamingBytes + tail.length]],
    'once the put has resolved, the object is listed whole',
  );
  assert.deepEqual(unfinishedOf(await s.storage.list(s.prefix, { unfinished: true })), [], 'and nothing unfinished is left');
  assert.equal((await digest(await s.storage.get(url))).sha256, hash.digest('hex'), 'get returns the whole body');
}

export async function failedPut(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  const url = `${s.prefix}failed/object.bin`;
  const broke = new Error('the body broke (dbflow/testing)');
  const pieces = Math.ceil(o.streamingBytes / 65536);
  function* failing(): Generator<Buffer> {
    for (let i = 0; i < pieces; i++) yield randomBytes(65536);
    throw broke;
  }
  await assert.rejects(s.storage.put(url, Readable.from(failing()), { signal: neverAborted() }), (err) => {
    assert.ok(causedBy(err, broke), `put rejects with the body's error (or one caused by it), not ${describeError(err)}`);
    return true;
  });
  await assertNothingUnder(s, 'after a body failed mid-stream');
  await assertMissing(s, url, 'after a body failed mid-stream');

  const early = new PassThrough();
  early.destroy(broke);
  await assert.rejects(
    s.storage.put(url, early, { signal: neverAborted() }),
    (err) => causedBy(err, broke),
    'a body that failed before the put read it',
  );
  await assertNothingUnder(s, 'after a body that had failed already');
}

export async function abortedPut(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  const url = `${s.prefix}aborted/object.bin`;
  const controller = new AbortController();
  let read = 0;
  // Endless as far as the put can tell; past a cap it only stops giving data, so a put that ignores the abort waits.
  const cap = 4 * o.streamingBytes + 64 * 65536;
  const endless = new Readable({
    read() {
      if (read >= cap) return;
      read += 65536;
      this.push(randomBytes(65536));
    },
  });
  const putting = s.storage.put(url, endless, { signal: controller.signal });
  putting.catch(() => undefined); // awaited below
  await waitFor(`the put to read ${o.streamingBytes} bytes`, () => read >= o.streamingBytes);
  if (o.unfinished) {
    await waitFor(
      'the write in progress to be listed as unfinished',
      async () => unfinishedOf(await s.storage.list(s.prefix, { unfinished: true })).length > 0,
    );
  }
  const reason = new Error('cancelled by dbflow/testing');
  const started = performance.now();
  controller.abort(reason);
  const late = new Error(`the put did not settle within ${PROMPT_MS} ms of the abort`);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(late), PROMPT_MS)));
  deadline.catch(() => undefined);
  await assert.rejects(Promise.race([putting.finally(() => clearTimeout(timer)), deadline]), (err) => {
    if (err === late) endless.destroy();
    assert.notEqual(err, late, `an aborted put rejects within ${PROMPT_MS} ms`);
    assert.ok(
      causedBy(err, reason) || /abort|cancel/i.test((err as Error).message),
      `an aborted put rejects with the signal's reason, not ${describeError(err)}`,
    );
    return true;
  });
  const ms = performance.now() - started;
  assert.ok(ms < PROMPT_MS, `an aborted put rejects within ${PROMPT_MS} ms (took ${ms.toFixed(0)} ms)`);
  assert.ok(endless.destroyed, 'an aborted put destroys its body, so that its producer stops');
  await assertNothingUnder(s, 'after an abort mid-stream');
  await assertMissing(s, url, 'after an abort mid-stream');

  const before = new AbortController();
  before.abort(reason);
  const body = Readable.from([Buffer.from('never written')]);
  await assert.rejects(
    s.storage.put(`${s.prefix}aborted-before/object.bin`, body, { signal: before.signal }),
    Error,
    'a put whose signal is already aborted rejects',
  );
  assert.ok(body.destroyed, 'a put aborted before it started destroys its body');
  await assertNothingUnder(s, 'after a put aborted before it started');
}

export async function overwrite(s: StorageUnderTest, o: StorageSuiteSettings): Promise<void> {
  const url = `${s.prefix}overwrite/object.bin`;
  const v1 = randomBytes(100_000);
  await s.storage.put(url, Readable.from([v1]), { signal: neverAborted() });
  const body = new PassThrough();
  const putting = s.storage.put(url, body, { signal: neverAborted() });
  putting.catch(() => undefined); // awaited below
  const hash = await writeRandom(body, o.streamingBytes);
  assert.ok((await readAll(await s.storage.get(url))).equals(v1), 'while the new body streams, get returns the old object whole');
  assert.deepEqual(await listed(s, s.prefix), [[url, v1.length]], 'while the new body streams, list shows the old object');
  body.end();
  await putting;
  const v2 = await digest(await s.storage.get(url));
  assert.equal(v2.sha256, hash.digest('hex'), 'once the put has resolved, get returns the new object');
  assert.deepEqual(await listed(s, s.prefix), [[url, o.streamingBytes]], 'list shows the new size');

  const broke = new Error('the new body broke (dbflow/testing)');
  function* failing(): Generator<Buffer> {
    yield randomBytes(65536);
    throw broke;
  }
  await assert.rejects(s.storage.put(url, Readable.from(failing()), { signal: neverAborted() }), (err) => causedBy(err, broke));
  assert.equal((await digest(await s.storage.get(url))).sha256, v2.sha256, 'a failed overwrite leaves the object as it was');
  assert.deepEqual(unfinishedOf(await s.storage.list(s.prefix, { unfinished: true })), [], 'and nothing unfinished');
}
