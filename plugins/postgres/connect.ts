// Connections through the `pg` package, with the server's refusals turned into clear messages.
import { readFileSync } from 'node:fs';
import type { Client, ClientConfig } from 'pg';
import { DbflowError } from '../../src/plugin-api.js';
import { where, type PgConnection } from './url.js';

/** Session settings pinned on every counting session, so that row text (and checksums) never depend on them. */
export const PINNED_SETTINGS = [
  "SET DateStyle = 'ISO, YMD'",
  "SET IntervalStyle = 'postgres'",
  "SET TimeZone = 'UTC'",
  'SET extra_float_digits = 3',
  "SET bytea_output = 'hex'",
  "SET xmlbinary = 'base64'",
  "SET xmloption = 'content'",
  "SET lc_monetary = 'C'",
  // Like pg_dump: a table that row-level security would filter fails the count instead of undercounting.
  'SET row_security = off',
  'SET statement_timeout = 0',
  'SET idle_in_transaction_session_timeout = 0',
] as const;

/** Opens a connection for `what` (e.g. `database "app"`); errors name the server and say what to fix. */
export async function connect(conn: PgConnection, what: string, application = 'dbflow'): Promise<Client> {
  const { default: pg } = await import('pg');
  const client = new pg.Client(clientConfig(conn, application));
  // A connection the server ends later (a terminated backend) must not crash the process; queries report it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectError(err, conn, what);
  }
  const r = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  pids.set(client, r.rows[0]!.pid);
  return client;
}

const pids = new WeakMap<Client, number>();

/** What `IDENTIFY_SYSTEM` says over a physical replication connection. */
export interface SystemIdentity {
  systemId: string;
  timeline: number;
  /** The server's current WAL flush position. */
  xlogpos: string;
}

/**
 * Connects as pg_basebackup and pg_receivewal do (a physical replication connection) and identifies the
 * system: a role without REPLICATION, `max_wal_senders = 0` or a pg_hba.conf without a replication line
 * fail here, each with what to change.
 */
