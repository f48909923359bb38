// Temporary folders for tests, removed when the test (or suite) ends.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh folder under the OS temp dir; removed after the test when `t` is given. */
export function tmpDir(t?: Pick<TestContext, 'after'>, prefix = 'dbflow-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t?.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
