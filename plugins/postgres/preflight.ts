// Preflight: the privileges a backup of a PostgreSQL database needs, asked of the server without changing anything.
import type { Client } from 'pg';
import {
  DbflowError,
  type DriverContext,
  type PreflightMissing,
  type PreflightOptions,
  type PreflightReport,
  type PreflightUse,
} from '../../src/plugin-api.js';
import { baseBackupMissing } from './basebackup-checks.js';
import { connect } from './connect.js';
import { pgOptions, type PgOptions } from './options.js';
import { ident } from './scope.js';
import { parsePgUrl, type PgConnection } from './url.js';

const INSUFFICIENT_PRIVILEGE = '42501';

// Who runs the checks, and the role attributes and function privileges that matter.
const ROLE_SQL = `SELECT quote_ident(current_user) AS role, current_user AS name,
       split_part(current_setting('server_version'), ' ', 1) AS version, current_setting('server_version_num')::int AS num,
       r.rolsuper AS superuser, r.rolcreatedb AS createdb, r.rolbypassrls AS bypassrls,
       current_setting('lo_compat_privileges')::bool AS lo_compat,
       has_function_privilege('pg_catalog.pg_create_restore_point(text)', 'EXECUTE') AS restore_point
  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`;

// Tables pg_dump locks and reads (ordinary and partitioned), sequences whose values it reads, and what the user may do with
// them; in scope as for tablesInScope (pg_dump -n/-N/-t/-T, $1-$4), with the sequences owned by a selected table.
function relationsSql(num: number): string {
  const maintain = num >= 170000 ? "OR has_table_privilege(c.oid, 'MAINTAIN')" : '';
  return `SELECT quote_ident(n.nspname) AS schema, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
       c.relkind AS kind, has_schema_privilege(n.oid, 'USAGE') AS usage,
       CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT') ELSE has_table_privilege(c.oid, 'SELECT') END AS readable,
       c.relrowsecurity AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) AS rls,
       c.relkind <> 'r' OR has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE')
         OR has_table_privilege(c.oid, 'TRUNCATE') ${maintain} AS share_lock
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_depend d ON c.relkind = 'S' AND d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
       AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
 WHERE c.relkind IN ('r', 'p', 'S') AND c.relpersistence <> 't' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
   AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1)) AND NOT (n.nspname = ANY($2))
   AND (cardinality($3::text[]) = 0 OR n.nspname || '.' || c.relname = ANY($3) OR n.nspname || '.' || t.relname = ANY($3))
   AND NOT (n.nspname || '.' || c.relname = ANY($4))
 ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`;
}

// What a restore can create only as a superuser: untrusted extensions, functions in untrusted languages, event triggers.
// $1, $2: the schema filters; $3: functions are dumped (no table filter); $4: a whole-database dump (extensions, event triggers).
const superuserOnlySql = (num: number): string => `SELECT format('extension %I', x.extname) AS what FROM pg_catalog.pg_extension x
  JOIN pg_catalog.pg_available_extension_versions v ON v.name = x.extname AND v.version = x.extversion
 WHERE $4 AND x.extname <> 'plpgsql' ${num >= 130000 ? 'AND NOT v.trusted' : ''}
UNION ALL
SELECT format('function %s (language %I)', p.oid::regprocedure, l.lanname) FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE NOT l.lanpltrusted AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' AND $3
   AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1)) AND NOT (n.nspname = ANY($2))
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
UNION ALL
SELECT format('event trigger %I', g.evtname) FROM pg_catalog.pg_event_trigger g
 WHERE $4 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_event_trigger'::regclass AND e.objid = g.oid AND e.deptype = 'e')`;

// Large objects (dumped with a whole database) that the user may not read.
const UNREADABLE_LARGE_OBJECTS = `SELECT m.oid::text AS oid FROM pg_catalog.pg_largeobject_metadata m
 WHERE NOT pg_has_role(m.lomowner, 'USAGE') AND NOT EXISTS (SELECT 1 FROM aclexplode(m.lomacl) a
         WHERE a.privilege_type = 'SELECT' AND CASE WHEN a.grantee = 0 THEN true ELSE pg_has_role(a.grantee, 'USAGE') END)
 ORDER BY m.oid`;