export async function identifySystem(conn: PgConnection, what: string): Promise<SystemIdentity> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ ...clientConfig(conn, 'dbflow basebackup'), replication: 'true' } as ClientConfig);
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ systemid: string; timeline: number | string; xlogpos: string }>('IDENTIFY_SYSTEM');
    const row = r.rows[0]!;
    return { systemId: String(row.systemid), timeline: Number(row.timeline), xlogpos: row.xlogpos };
  } catch (err) {
    throw replicationError(err, conn, what);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A refused replication connection, with the setting or grant that allows it. */
export function replicationError(err: unknown, conn: PgConnection, what: string): DbflowError {
  const said = (err as PgFailure | undefined)?.message ?? String(err);
  const at = where(conn);
  if (/must be superuser or replication role|permission denied to start WAL sender|must have the REPLICATION attribute/i.test(said))
    return new DbflowError(
      `${what}: user "${conn.user}" may not take base backups at ${at} (${said}); an administrator runs ALTER ROLE ${quoteIdent(conn.user)} REPLICATION;`,
      { cause: err },
    );
  if (/max_wal_senders/i.test(said))
    return new DbflowError(
      `${what}: the server at ${at} allows no replication connections (${said}); set max_wal_senders to at least 2 in postgresql.conf (and wal_level = replica) and restart the server.`,
      { cause: err },
    );
  if (/pg_hba\.conf.*replication|replication connection/i.test(said))
    return new DbflowError(
      `${what}: the server at ${at} refuses replication connections from here (${said}); add a pg_hba.conf line such as "host replication ${conn.user} <this host>/32 scram-sha-256", then reload the server (SELECT pg_reload_conf()).`,
      { cause: err },
    );
  if (/wal_level/i.test(said))
    return new DbflowError(`${what}: the server at ${at} cannot stream WAL (${said}); set wal_level = replica and restart it.`, {
      cause: err,
    });
  return connectError(err, conn, what);
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Cancels the running queries of `clients` from a separate session, then closes them (a cancel must not wait for a long count). */
export async function cancelQueries(conn: PgConnection, what: string, clients: readonly Client[]): Promise<void> {
  const running = clients.map((c) => pids.get(c)).filter((p): p is number => p !== undefined);
  try {
    await withClient(conn, what, (admin) => admin.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [running]));
  } catch {
    // closing the connections below ends their sessions anyway
  }
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
}

/** Runs `fn` on a fresh connection, always closing it. */
export async function withClient<T>(
  conn: PgConnection,
  what: string,
  fn: (client: Client) => Promise<T>,
  application?: string,
): Promise<T> {
  const client = await connect(conn, what, application);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function clientConfig(conn: PgConnection, application: string): ClientConfig {
  return {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    database: conn.database,
    ...(conn.password !== undefined && { password: conn.password }),
    application_name: application,
    // A snapshot is held for as long as the dumps run: keep idle connections alive through NAT and firewalls.
    keepAlive: true,
    connectionTimeoutMillis: (conn.connectTimeoutS ?? 15) * 1000,
    ssl: sslConfig(conn),
  };
}

// libpq's sslmode, as far as `pg` can follow it (it has no "prefer": that connects without TLS).
function sslConfig(conn: PgConnection): ClientConfig['ssl'] {
  const mode = conn.sslmode;
  if (mode === undefined || mode === 'disable' || mode === 'allow' || mode === 'prefer') return false;
  const read = (file: string | undefined, what: string): string | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new DbflowError(`cannot read the ${what} "${file}" (${(err as NodeJS.ErrnoException).code}).`);
    }
  };
  const ca = read(conn.sslrootcert, 'sslrootcert');
  const cert = read(conn.sslcert, 'sslcert');
  const key = read(conn.sslkey, 'sslkey');
  return {
    rejectUnauthorized: mode === 'verify-ca' || mode === 'verify-full',
    ...(ca && { ca }),
    ...(cert && { cert }),
    ...(key && { key }),
    ...(mode === 'verify-ca' && { checkServerIdentity: () => undefined }),
  };
}

interface PgFailure {
  code?: string;
  message?: string;
}

/** A clear message for a failed connection: wrong password, no such database, nobody listening. */
export function connectError(err: unknown, conn: PgConnection, what: string): DbflowError {
  if (err instanceof DbflowError) return err;
  const e = (err ?? {}) as PgFailure;
  const at = where(conn);
  const said = e.message ?? String(err);
  switch (e.code) {
    case '28P01':
      return new DbflowError(
        `${what}: password authentication failed for user "${conn.user}" at ${at}; check the database's "password:" (and the secret it reads).`,
        { cause: err },
      );
    case '28000':
      return new DbflowError(`${what}: the server at ${at} refused user "${conn.user}": ${said}.`, { cause: err });
    case '3D000':
      return new DbflowError(`${what}: database "${conn.database}" does not exist on ${at}; create it, or fix the URL.`, {
        cause: err,
      });
    case '53300':
      return new DbflowError(`${what}: the server at ${at} has no free connection slots (${said}).`, { cause: err });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
    case 'ENOENT':
      return new DbflowError(
        `${what}: cannot connect to PostgreSQL at ${at} (${e.code}); is the server running, and is the host and port in the URL right?`,
        { cause: err },
      );
  }
  if (/password must be a string|no password supplied/i.test(said)) {
    return new DbflowError(
      `${what}: the server at ${at} asks for a password for user "${conn.user}", and none is set; add "password:" (from a secret) to the database.`,
      { cause: err },
    );
  }
  if (/timeout/i.test(said)) {
    return new DbflowError(`${what}: cannot connect to PostgreSQL at ${at}: the connection timed out.`, { cause: err });
  }
  return new DbflowError(`${what}: cannot connect to PostgreSQL at ${at}: ${said}.`, { cause: err });
}
