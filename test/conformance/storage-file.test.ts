// The file storage on the storage conformance suite: under an absolute and under a relative prefix.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fileStorage from '../../plugins/storage-file/index.js';
import { describeStorage } from '../../src/testing/index.js';

const storage = fileStorage.storages!.find((s) => s.scheme === 'file')!;

// A fresh folder, removed after the test.
function folder(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-conformance-file-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describeStorage('storage-file (file:///absolute/)', () => {
  const { dir, cleanup } = folder();
  return { storage, prefix: `file://${dir}/`, cleanup };
});

describeStorage('storage-file (file://./relative/)', () => {
  const { dir, cleanup } = folder();
  const relative = path.relative(process.cwd(), dir).split(path.sep).join('/');
  return { storage, prefix: `file://${relative.startsWith('.') ? relative : `./${relative}`}/`, cleanup };
});
