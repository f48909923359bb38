// The `postgres` database driver: exported snapshots, pg_dump streams, pg_restore into scratch databases.
import { defineDriver } from '../../src/plugin-api.js';
import { markParticipant } from './mark.js';
import { queryAt } from './assert-query.js';
import { coverage, serverDatabases } from './coverage.js';
import { throwawayServer } from './throwaway.js';
import { throwawayMissing } from './instance.js';
import { CUSTOM_FORMAT, DIRECTORY_FORMAT, dumpSnapshot } from './dump.js';
import { optionsSchema } from './options.js';
import { restoreDump } from './restore.js';
import { rowCountsAt } from './row-counts.js';
import { createScratch } from './scratch.js';
import { reapScratch } from './reap.js';
import { createTarget, targetExists } from './create.js';
import { participate } from './participant.js';
import { preflight } from './preflight.js';
import { walArchive } from './receive-wal.js';
import { takeSnapshot } from './snapshot.js';
import { parsePgUrl } from './url.js';
import { BASEBACKUP_FORMAT } from './basebackup.js';
import { restoreInstance } from './physical-restore.js';
import { dumpGlobals, GLOBALS_FORMAT, privilegesQuery } from './globals.js';

/** The driver for `driver: postgres` databases with `url: postgres://user@host:port/db`. */
export const postgresDriver = defineDriver({
  name: 'postgres',
  options: optionsSchema,
  checkUrl(url) {
    try {
      parsePgUrl(url);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  snapshot: takeSnapshot,
  participate,
  markParticipant,
  dump: dumpSnapshot,
  dumpGlobals,
  privilegesQuery,
  stockRestore({ format, decoded, database, position }) {
    // Before the databases, as a superuser of the new server; "already exists" for its own superuser is expected.
    if (format === GLOBALS_FORMAT) return `${decoded} | psql -X -d postgres`;
    if (format === CUSTOM_FORMAT) return `${decoded} | pg_restore --no-owner --clean --if-exists -d <new database>`;
    if (format === DIRECTORY_FORMAT) {
      return `mkdir ${database}.d && ${decoded} | tar -x -C ${database}.d && pg_restore --no-owner --clean --if-exists -j 4 -d <new database> ${database}.d`;
    }
    if (format === BASEBACKUP_FORMAT) {
      const point = typeof position?.restore_point === 'string' ? position.restore_point : '<restore_point from the manifest>';
      // As the server's user (postgres): the data directory must be its own, mode 0700. postgresql.conf: the production one, or empty.
      return `mkdir -m 0700 <datadir> && ${decoded} | tar -x -C <datadir> && touch <datadir>/recovery.signal <datadir>/postgresql.conf && pg_ctl start -D <datadir> -o "-c restore_command=false -c recovery_target_name=${point} -c recovery_target_action=promote"`;
    }
    return undefined;
  },
  physicalFormats: [BASEBACKUP_FORMAT],
  startDatadir: (dir) => `pg_ctl start -D ${dir} -o "-c port=<a free port>"${process.getuid?.() === 0 ? ' (as the postgres user)' : ''}`,
  restoreInstance,
  scratch: createScratch,
  restore: restoreDump,
  create: createTarget,
  exists: targetExists,
  rowCounts: rowCountsAt,
  query: queryAt,
  coverage,
  serverDatabases,
  throwaway: throwawayServer,
  throwawayMissing,
  reap: reapScratch,
  preflight,
  logArchive: walArchive,
});
