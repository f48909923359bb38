// postgres:// URLs: the connection they name, for `pg` and for the stock client tools.
import { DbflowError, type DatabaseConfig } from '../../src/plugin-api.js';

/** One PostgreSQL connection, as parsed from a URL (password kept apart). */
export interface PgConnection {
  /** Host name, IP address, or a unix socket folder (starts with `/`). */
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  connectTimeoutS?: number;
  /** The URL without its password: what messages show. */
  display: string;
}

// Query parameters understood, and the libpq environment variable each maps to.
const PARAMS: Record<string, string> = {
  host: 'PGHOST',
  port: 'PGPORT',
  user: 'PGUSER',
  dbname: 'PGDATABASE',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  connect_timeout: 'PGCONNECT_TIMEOUT',
};
const SSLMODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/**
 * Parse `postgres://user[:password]@host[:port]/db[?sslmode=…&host=/socket/dir]`
 * (also `postgresql://`, and `postgres:///db?host=/var/run/postgresql` for a unix socket).
 * A password given apart (`databases.<name>.password`) wins over one in the URL.
 */
export function parsePgUrl(url: string, password?: string): PgConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badUrl(url, 'it does not parse as a URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw badUrl(url, `the scheme is "${u.protocol}"`);
  const q = u.searchParams;
  for (const key of q.keys()) {
    if (!(key in PARAMS)) {
      throw new DbflowError(
        `postgres URL parameter "${key}" is not supported; use ${Object.keys(PARAMS).join(', ')} (or a driver option).`,
      );
    }
  }
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw badUrl(url, `"${s}" is not valid percent-encoding`);
    }
  };
  const host = q.get('host') ?? (decode(u.hostname) || '/var/run/postgresql');
  const portText = q.get('port') ?? (u.port || '5432');
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw badUrl(url, `port "${portText}" is not a port number`);
  const database = q.get('dbname') ?? decode(u.pathname.replace(/^\//, ''));
  const user = q.get('user') ?? (decode(u.username) || 'postgres');
  if (!database) throw badUrl(url, 'it names no database (postgres://user@host:5432/<database>)');
  const sslmode = q.get('sslmode') ?? undefined;
  if (sslmode !== undefined && !SSLMODES.includes(sslmode)) {
    throw badUrl(url, `sslmode "${sslmode}" is not one of ${SSLMODES.join(', ')}`);
  }
  const timeout = q.get('connect_timeout');
  const pass = password ?? (u.password ? decode(u.password) : undefined);
  const shown = new URL(url);
  shown.password = '';
  return {
    host,
    port,
    user,
    database,
    ...(pass !== undefined && pass !== '' && { password: pass }),
    ...(sslmode !== undefined && { sslmode }),
    ...optional('sslrootcert', q.get('sslrootcert')),
    ...optional('sslcert', q.get('sslcert')),
    ...optional('sslkey', q.get('sslkey')),
    ...(timeout !== null && { connectTimeoutS: Number(timeout) }),
    display: shown.toString(),
  };
}

/**
 * The connection to `url` (a scratch or restore target) with the credentials of the entry `db`: its
 * `password`, else a password in `url`, else the one in `db.url` when `url` names the same server and user.
 */
export function connectionAt(url: string, db: Pick<DatabaseConfig, 'url' | 'password'>): PgConnection {
  const conn = parsePgUrl(url, db.password);
  if (conn.password !== undefined || url === db.url) return conn;
  const own = parsePgUrl(db.url, db.password);
  const same = own.host === conn.host && own.port === conn.port && own.user === conn.user;
  return same && own.password !== undefined ? { ...conn, password: own.password } : conn;
}

/** The same server, another database (a scratch database next to it). */
export function withDatabase(conn: PgConnection, database: string): PgConnection {
  const shown = new URL(conn.display);
  shown.pathname = `/${encodeURIComponent(database)}`;
  shown.searchParams.delete('dbname');
  return { ...conn, database, display: shown.toString() };
}

/** `host:port` (or the socket folder) for messages. */
export function where(conn: PgConnection): string {
  return conn.host.startsWith('/') ? `socket ${conn.host}/.s.PGSQL.${conn.port}` : `${conn.host}:${conn.port}`;
}

/** libpq environment for pg_dump/pg_restore/psql: everything but the password (that goes in a passfile). */
export function libpqEnv(conn: PgConnection): Record<string, string> {
  return {
    PGHOST: conn.host,
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGDATABASE: conn.database,
    ...(conn.sslmode && { PGSSLMODE: conn.sslmode }),
    ...(conn.sslrootcert && { PGSSLROOTCERT: conn.sslrootcert }),
    ...(conn.sslcert && { PGSSLCERT: conn.sslcert }),
    ...(conn.sslkey && { PGSSLKEY: conn.sslkey }),
    ...(conn.connectTimeoutS !== undefined && { PGCONNECT_TIMEOUT: String(conn.connectTimeoutS) }),
  };
}

function optional<K extends string>(key: K, value: string | null): Partial<Record<K, string>> {
  return value === null ? {} : ({ [key]: value } as Record<K, string>);
}

function badUrl(url: string, why: string): DbflowError {
  const shown = url.replace(/(\/\/[^/?#@:]*):[^/?#@]*@/, '$1:***@');
  return new DbflowError(
    `"${shown}" is not a usable postgres URL: ${why}. Write postgres://user@host:5432/database (password in "password:", from a secret).`,
  );
}
