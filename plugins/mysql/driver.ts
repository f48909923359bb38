// The `mysql` database driver: snapshots under a commit barrier, mariadb-dump streams, mariadb restores into scratch databases.
import { defineDriver } from '../../src/plugin-api.js';
import { markParticipant } from './mark.js';
import { queryAt } from './assert-query.js';
import { coverage, serverDatabases } from './coverage.js';
import { throwawayServer } from './throwaway.js';
import { throwawayMissing } from './instance.js';
import { dumpSnapshot, SQL_FORMAT } from './dump.js';
import { dumpGlobals, privilegesQuery, USERS_FORMAT } from './globals.js';
import { optionsSchema } from './options.js';
import { restoreDump } from './restore.js';
import { rowCountsAt } from './row-counts.js';
import { createScratch } from './scratch.js';
import { reapScratch } from './reap.js';
import { createTarget, targetExists } from './create.js';
import { participate, takeSnapshot } from './snapshot.js';
import { preflight } from './preflight.js';
import { binlogArchive } from './binlog-archive.js';
import { MARIABACKUP_FORMAT } from './mariabackup-format.js';
import { restoreInstance } from './physical-restore.js';

/** The driver for `driver: mysql` databases (MariaDB, MySQL) with `url: mysql://user@host:3306/db`. */
export const mysqlDriver = defineDriver({
  name: 'mysql',
  options: optionsSchema,
  snapshot: takeSnapshot,
  participate,
  markParticipant,
  dump: dumpSnapshot,
  dumpGlobals,
  privilegesQuery,
  stockRestore: ({ format, decoded }) => {
    if (format === SQL_FORMAT) return `${decoded} | mariadb <new database>`;
    // After the databases (grants name their tables); CREATE USER IF NOT EXISTS leaves the server's own accounts.
    if (format === USERS_FORMAT) return `${decoded} | mariadb  # after the database: its grants name its tables`;
    // Prepared where it is, then copied (--copy-back) into the empty data directory of a stopped server.
    if (format === MARIABACKUP_FORMAT)
      return `mkdir <dir> && ${decoded} | mbstream -x -C <dir> && mariadb-backup --prepare --target-dir=<dir> && mariadb-backup --copy-back --target-dir=<dir> --datadir=<datadir>`;
    return undefined;
  },
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
  logArchive: binlogArchive,
  physicalFormats: [MARIABACKUP_FORMAT],
  restoreInstance,
  // Its InnoDB settings as the backup recorded them; no binary log until the server's own settings are given.
  startDatadir: (dir) =>
    `mariadbd --defaults-file=${dir}/backup-my.cnf --datadir=${dir} --port=<a free port> --socket=${dir}/mariadbd.sock${process.getuid?.() === 0 ? ' --user=mysql (after chown -R mysql: the folder)' : ''}`,
});
