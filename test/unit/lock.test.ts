// The run lock through the public API: the holder named even while it is still writing its record.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { acquireLock, LockedError, lockFile, type LockOwner } from '../../src/index.js';
import { tmpDir } from '../helpers/tmp.js';

test('a lock taken an instant ago, whose owner record is not written yet: the refusal still names the holder', async (t) => {
  process.env.DBFLOW_LOCK_DIR = tmpDir(t);
  t.after(() => delete process.env.DBFLOW_LOCK_DIR);
  const file = lockFile('p', 'file:///repo');
  // A holder that has the lock but has not yet written who it is.
  const holder = new Database(file, { timeout: 0 });
  holder.exec('BEGIN EXCLUSIVE');
  t.after(() => holder.close());
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    user: 'someone',
    pipeline: 'p',
    repository: 'file:///repo',
    since: new Date().toISOString(),
    by: 'dbflow run',
  };
  setTimeout(() => writeFileSync(`${file}.json`, JSON.stringify(owner)), 300);
  await assert.rejects(acquireLock({ pipeline: 'p', repository: 'file:///repo', waitMs: 0, by: 'test' }), (err: unknown) => {
    assert.ok(err instanceof LockedError);
    assert.match(err.message, new RegExp(`is already running: pid ${process.pid} \\(dbflow run\\) of someone on `));
    assert.equal(err.exitCode, 75);
    return true;
  });
});

test('a holder that ends while its record is looked for: the lock is taken, not refused', async (t) => {
  process.env.DBFLOW_LOCK_DIR = tmpDir(t);
  t.after(() => delete process.env.DBFLOW_LOCK_DIR);
  const file = lockFile('p', 'file:///repo');
  const holder = new Database(file, { timeout: 0 });
  holder.exec('BEGIN EXCLUSIVE');
  setTimeout(() => holder.close(), 300);
  const lock = await acquireLock({ pipeline: 'p', repository: 'file:///repo', waitMs: 0, by: 'test' });
  assert.equal(path.dirname(lock.file), process.env.DBFLOW_LOCK_DIR);
  lock.release();
});
