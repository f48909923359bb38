// The cluster's roles, memberships and role settings (pg_dumpall --globals-only): dumped beside the data, restored
// into a throwaway server before it, and the owners and privileges of the restored objects compared with the source's.
import {
  checkedStdout,
  DbflowError,
  type DatabaseConfig,
  type DriverContext,
  type DumpStream,
  type GlobalsOptions,
} from '../../src/plugin-api.js';
import { pgOptions, type PgOptions } from './options.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { connectionAt, parsePgUrl } from './url.js';

/** Format name recorded in the manifest for the globals artifact. */
export const GLOBALS_FORMAT = 'pg_dumpall-globals';

/** `DatabaseDriver.dumpGlobals`: `pg_dumpall --globals-only` of the entry's server, role passwords left out unless asked for. */
export function dumpGlobals(ctx: DriverContext, { db, passwords }: GlobalsOptions): Promise<DumpStream> {
  const o = pgOptions(db);
  const conn = parsePgUrl(db.url, db.password);
  const { env, removeAfter } = toolConnection(ctx, conn, 'dbflow pg_dumpall');
  const args = ['--globals-only', '--no-password', `--database=${conn.database}`, ...(passwords ? [] : ['--no-role-passwords'])];
  const sub = ctx.exec(toolPath('pg_dumpall', o.binDir), args, { env, stdin: 'ignore', buffer: { stdout: false, stderr: true } });
  removeAfter(sub);
  const fail = (error: unknown): Error => toolError(error, 'pg_dumpall', { binDir: o.binDir, conn });
  return Promise.resolve({ stream: checkedStdout(sub, fail), format: GLOBALS_FORMAT, extension: '.globals.sql' });
}

// What psql may report while replaying globals into a fresh server and still have restored them: the roles the
// server was made with (its superuser) exist already, and a tablespace's folder is the source machine's.
const EXPECTED = [
  /^ERROR: {2}role ".*" already exists$/,
  /^ERROR: {2}directory ".*" does not exist$/,
  /^ERROR: {2}could not set permissions on directory/,
];

/** Replays the globals (`sql`) on the (throwaway) server of `url` with psql; an error other than the expected ones fails. */
export async function restoreGlobals(ctx: DriverContext, url: string, db: DatabaseConfig, sql: string): Promise<void> {
  const o = pgOptions(db);
  const conn = connectionAt(url, db);
  const { env, removeAfter } = toolConnection(ctx, conn, 'dbflow psql globals');
  const sub = ctx.exec(toolPath('psql', o.binDir), ['-X', '-q', '--no-password', '-v', 'ON_ERROR_STOP=0', `--dbname=${conn.database}`], {
    env,
    input: sql,
    stdout: 'ignore',
    buffer: { stderr: true },
  });
  removeAfter(sub);
  let stderr: string;
  try {
    stderr = String((await sub).stderr ?? '');
  } catch (error) {
    throw toolError(error, 'psql', { binDir: o.binDir, conn, doing: 'restoring the roles (globals)' });
  }
  const errors = stderr
    .split('\n')
    .map((l) => l.replace(/^psql:[^:]*:\d+: /, ''))
    .filter((l) => l.startsWith('ERROR:') && !EXPECTED.some((e) => e.test(l)));
  if (errors.length)
    throw new DbflowError(
      `restoring the roles of "${db.name}" (globals) into the throwaway server failed: ${errors.slice(0, 3).join('; ')}`,
    );
}

const textArray = (values: readonly string[]): string => `ARRAY[${values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ')}]::text[]`;

/**
 * `DatabaseDriver.privilegesQuery`: one row per fact, sorted — the owner of each schema, table, view and sequence in
 * scope, each privilege granted on them (grantee, privilege, grant option), each default privilege, and the memberships
 * of every role these name. Grantors are left out: a restore by another superuser may record itself.
 */
export function privilegesQuery(db: DatabaseConfig): string {
  const o: PgOptions = pgOptions(db);
  const schemaOk = `(cardinality(${textArray(o.schemas)}) = 0 OR n.nspname = ANY(${textArray(o.schemas)})) AND NOT (n.nspname = ANY(${textArray(o.excludeSchemas)})) AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'`;
  const tableOk = `(c.relkind NOT IN ('r', 'p') OR ((cardinality(${textArray(o.tables)}) = 0 OR n.nspname || '.' || c.relname = ANY(${textArray(o.tables)})) AND NOT (n.nspname || '.' || c.relname = ANY(${textArray(o.excludeTables)}))))`;
  const role = (oid: string): string => `CASE WHEN ${oid} = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(${oid}) END`;
  return `WITH objs AS (
  SELECT 'schema ' || quote_ident(n.nspname) AS obj, n.nspowner AS owner, coalesce(n.nspacl, acldefault('n', n.nspowner)) AS acl
    FROM pg_catalog.pg_namespace n WHERE ${schemaOk}
  UNION ALL
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'view ' ELSE 'table ' END
         || quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relowner,
         coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence <> 't' AND ${schemaOk} AND ${tableOk}
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
), grants AS (
  SELECT o.obj, a.grantee, a.privilege_type, a.is_grantable FROM objs o, aclexplode(o.acl) a
), defaults AS (
  SELECT d.defaclrole AS owner, coalesce(n.nspname, '') AS nsp, d.defaclobjtype AS kind, a.grantee, a.privilege_type, a.is_grantable
    FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a
   WHERE d.defaclnamespace = 0 OR n.nspname IN (SELECT nspname FROM pg_catalog.pg_namespace n WHERE ${schemaOk})
), named AS (
  SELECT owner AS oid FROM objs UNION SELECT grantee FROM grants UNION SELECT owner FROM defaults UNION SELECT grantee FROM defaults
), facts AS (
  SELECT obj || ' owned by ' || ${role('owner')} AS fact FROM objs
  UNION ALL
  SELECT obj || ': ' || privilege_type || ' to ' || ${role('grantee')} || CASE WHEN is_grantable THEN ' with grant option' ELSE '' END FROM grants
  UNION ALL
  SELECT 'default privileges of ' || ${role('owner')} || CASE WHEN nsp = '' THEN '' ELSE ' in schema ' || quote_ident(nsp) END
         || ' on ' || CASE kind WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' ELSE 'schemas' END
         || ': ' || privilege_type || ' to ' || ${role('grantee')} || CASE WHEN is_grantable THEN ' with grant option' ELSE '' END FROM defaults
  UNION ALL
  SELECT 'role ' || pg_get_userbyid(m.member) || ' is a member of ' || pg_get_userbyid(m.roleid) || CASE WHEN m.admin_option THEN ' with admin option' ELSE '' END
    FROM pg_catalog.pg_auth_members m
   WHERE m.member IN (SELECT oid FROM named) OR m.roleid IN (SELECT oid FROM named)
)
SELECT fact FROM facts ORDER BY fact COLLATE "C"`;
}

/** Throws unless `sql` (the decoded globals artifact) is what `dumpGlobals` writes: a guard against restoring another file as roles. */
export function checkGlobals(sql: string, database: string): void {
  if (!/^--\s*PostgreSQL database cluster dump/m.test(sql.slice(0, 4096)))
    throw new DbflowError(`the globals artifact of "${database}" is not a pg_dumpall --globals-only dump.`);
}
