// mysql:// URLs: the connection they name, for mysql2 and for the stock client tools.
import { DbflowError, type DatabaseConfig } from '../../src/plugin-api.js';

/** TLS modes of a connection (`?ssl-mode=`), as MySQL names them. */
export const SSL_MODES = ['DISABLED', 'PREFERRED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** One MySQL/MariaDB connection, as parsed from a URL (password kept apart). */
export interface MyConnection {
  host: string;
  port: number;
  /** A unix socket path (`?socket=`); wins over host and port. */
  socket?: string;
  user: string;
  database: string;
  password?: string;
  sslMode?: SslMode;
  sslCa?: string;
  connectTimeoutS: number;
  /** The URL without its password: what messages show. */
  display: string;
}

const PARAMS = ['socket', 'ssl-mode', 'ssl-ca', 'connect-timeout'];

/**
 * Parse `mysql://user[:password]@host[:port]/db[?socket=/run/mysqld/mysqld.sock&ssl-mode=VERIFY_IDENTITY&ssl-ca=…]`
 * (also `mariadb://`). A password given apart (`databases.<name>.password`) wins over one in the URL.
 */
export function parseMyUrl(url: string, password?: string): MyConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badUrl(url, 'it does not parse as a URL');
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') throw badUrl(url, `the scheme is "${u.protocol}"`);
  const q = u.searchParams;
  for (const key of q.keys()) {
    if (!PARAMS.includes(key)) throw new DbflowError(`mysql URL parameter "${key}" is not supported; use ${PARAMS.join(', ')}.`);
  }
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw badUrl(url, `"${s}" is not valid percent-encoding`);
    }
  };
  const port = Number(u.port || '3306');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw badUrl(url, `port "${u.port}" is not a port number`);
  const database = decode(u.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) throw badUrl(url, 'it names no database (mysql://user@host:3306/<database>)');
  const mode = q.get('ssl-mode')?.toUpperCase().replace(/-/g, '_');
  if (mode !== undefined && !(SSL_MODES as readonly string[]).includes(mode)) {
    throw badUrl(url, `ssl-mode "${q.get('ssl-mode')}" is not one of ${SSL_MODES.join(', ')}`);
  }
  const timeout = Number(q.get('connect-timeout') ?? 15);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw badUrl(url, `connect-timeout "${q.get('connect-timeout')}" is not a number of seconds`);
  const pass = password ?? (u.password ? decode(u.password) : undefined);
  const shown = new URL(url);
  shown.password = '';
  return {
    host: decode(u.hostname) || '127.0.0.1',
    port,
    ...(q.get('socket') !== null && { socket: q.get('socket')! }),
    user: decode(u.username) || 'root',
    database,
    ...(pass !== undefined && pass !== '' && { password: pass }),
    ...(mode !== undefined && { sslMode: mode as SslMode }),
    ...(q.get('ssl-ca') !== null && { sslCa: q.get('ssl-ca')! }),
    connectTimeoutS: timeout,
    display: shown.toString(),
  };
}

/**
 * The connection to `url` (a scratch or restore target) with the credentials of the entry `db`: its
 * `password`, else a password in `url`, else the one in `db.url` when `url` names the same server and user.
 */
export function connectionAt(url: string, db: Pick<DatabaseConfig, 'url' | 'password'>): MyConnection {
  const conn = parseMyUrl(url, db.password);
  if (conn.password !== undefined || url === db.url) return conn;
  const own = parseMyUrl(db.url, db.password);
  const same = own.host === conn.host && own.port === conn.port && own.socket === conn.socket && own.user === conn.user;
  return same && own.password !== undefined ? { ...conn, password: own.password } : conn;
}

/** The same server, another database (a scratch database next to it). */
export function withDatabase(conn: MyConnection, database: string): MyConnection {
  const shown = new URL(conn.display);
  shown.pathname = `/${encodeURIComponent(database)}`;
  return { ...conn, database, display: shown.toString() };
}

/** `host:port` (or the socket) for messages. */
export function where(conn: MyConnection): string {
  return conn.socket ? `socket ${conn.socket}` : `${conn.host}:${conn.port}`;
}

function badUrl(url: string, why: string): DbflowError {
  const shown = url.replace(/(\/\/[^/?#@:]*):[^/?#@]*@/, '$1:***@');
  return new DbflowError(
    `"${shown}" is not a usable mysql URL: ${why}. Write mysql://user@host:3306/database (password in "password:", from a secret).`,
  );
}