interface Role {
  role: string;
  name: string;
  version: string;
  num: number;
  superuser: boolean;
  createdb: boolean;
  bypassrls: boolean;
  lo_compat: boolean;
  restore_point: boolean;
}

interface Relation {
  schema: string;
  name: string;
  kind: 'r' | 'p' | 'S';
  usage: boolean;
  readable: boolean;
  rls: boolean;
  share_lock: boolean;
}

/**
 * Connects as the snapshot does and asks the server (has_*_privilege, pg_roles) for what a backup needs:
 * CONNECT; USAGE on the schemas and SELECT on the tables and sequences that pg_dump and the row counts
 * read (and the large objects of a whole-database dump); BYPASSRLS where row-level security would fail
 * them (both read with row_security off); CREATEDB for the restore-test's scratch database; superuser
 * for what only a superuser may restore (those two only when the pipeline restore-tests); UPDATE (the SHARE lock of
 * the barrier) when the database is in a coordinated snapshot, whose restore point is a note.
 */
export async function preflight(ctx: DriverContext, { db, use }: PreflightOptions): Promise<PreflightReport> {
  const conn = parsePgUrl(db.url, db.password);
  ctx.signal.throwIfAborted();
  let client: Client;
  try {
    client = await connect(conn, `database "${db.name}" (${conn.display})`, 'dbflow preflight');
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === INSUFFICIENT_PRIVILEGE) return withoutConnect(conn);
    throw err;
  }
  const stop = (): void => void client.end().catch(() => undefined);
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    ctx.signal.throwIfAborted();
    const report = await check(client, pgOptions(db), use);
    if (use.baseBackup) {
      const { missing } = await baseBackupMissing(conn, `database "${db.name}"`);
      // The restore point is asked for once, whichever use needs it.
      for (const m of missing) if (!report.missing.some((r) => r.grant === m.grant)) report.missing.push(m);
    }
    return report;
  } catch (err) {
    ctx.signal.throwIfAborted();
    if (err instanceof DbflowError) throw err;
    throw new DbflowError(`database "${db.name}": the preflight check failed: ${(err as Error).message}.`, { cause: err });
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    await client.end().catch(() => undefined);
  }
}

// The database refused the connection for want of CONNECT: nothing else can be asked there.
function withoutConnect(conn: PgConnection): PreflightReport {
  return {
    user: conn.user,
    missing: [
      {
        need: `connecting to database ${conn.database}`,
        grant: `GRANT CONNECT ON DATABASE ${ident(conn.database)} TO ${ident(conn.user)};`,
      },
    ],
    notes: ['The other privileges are checked once the user can connect to the database: run the check again after this grant.'],
  };
}

