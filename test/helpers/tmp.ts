// Temporary folders for tests, removed when the test (or suite) ends.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh folder under the OS temp dir; removed after the test when `t` is given. */
export function tmpDir(t?: Pick<TestContext, 'after'>, prefix = 'dbflow-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  // A process that ends as the test does (a shell writing its history on SIGHUP) may still add a file: retry.
  t?.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
  return dir;
}
