// The server settings continuous WAL archiving needs, checked before pg_receivewal starts: each refusal says what to change.
import type { Client } from 'pg';
import { DbflowError } from '../../src/plugin-api.js';
import { connect, connectError } from './connect.js';
import { where, type PgConnection } from './url.js';

interface Settings {
  wal_level: string;
  max_wal_senders: number;
  max_replication_slots: number;
  can_replicate: boolean;
  slots_used: number;
  has_slot: boolean;
}

/** Checks wal_level, max_wal_senders, the REPLICATION privilege and a free slot, then creates `slot` unless it exists. */
export async function prepareSlot(conn: PgConnection, what: string, slot: string): Promise<void> {
  const client = await connect(conn, what, 'dbflow-archive');
  try {
    const { rows } = await client.query<Settings>(
      `SELECT current_setting('wal_level') AS wal_level,
              current_setting('max_wal_senders')::int AS max_wal_senders,
              current_setting('max_replication_slots')::int AS max_replication_slots,
              (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_replicate,
              (SELECT count(*) FROM pg_replication_slots)::int AS slots_used,
              EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS has_slot`,
      [slot],
    );
    const s = rows[0]!;
    const at = `${what} (${where(conn)})`;
    const restart = 'and restart the server';
    if (s.wal_level === 'minimal')
      throw new DbflowError(
        `${at}: wal_level is "minimal", which writes too little WAL to archive; set "wal_level = replica" in postgresql.conf (or ALTER SYSTEM SET wal_level = replica) ${restart}.`,
      );
    if (s.max_wal_senders < 1)
      throw new DbflowError(
        `${at}: max_wal_senders is 0, so the server accepts no WAL streaming; set "max_wal_senders = 10" in postgresql.conf ${restart}.`,
      );
    if (!s.can_replicate)
      throw new DbflowError(
        `${at}: user "${conn.user}" may not stream WAL; grant it with: ALTER ROLE ${quoteIdent(conn.user)} REPLICATION;`,
      );
    if (!s.has_slot) {
      if (s.slots_used >= s.max_replication_slots)
        throw new DbflowError(
          `${at}: no free replication slot (max_replication_slots = ${s.max_replication_slots}, ${s.slots_used} in use); raise max_replication_slots in postgresql.conf ${restart}, or drop an unused slot (SELECT pg_drop_replication_slot('<name>')).`,
        );
      await createSlot(client, slot, at);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

// A physical slot that keeps WAL from now on, until pg_receivewal has flushed it.
async function createSlot(client: Client, slot: string, at: string): Promise<void> {
  try {
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '42710') return; // created meanwhile
    if (code === '53400')
      throw new DbflowError(
        `${at}: all replication slots are in use; raise max_replication_slots in postgresql.conf and restart the server.`,
        {
          cause: err,
        },
      );
    throw new DbflowError(`${at}: cannot create the replication slot "${slot}": ${(err as Error).message}`, { cause: err });
  }
}

/** Opens a replication connection (as pg_receivewal does) and returns the server's system identifier; pg_hba refusals say which line to add. */
export async function identifySystem(conn: PgConnection, what: string): Promise<string> {
  const { default: pg } = await import('pg');
  const config = {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    database: conn.database,
    ...(conn.password !== undefined && { password: conn.password }),
    application_name: 'dbflow-archive',
    connectionTimeoutMillis: (conn.connectTimeoutS ?? 15) * 1000,
    replication: 'true',
  };
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ systemid: string }>('IDENTIFY_SYSTEM');
    return String(r.rows[0]!.systemid);
  } catch (err) {
    throw replicationError(err, conn, what);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** What a refused replication connection means (pg_hba, privilege, senders), from the server's message. */
export function replicationError(err: unknown, conn: PgConnection, what: string): Error {
  const said = err instanceof Error ? err.message : String(err);
  const at = `${what} (${where(conn)})`;
  if (/pg_hba\.conf.*replication|replication connection/i.test(said) && /no pg_hba|rejects/i.test(said)) {
    const host = conn.host.startsWith('/') ? 'local   replication' : 'host    replication';
    return new DbflowError(
      `${at}: pg_hba.conf refuses replication connections for user "${conn.user}" (${said}); add a line such as "${host}  ${conn.user}  <dbflow's address>/32  scram-sha-256" (the database column must say "replication") and reload the server (SELECT pg_reload_conf()).`,
      { cause: err },
    );
  }
  if (/must be superuser or replication role|permission denied to start WAL sender|REPLICATION attribute/i.test(said))
    return new DbflowError(
      `${at}: user "${conn.user}" may not stream WAL; grant it with: ALTER ROLE ${quoteIdent(conn.user)} REPLICATION;`,
      {
        cause: err,
      },
    );
  if (/max_wal_senders/i.test(said))
    return new DbflowError(`${at}: the server has no free WAL sender (${said}); raise max_wal_senders in postgresql.conf and restart it.`, {
      cause: err,
    });
  return connectError(err, conn, what);
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}
