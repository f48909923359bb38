// Preflight: the privileges a backup of a MariaDB/MySQL database needs, read from the server without changing anything.
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  DbflowError,
  scratchDatabaseName,
  type DatabaseConfig,
  type DriverContext,
  type PreflightMissing,
  type PreflightOptions,
  type PreflightReport,
} from '../../src/plugin-api.js';
import { barrierName, serverKind, type ServerKind } from './barrier.js';
import { connect, literal, queryError } from './connect.js';
import { grantDatabase, hasPrivilege, parseGrants } from './grants.js';
import { mariabackupMissing } from './mariabackup-checks.js';
import { myOptions } from './options.js';
import { parseMyUrl, where, type MyConnection } from './url.js';

// What mariadb-dump --single-transaction --routines --triggers --events reads on the database besides routines:
// rows (SELECT), SHOW CREATE VIEW (SHOW VIEW), SHOW TRIGGERS (lists only with TRIGGER), SHOW EVENTS (refused without EVENT).
const DUMP_PRIVILEGES = ['SELECT', 'SHOW VIEW', 'TRIGGER', 'EVENT'];

// What a restore-test does on its scratch database: CREATE DATABASE, the dump's statements (DROP/CREATE TABLE, INSERT, ALTER TABLE
// … DISABLE KEYS, views, triggers, DROP/CREATE routines, events), the counts, DROP DATABASE.
const SCRATCH_PRIVILEGES = [
  'CREATE',
  'DROP',
  'SELECT',
  'INSERT',
  'ALTER',
  'INDEX',
  'CREATE VIEW',
  'SHOW VIEW',
  'TRIGGER',
  'EVENT',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
];

// Every scratch database name starts with this (scratchDatabaseName): the grant's pattern, wildcards escaped.
const SCRATCH_DATABASES = '`dbflow\\_verify\\_%`.*';

// The views, triggers, routines and events the dump holds, with the definer that a restore re-creates them with.
const OBJECTS_SQL = `SELECT 'view' AS kind, TABLE_NAME AS name, TABLE_NAME AS tbl, DEFINER AS definer FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
  UNION ALL SELECT 'trigger', TRIGGER_NAME, EVENT_OBJECT_TABLE, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
  UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME, NULL, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
  UNION ALL SELECT 'event', EVENT_NAME, NULL, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`;

interface DumpedObject {
  kind: string;
  name: string;
  tbl: string | null;
  definer: string;
}

/**
 * Connects as the snapshot does (to the server: a user with no privilege on the database is refused
 * there) and reads the session's grants from SHOW GRANTS — which, unlike information_schema, includes
 * those of its roles — for what a backup needs: RELOAD (the commit barrier), BINLOG MONITOR or REPLICATION
 * CLIENT (the binlog position), what mariadb-dump and the counts read, the routines' definitions, the
 * scratch databases of restore-tests, and what restoring the database's views, triggers, routines and
 * events takes (their definers; SUPER for triggers and functions while the binary log is on).
 */
export async function preflight(ctx: DriverContext, { db, use }: PreflightOptions): Promise<PreflightReport> {
  const conn = parseMyUrl(db.url, db.password);
  ctx.signal.throwIfAborted();
  const c = await connect(conn, `database "${db.name}" (${conn.display})`, { database: false });
  const stop = (): void => c.destroy();
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    ctx.signal.throwIfAborted();
    if (!use.baseBackup) return await check(c, conn, db, use.restoreTest ? scratchDatabaseName(ctx.run.id, db.name) : undefined);
    // A base backup (mariabackup) reads the server's files: no dump privileges, no scratch database (its restore-test
    // runs in a throwaway instance), unless the pipeline also dumps the database.
    const { missing, kind } = await mariabackupMissing(c, conn);
    const [[me]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS user');
    const base = { server: `MariaDB ${/^[\d.]+/.exec(kind.version)?.[0] ?? kind.version}`, user: String(me!.user), missing, notes: [] };
    if (!use.restoreTest) return base;
    const dumped = await check(c, conn, db, scratchDatabaseName(ctx.run.id, db.name));
    return { ...dumped, missing: [...missing, ...dumped.missing] };
  } catch (err) {
    ctx.signal.throwIfAborted();
    throw queryError(err, `database "${db.name}": the preflight check`);
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    await c.end().catch(() => c.destroy());
  }
}

