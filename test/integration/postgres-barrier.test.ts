// The write barrier (LOCK TABLE … IN SHARE MODE, under which restore points and coordinated cuts are taken) never
// deadlocks with writers: a transaction that writes one table and then another is never failed by a backup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dbflow } from '../helpers/cli.js';
import { startWriter } from '../helpers/pg-writer.js';
import { baseBackupSetup } from '../helpers/wal-archive.js';

void test(
  'base backups under a writer that locks two tables in the other order: no transaction of the writer fails',
  { timeout: 240_000 },
  async (t) => {
    const s = await baseBackupSetup(t);
    if (!s) return;
    // The writer inserts into writer_events, then updates writer_counters; the barrier locks the tables in name order
    // (writer_counters first): taken one by one and held while waiting, they would deadlock.
    const writer = await startWriter(s.pg.url, { password: s.pg.password, holdMs: 5 });
    try {
      for (let i = 0; i < 5; i++) {
        const run = await dbflow(['run', s.pipeline], { env: s.env, cwd: s.dir });
        assert.equal(run.exitCode, 0, run.stdout + run.stderr);
      }
    } finally {
      // stop() rejects when one of the writer's transactions failed (a deadlock victim).
      const commits = await writer.stop();
      t.diagnostic(`${commits.length} commits during 5 base backups`);
    }
  },
);
