// What a base backup needs of the server, checked before it starts: replication, a restore point, no other tablespaces.
import { DbflowError, type PreflightMissing } from '../../src/plugin-api.js';
import { identifySystem, replicationError, withClient, type SystemIdentity } from './connect.js';
import type { PgConnection } from './url.js';

/** The server a base backup is taken of. */
export interface BaseBackupServer extends SystemIdentity {
  serverVersion: string;
  /** wal_segment_size in bytes. */
  segmentSize: number;
}

interface ServerFacts {
  version: string;
  segment_size: string;
  wal_level: string;
  tablespaces: string[];
  restore_point: boolean;
  role: string;
  standby: boolean;
}

const FACTS_SQL = `SELECT current_setting('server_version') AS version, current_setting('wal_segment_size') AS segment_size,
       current_setting('wal_level') AS wal_level, quote_ident(current_user) AS role,
       ARRAY(SELECT spcname::text FROM pg_catalog.pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1) AS tablespaces,
       has_function_privilege('pg_catalog.pg_create_restore_point(text)', 'EXECUTE') AS restore_point,
       pg_is_in_recovery() AS standby`;

/** What is missing for a base backup of the server `conn` names, each with what to change; empty when nothing is. */
export async function baseBackupMissing(
  conn: PgConnection,
  what: string,
): Promise<{ missing: PreflightMissing[]; server?: BaseBackupServer }> {
  const facts = await withClient(conn, what, async (c) => (await c.query<ServerFacts>(FACTS_SQL)).rows[0]!);
  const missing: PreflightMissing[] = [];
  if (facts.tablespaces.length)
    missing.push({
      need: `a base backup (the server has tablespaces ${facts.tablespaces.join(', ')}: pg_basebackup cannot stream them into one tar, and a restore would need their folders)`,
      grant: `move their tables to pg_default (ALTER TABLE … SET TABLESPACE pg_default), then DROP TABLESPACE ${facts.tablespaces.join(', ')}; or back these databases up with dump`,
    });
  if (facts.standby)
    missing.push({
      need: 'a base backup on the primary (this server is a standby: it cannot create the restore point the row counts are taken at, nor hold the write barrier)',
      grant: 'point the database at the primary for the basebackup step; a standby can serve dbflow archive (it follows a promotion)',
    });
  if (facts.wal_level === 'minimal')
    missing.push({ need: 'a base backup (wal_level is minimal)', grant: 'ALTER SYSTEM SET wal_level = replica; then restart the server' });
  if (!facts.restore_point)
    missing.push({
      need: "the restore point the base backup's row counts are taken at",
      grant: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO ${facts.role};`,
    });
  let identity: SystemIdentity | undefined;
  try {
    identity = await identifySystem(conn, what);
  } catch (err) {
    const e = err instanceof DbflowError ? err : replicationError(err, conn, what);
    const said = e.message;
    if (/REPLICATION;/.test(said))
      missing.push({ need: 'a base backup (a replication connection)', grant: `ALTER ROLE ${facts.role} REPLICATION;` });
    else if (/max_wal_senders/.test(said))
      missing.push({
        need: 'a base backup (replication connections)',
        grant: 'ALTER SYSTEM SET max_wal_senders = 10; then restart the server',
      });
    else if (/pg_hba\.conf/.test(said))
      missing.push({
        need: 'a base backup (the server refuses replication connections from here)',
        grant: `a pg_hba.conf line "host replication ${conn.user} <this host>/32 scram-sha-256", then SELECT pg_reload_conf();`,
      });
    else throw e;
  }
  if (!identity) return { missing };
  return { missing, server: { ...identity, serverVersion: facts.version, segmentSize: segmentBytes(facts.segment_size) } };
}

/** The server, or one error that lists everything to change before a base backup can be taken. */
export async function baseBackupChecks(conn: PgConnection, what: string): Promise<BaseBackupServer> {
  const { missing, server } = await baseBackupMissing(conn, what);
  if (missing.length || !server)
    throw new DbflowError(
      `${what}: cannot take a base backup of the server at ${conn.display}:\n${missing.map((m) => `  - ${m.need}: ${m.grant}`).join('\n')}`,
    );
  return server;
}

// `16MB` (as SHOW gives it) in bytes.
function segmentBytes(setting: string): number {
  const m = /^(\d+)\s*(kB|MB|GB)?$/.exec(setting.trim());
  if (!m) throw new DbflowError(`unexpected wal_segment_size "${setting}".`);
  const unit = { kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}
