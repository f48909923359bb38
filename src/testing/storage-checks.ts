// Checks the storage suite makes again and again: what a prefix lists, that an object is missing, writing a body by hand.
import assert from 'node:assert/strict';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { PassThrough } from 'node:stream';
import type { Storage, StoredObject } from '../plugins/types.js';
import { describeError, isKind, waitFor } from './support.js';

/** What the storage suite needs of a storage under test. */
export interface StorageUnderTest {
  storage: Storage;
  /** The fresh prefix every URL of the test starts with. */
  prefix: string;
}

/** Which cases apply, and their sizes. */
export interface StorageSuiteOptions {
  /** The storage lists writes in progress with `list(prefix, { unfinished: true })` (default true). */
  unfinished?: boolean;
  /** The storage gives `modified` times with `list(prefix, { modified: true })` (default true). */
  modified?: boolean;
  /** Size of the big object that is streamed in chunks (default 6 MiB). */
  bigBytes?: number;
  /**
   * How much of a body the atomicity cases write before they look (default 6 MiB: past the smallest S3
   * part, so that a multipart upload is under way).
   */
  streamingBytes?: number;
  /** Timeout of each test in ms (default 120 000). */
  timeout?: number;
}

/** Options with their defaults. */
export type StorageSuiteSettings = Required<StorageSuiteOptions>;

/** A signal that is never aborted. */
export const neverAborted = (): AbortSignal => new AbortController().signal;

/** `list(prefix)` as `url → bytes`, sorted by URL (the contract does not fix an order). */
export async function listed(s: StorageUnderTest, prefix: string, options?: { unfinished?: boolean }): Promise<[string, number][]> {
  const objects = await s.storage.list(prefix, options);
  return objects.map((o): [string, number] => [o.url, o.bytes]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Objects as `url → bytes`, sorted by URL, for comparing with `listed`. */
export function expected(objects: [string, number][]): [string, number][] {
  return [...objects].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `get(url)` rejects with a RepositoryError (a DbflowError) whose message quotes the URL. */
export async function assertMissing(s: StorageUnderTest, url: string, why: string): Promise<void> {
  let stream;
  try {
    stream = await s.storage.get(url);
  } catch (err) {
    assert.ok(
      isKind(err, 'RepositoryError'),
      `${why}: get("${url}") must reject with a RepositoryError (a DbflowError), not ${describeError(err)}`,
    );
    assert.ok((err as Error).message.includes(url), `${why}: the error must name the URL "${url}": ${(err as Error).message}`);
    return;
  }
  stream.destroy();
  assert.fail(`${why}: get("${url}") must reject, but it returned a stream`);
}

/** Nothing under the prefix: no object, and no unfinished write either. */
export async function assertNothingUnder(s: StorageUnderTest, why: string): Promise<void> {
  assert.deepEqual(await listed(s, s.prefix), [], `${why}: list(prefix) must be empty`);
  const unfinished = (await s.storage.list(s.prefix, { unfinished: true })).map((o) => o.url);
  assert.deepEqual(
    unfinished,
    [],
    `${why}: list(prefix, { unfinished: true }) must be empty (a failed or aborted put cleans up after itself)`,
  );
}

/** The entries marked unfinished. */
export function unfinishedOf(objects: StoredObject[]): StoredObject[] {
  return objects.filter((o) => o.unfinished !== undefined);
}

/** Random bytes written into `body` by hand, honouring back-pressure: resolves once the reader has taken all of them. */
export async function writeRandom(body: PassThrough, bytes: number, hash: Hash = createHash('sha256')): Promise<Hash> {
  for (let sent = 0; sent < bytes;) {
    const piece = randomBytes(Math.min(64 * 1024, bytes - sent));
    sent += piece.length;
    hash.update(piece);
    if (!body.write(piece)) await once(body, 'drain');
  }
  await waitFor('the put to read what was written', () => body.writableLength === 0 && body.readableLength === 0);
  return hash;
}

/** ISO 8601 with a time and a zone, e.g. 2026-12-04T23:51:06.000Z. */
export const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
