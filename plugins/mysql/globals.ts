// The server's users, roles and grants (mariadb-dump --system=users): dumped beside the data, loaded into a throwaway
// server after it, and the grants on the database compared with the source's.
import {
  checkedStdout,
  DbflowError,
  type DatabaseConfig,
  type DriverContext,
  type DumpStream,
  type GlobalsOptions,
} from '../../src/plugin-api.js';
import { myOptions } from './options.js';
import { throwawayAt } from './throwaway.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { parseMyUrl } from './url.js';

/** Format name recorded in the manifest for the users artifact. */
export const USERS_FORMAT = 'mariadb-dump-users';

const DUMP_TOOL = 'mariadb-dump';
const CLIENT_TOOL = 'mariadb';

/**
 * `DatabaseDriver.dumpGlobals`: `mariadb-dump --system=users` of the entry's server, as CREATE USER IF NOT EXISTS and
 * GRANT statements (a server's own accounts are left as they are when it is replayed). MariaDB's dump has no way to
 * leave out password hashes: they are in it whatever `passwords` says, and the artifact is encrypted like the data.
 */
export function dumpGlobals(ctx: DriverContext, { db }: GlobalsOptions): Promise<DumpStream> {
  const o = myOptions(db);
  const conn = parseMyUrl(db.url, db.password);
  const tool = toolConnection(ctx, conn);
  const sub = ctx.exec(toolPath(DUMP_TOOL, o.binDir), [tool.arg, '--system=users', '--insert-ignore', '--skip-dump-date'], {
    stdin: 'ignore',
    buffer: { stdout: false, stderr: true },
  });
  tool.removeAfter(sub);
  const fail = (error: unknown): Error => toolError(error, DUMP_TOOL, { binDir: o.binDir, conn, doing: 'dumping the users' });
  return Promise.resolve({ stream: checkedStdout(sub, fail), format: USERS_FORMAT, extension: '.users.sql' });
}

/**
 * Loads the users (`sql`) into the throwaway server of `url` after its data: the statements are replayed by the stock
 * client as the server's own root over its private socket, and the server restarted without grant tables on the same
 * port, so that the counts connect whatever passwords the loaded accounts have.
 */
export async function loadUsers(ctx: DriverContext, url: string, db: DatabaseConfig, sql: string): Promise<void> {
  if (!/^-- MariaDB dump/m.test(sql.slice(0, 4096)) || !/CREATE USER IF NOT EXISTS/.test(sql))
    throw new DbflowError(`the users artifact of "${db.name}" is not a mariadb-dump --system=users dump.`);
  const server = throwawayAt(url);
  if (!server) throw new DbflowError(`database "${db.name}": users are loaded into a throwaway server only (target: throwaway).`);
  const o = myOptions(db);
  const conn = { ...parseMyUrl(url), user: 'root', socket: server.socket };
  const tool = toolConnection(ctx, conn);
  const sub = ctx.exec(toolPath(CLIENT_TOOL, o.binDir), [tool.arg, '--batch', '--binary-mode'], {
    input: sql,
    stdout: 'ignore',
    buffer: { stderr: true },
  });
  tool.removeAfter(sub);
  try {
    await sub;
  } catch (error) {
    throw toolError(error, CLIENT_TOOL, { binDir: o.binDir, conn, doing: 'loading the users' });
  }
  await server.restart();
}

const DB_PRIVILEGES = [
  'Select',
  'Insert',
  'Update',
  'Delete',
  'Create',
  'Drop',
  'Grant',
  'References',
  'Index',
  'Alter',
  'Create_tmp_table',
  'Lock_tables',
  'Create_view',
  'Show_view',
  'Create_routine',
  'Alter_routine',
  'Execute',
  'Event',
  'Trigger',
  'Delete_history',
];

/**
 * `DatabaseDriver.privilegesQuery`: one row per fact, sorted, read from the grant tables as data (a throwaway server
 * runs without them loaded): the grants on the entry's database (database-level rows whose pattern matches its name),
 * its tables, columns and routines, the roles granted to or by the accounts these name, and those accounts' global
 * privileges. Grantors and timestamps are left out.
 */
export function privilegesQuery(db: DatabaseConfig): string {
  const name = `'${parseMyUrl(db.url, db.password).database.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  const account = (user: string, host: string): string => `CONCAT(QUOTE(${user}), '@', QUOTE(${host}))`;
  const dbPrivs = `CONCAT_WS(',', ${DB_PRIVILEGES.map((p) => `IF(${p}_priv = 'Y', '${p.toUpperCase().replace(/_/g, ' ')}', NULL)`).join(', ')})`;
  return `WITH named AS (
  SELECT User, Host FROM mysql.db WHERE ${name} LIKE Db
  UNION SELECT User, Host FROM mysql.tables_priv WHERE Db = ${name}
  UNION SELECT User, Host FROM mysql.columns_priv WHERE Db = ${name}
  UNION SELECT User, Host FROM mysql.procs_priv WHERE Db = ${name}
), facts AS (
  SELECT CONCAT('database ', Db, ' to ', ${account('User', 'Host')}, ': ', ${dbPrivs}) AS fact FROM mysql.db WHERE ${name} LIKE Db
  UNION ALL
  SELECT CONCAT('table ', Table_name, ' to ', ${account('User', 'Host')}, ': ', Table_priv, IF(Column_priv = '', '', CONCAT(' (columns: ', Column_priv, ')')))
    FROM mysql.tables_priv WHERE Db = ${name}
  UNION ALL
  SELECT CONCAT('column ', Table_name, '.', Column_name, ' to ', ${account('User', 'Host')}, ': ', Column_priv) FROM mysql.columns_priv WHERE Db = ${name}
  UNION ALL
  SELECT CONCAT(LOWER(Routine_type), ' ', Routine_name, ' to ', ${account('User', 'Host')}, ': ', Proc_priv) FROM mysql.procs_priv WHERE Db = ${name}
  UNION ALL
  SELECT CONCAT('role ', QUOTE(Role), ' granted to ', ${account('User', 'Host')}, IF(Admin_option = 'Y', ' with admin option', ''))
    FROM mysql.roles_mapping m
   WHERE (m.User, m.Host) IN (SELECT User, Host FROM named) OR (m.Role, '') IN (SELECT User, Host FROM named)
  UNION ALL
  SELECT CONCAT('account ', ${account('g.User', 'g.Host')}, ' global privileges ', COALESCE(JSON_VALUE(g.Priv, '$.access'), '0'),
                IF(JSON_VALUE(g.Priv, '$.is_role') = 'true', ' (a role)', ''))
    FROM mysql.global_priv g WHERE (g.User, g.Host) IN (SELECT User, Host FROM named)
)
SELECT fact FROM facts ORDER BY fact`;
}
