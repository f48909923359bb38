// What a mariadb-backup base backup needs of the server, checked before it starts: MariaDB, the binary log, privileges, the files here.
import { existsSync } from 'node:fs';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { DbflowError, type PreflightMissing } from '../../src/plugin-api.js';
import { serverKind, type ServerKind } from './barrier.js';
import { literal } from './connect.js';
import { grantDatabase, hasPrivilege, parseGrants } from './grants.js';
import type { MyConnection } from './url.js';

// mariadb-backup's own needs (BACKUP STAGE and FTWRL: RELOAD; its checks of running queries: PROCESS; LOCK TABLES; the
// binlog position: BINLOG MONITOR, REPLICATION CLIENT before 10.5), and RELOAD again for the counts' read lock.
const GLOBAL = ['RELOAD', 'PROCESS', 'LOCK TABLES'];

/** What is missing for a base backup of the server `c` is connected to (as the pipeline's user), each with what to change. */
export async function mariabackupMissing(c: Connection, conn: MyConnection): Promise<{ missing: PreflightMissing[]; kind: ServerKind }> {
  const kind = await serverKind(c);
  const missing: PreflightMissing[] = [];
  if (kind.flavor !== 'mariadb') {
    missing.push({
      need: `a mariadb-backup base backup (the server is MySQL ${kind.version})`,
      grant: 'back it up with snapshot and dump',
    });
    return { missing, kind };
  }
  const [[me]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS user, @@log_bin AS log_bin, @@datadir AS datadir');
  const user = String(me!.user);
  const at = user.lastIndexOf('@');
  const to = ` TO ${literal(user.slice(0, at))}@${literal(user.slice(at + 1))};`;
  const [rows] = await c.query<RowDataPacket[]>('SHOW GRANTS');
  const grants = parseGrants(rows.map((r) => String(Object.values(r)[0])));
  const has = (privilege: string, on?: string): boolean => hasPrivilege(grants, privilege, on);
  const monitor = kind.major > 10 || (kind.major === 10 && kind.minor >= 5) ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
  const global = [...GLOBAL, monitor].filter((p) => !has(p) && !(p === monitor && (has('REPLICATION CLIENT') || has('SUPER'))));
  if (global.length)
    missing.push({
      need: 'mariadb-backup (its backup locks, the running queries, the binlog position) and the read lock the counts are taken under',
      grant: `GRANT ${global.join(', ')} ON *.*${to}`,
    });
  if (!has('SELECT', conn.database))
    missing.push({ need: `the row counts of database ${conn.database}`, grant: `GRANT SELECT ON ${grantDatabase(conn.database)}.*${to}` });
  if (Number(me!.log_bin) !== 1)
    missing.push({
      need: "a base backup whose counts are proved at its end (the backup's binary log position)",
      grant:
        'turn the binary log on: log_bin = <name> and server_id = <n> under [mariadbd] in the server configuration, then restart the server',
    });
  const datadir = String(me!.datadir);
  if (!existsSync(datadir))
    missing.push({
      need: `a base backup reads the server's files (${datadir}), which are not on this machine`,
      grant: 'run dbflow on the database server (mariadb-backup copies the data directory)',
    });
  return { missing, kind };
}

/** The server's flavour, or one error that lists everything to change before a base backup can be taken. */
export async function mariabackupChecks(c: Connection, conn: MyConnection, what: string): Promise<ServerKind> {
  const { missing, kind } = await mariabackupMissing(c, conn);
  if (missing.length)
    throw new DbflowError(
      `${what}: cannot take a base backup of the server at ${conn.display}:\n${missing.map((m) => `  - ${m.need}: ${m.grant}`).join('\n')}`,
    );
  return kind;
}
