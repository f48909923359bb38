// The `sqlite` database driver: online-backup snapshots, file dumps, file restores.
import { defineDriver } from '../../src/plugin-api.js';
import { dumpSnapshot, SQLITE_FORMAT } from './dump.js';
import { optionsSchema } from './options.js';
import { restoreDump } from './restore.js';
import { rowCountsAt } from './row-counts.js';
import { createScratch } from './scratch.js';
import { createTarget, targetExists } from './create.js';
import { preflight } from './preflight.js';
import { takeSnapshot } from './snapshot.js';

/** The driver for `driver: sqlite` databases with `url: sqlite:<path>`. */
export const sqliteDriver = defineDriver({
  name: 'sqlite',
  options: optionsSchema,
  snapshot: takeSnapshot,
  dump: (_ctx, { db, snapshot }) => dumpSnapshot(db, snapshot),
  stockRestore: ({ format, decoded, database }) => (format === SQLITE_FORMAT ? `${decoded} > ${database}.sqlite3` : undefined),
  scratch: (ctx, { name }) => createScratch(ctx, name),
  restore: restoreDump,
  create: (_ctx, { db }) => createTarget(db),
  exists: (_ctx, { db }) => Promise.resolve(targetExists(db)),
  rowCounts: rowCountsAt,
  preflight,
});