async function check(c: Client, o: PgOptions, use: PreflightUse): Promise<PreflightReport> {
  const me = (await c.query<Role>(ROLE_SQL)).rows[0]!;
  const to = ` TO ${me.role};`;
  const scope = [o.schemas, o.excludeSchemas, o.tables, o.excludeTables];
  const wholeDatabase = !o.schemas.length && !o.tables.length;
  const relations = (await c.query<Relation>(relationsSql(me.num), scope)).rows;
  const missing: PreflightMissing[] = [];
  const add = (need: string, grant: string): void => void missing.push({ need, grant });
  const notes: string[] = [];

  for (const schema of schemasOf(relations.filter((r) => !r.usage))) {
    add(`the dump and the row counts read the tables of schema ${schema}`, `GRANT USAGE ON SCHEMA ${schema}${to}`);
  }
  const unreadable = (kind: 'TABLE' | 'SEQUENCE'): void => {
    const rows = relations.filter((r) => !r.readable && (r.kind === 'S') === (kind === 'SEQUENCE'));
    for (const schema of schemasOf(rows)) {
      const names = rows.filter((r) => r.schema === schema).map((r) => r.name);
      const what = kind === 'TABLE' ? 'the dump and the row counts read' : 'the dump reads the current value of';
      // Selected tables get grants of their own; otherwise every table of the schema, as pg_dump reads them all.
      const on = o.tables.length ? `${kind} ${names.join(', ')}` : `ALL ${kind}S IN SCHEMA ${schema}`;
      add(`${what} ${list(names)}`, `GRANT SELECT ON ${on}${to}`);
    }
  };
  unreadable('TABLE');
  unreadable('SEQUENCE');
  if (missing.length /* read grants, so far */) {
    notes.push(
      `Tables and sequences created later need SELECT too: ALTER DEFAULT PRIVILEGES FOR ROLE <the role that creates them> IN SCHEMA <schema> GRANT SELECT ON TABLES${to} (and the same ON SEQUENCES).` +
        (me.num >= 140000 ? ` Or GRANT pg_read_all_data${to} covers every schema, table and sequence, now and later.` : ''),
    );
  }
  if (wholeDatabase && !me.superuser && !me.lo_compat) {
    const oids = (await c.query<{ oid: string }>(UNREADABLE_LARGE_OBJECTS)).rows.map((r) => r.oid);
    if (oids.length) add(`the dump reads the large objects ${list(oids)}`, `GRANT SELECT ON LARGE OBJECT ${oids.join(', ')}${to}`);
  }
  const filtered = relations.filter((r) => r.rls);
  if (filtered.length && !me.bypassrls && !me.superuser) {
    add(
      `the dump and the row counts read every row of ${list(filtered.map((r) => r.name))} (row-level security is on there, and both read with row_security off)`,
      `ALTER ROLE ${me.role} BYPASSRLS;`,
    );
  }
  if (use.restoreTest && !me.createdb && !me.superuser) {
    add(`the restore-test's scratch database (CREATE DATABASE dbflow_verify_…)`, `ALTER ROLE ${me.role} CREATEDB;`);
  }
  if (use.restoreTest && !me.superuser) {
    const params = [o.schemas, o.excludeSchemas, !o.tables.length, wholeDatabase];
    const only = (await c.query<{ what: string }>(superuserOnlySql(me.num), params)).rows.map((r) => r.what);
    if (only.length) add(`the restore-test re-creates what only a superuser may create: ${list(only)}`, `ALTER ROLE ${me.role} SUPERUSER;`);
  }

  const unlockable = relations.filter((r) => !r.share_lock);
  if (unlockable.length && (use.coordinated || use.baseBackup)) {
    // The coordinated snapshot's write barrier: LOCK TABLE … IN SHARE MODE on every table in scope.
    const grant = me.num >= 170000 ? 'MAINTAIN' : 'UPDATE';
    for (const schema of schemasOf(unlockable)) {
      const names = unlockable.filter((r) => r.schema === schema).map((r) => r.name);
      add(
        `the coordinated snapshot's write barrier, LOCK TABLE … IN SHARE MODE (PostgreSQL allows it only with UPDATE, DELETE or TRUNCATE${me.num >= 170000 ? ', or MAINTAIN' : ''}) on ${list(names)}`,
        `GRANT ${grant} ON ALL TABLES IN SCHEMA ${schema}${to}`,
      );
    }
  }
  if (use.coordinated && !me.restore_point) {
    notes.push(
      `A coordinated snapshot marks its cut with a restore point for point-in-time recovery, which needs superuser or GRANT EXECUTE ON FUNCTION pg_create_restore_point(text)${to} Without it the backup is taken all the same, and the cut has no restore point.`,
    );
  }
  return { server: `PostgreSQL ${me.version}`, user: me.name, missing, notes };
}

// The schemas of `relations`, each once, in order.
function schemasOf(relations: readonly Relation[]): string[] {
  return [...new Set(relations.map((r) => r.schema))];
}

// A few names for a message: the first five, and how many more.
function list(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}