// `scratch`: a sample scratch database name, when the pipeline restore-tests.
async function check(c: Connection, conn: MyConnection, db: DatabaseConfig, scratch: string | undefined): Promise<PreflightReport> {
  const database = conn.database;
  const kind = await serverKind(c);
  const [[me]] = await c.query<RowDataPacket[]>(
    'SELECT CURRENT_USER() AS user, @@log_bin AS log_bin, @@log_bin_trust_function_creators AS trusted',
  );
  const user = String(me!.user);
  const [rows] = await c.query<RowDataPacket[]>('SHOW GRANTS');
  const grants = parseGrants(rows.map((r) => String(Object.values(r)[0])));
  const has: Has = (privilege, on, table) => hasPrivilege(grants, privilege, on, table);
  const at = user.lastIndexOf('@');
  const to = ` TO ${literal(user.slice(0, at))}@${literal(user.slice(at + 1))};`;
  const mariadb = kind.flavor === 'mariadb';
  const missing: PreflightMissing[] = [];
  const add = (need: string, grant: string): void => void missing.push({ need, grant });
  const notes: string[] = [];

  if (!has('RELOAD')) add(`the snapshot's commit barrier (${barrierName(kind)})`, `GRANT RELOAD ON *.*${to}`);
  if (!['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'].some((p) => has(p))) {
    const monitor = mariadb && atLeast(kind, 10, 5) ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
    add('the snapshot reads the binary log position (SHOW MASTER STATUS), also when the binary log is off', `GRANT ${monitor} ON *.*${to}`);
  }
  const dump = DUMP_PRIVILEGES.filter((p) => !has(p, database));
  if (dump.length) {
    const on = `${grantDatabase(database)}.*`;
    add(`the dump and the row counts of database ${database} (tables, views, triggers, events)`, `GRANT ${dump.join(', ')} ON ${on}${to}`);
  }
  const routines = routinePrivilege(kind, database, has);
  if (routines) add(`the dump of the stored procedures and functions of ${database} (mariadb-dump --routines)`, `${routines}${to}`);
  if (scratch !== undefined && !SCRATCH_PRIVILEGES.every((p) => has(p, scratch))) {
    const need = "the restore-test's scratch databases (dbflow_verify_…): created, restored into, counted and dropped";
    add(need, `GRANT ALL PRIVILEGES ON ${SCRATCH_DATABASES}${to}`);
  }
  if (dump.length || routines) {
    notes.push(
      `Run the check again once these are granted: the views, triggers, routines and events of ${database} that the user cannot see yet may need more for the restore-test (their definers, SUPER while the binary log is on).`,
    );
  } else {
    const [found] = await c.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    if (!found.length) {
      throw new DbflowError(`database "${db.name}": database "${database}" does not exist on ${where(conn)}; create it, or fix the URL.`);
    }
    const logBin = Number(me!.log_bin) === 1 && Number(me!.trusted) === 0;
    if (scratch !== undefined) missing.push(...(await restoreGrants(c, db, kind, { user, logBin }, has, to)));
  }
  if (!mariadb) {
    notes.push(
      "On MySQL the privileges of the user's roles are not read (SHOW GRANTS lists them only with USING), and these checks are not tested there.",
    );
  }
  return { server: `${mariadb ? 'MariaDB' : 'MySQL'} ${/^[\d.]+/.exec(kind.version)?.[0] ?? kind.version}`, user, missing, notes };
}

type Has = (privilege: string, on?: string, table?: string) => boolean;

// What restoring the database's views, triggers, routines and events takes: SET USER for those of another
// definer (a restore keeps DEFINER), SUPER for triggers and stored functions while the binary log is on
// and log_bin_trust_function_creators is off (`logBin`).
async function restoreGrants(
  c: Connection,
  db: DatabaseConfig,
  kind: ServerKind,
  me: { user: string; logBin: boolean },
  has: Has,
  to: string,
): Promise<PreflightMissing[]> {
  const database = parseMyUrl(db.url).database;
  const [objects] = await c.query<RowDataPacket[]>(OBJECTS_SQL, [database, database, database, database]);
  const skip = new Set(myOptions(db).excludeTables);
  const dumped = (objects as DumpedObject[]).filter((o) => o.tbl === null || !skip.has(o.tbl));
  const missing: PreflightMissing[] = [];
  const others = dumped.filter((o) => o.definer !== me.user);
  const setUser = kind.flavor !== 'mariadb' ? 'SET_USER_ID' : atLeast(kind, 10, 5) ? 'SET USER' : 'SUPER';
  if (others.length && !has(setUser) && !has('SUPER')) {
    const definers = [...new Set(others.map((o) => o.definer))].join(', ');
    missing.push({
      need: `the restore-test re-creates ${describe(others)} with their definers (${definers}), which takes ${setUser}`,
      grant: `GRANT ${setUser} ON *.*${to}`,
    });
  }
  const logged = dumped.filter((o) => o.kind === 'trigger' || o.kind === 'function');
  if (me.logBin && logged.length && !has('SUPER')) {
    missing.push({
      need: `the restore-test creates ${describe(logged)} while the binary log is on, which takes SUPER (or, for the whole server: SET GLOBAL log_bin_trust_function_creators = ON)`,
      grant: `GRANT SUPER ON *.*${to}`,
    });
  }
  return missing;
}

// The statement that lets the dump read routine definitions, or undefined when the user may: SHOW CREATE ROUTINE
// (MariaDB 11.3+) or SELECT on mysql.proc (MariaDB); SHOW_ROUTINE or global SELECT (MySQL).
function routinePrivilege(kind: ServerKind, database: string, has: Has): string | undefined {
  if (kind.flavor === 'mysql') return has('SHOW_ROUTINE') || has('SELECT') ? undefined : 'GRANT SHOW_ROUTINE ON *.*';
  if (has('SELECT', 'mysql', 'proc')) return undefined;
  if (!atLeast(kind, 11, 3)) return 'GRANT SELECT ON mysql.proc';
  return has('SHOW CREATE ROUTINE', database) ? undefined : `GRANT SHOW CREATE ROUTINE ON ${grantDatabase(database)}.*`;
}

function atLeast(kind: ServerKind, major: number, minor: number): boolean {
  return kind.major > major || (kind.major === major && kind.minor >= minor);
}

// `view v, trigger t, …`: the first five objects, and how many more.
function describe(objects: readonly DumpedObject[]): string {
  const names = objects.map((o) => `${o.kind} ${o.name}`);
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}
