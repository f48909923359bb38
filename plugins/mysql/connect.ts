// Connections through mysql2, with the server's refusals turned into clear messages.
import { readFileSync } from 'node:fs';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import { DbflowError } from '../../src/plugin-api.js';
import { where, type MyConnection } from './url.js';

/** Session settings of every counting session, so that value text (and checksums) never depends on them. */
export const PINNED_SETTINGS = [
  "SET SESSION time_zone = '+00:00'",
  'SET NAMES utf8mb4 COLLATE utf8mb4_bin',
  "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
  'SET SESSION group_concat_max_len = 1048576',
] as const;

/** A quoted identifier: `name`. */
export function ident(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** A quoted string literal (for names in SQL where placeholders cannot go). */
export function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** Opens a connection for `what` (e.g. `database "app"`); errors name the server and say what to fix. */
export async function connect(conn: MyConnection, what: string, options: { database?: boolean } = {}): Promise<Connection> {
  const mysql = await import('mysql2/promise');
  for (let attempt = 1; ; attempt++) {
    try {
      const c = await mysql.createConnection(connectionOptions(conn, options.database !== false));
      // A connection the server ends later (a killed session) must not crash the process; queries report it.
      c.on('error', () => undefined);
      return c;
    } catch (err) {
      // A reset during the handshake is the server shedding a connection under load, not an answer: ask again.
      if ((err as { code?: string }).code === 'ECONNRESET' && attempt < 3) {
        await new Promise((r) => setTimeout(r, 250 * attempt));
        continue;
      }
      throw connectError(err, conn, what);
    }
  }
}

/** Runs `fn` on a fresh connection (to the server, not the database, with `database: false`), always closing it. */
export async function withConnection<T>(
  conn: MyConnection,
  what: string,
  fn: (c: Connection) => Promise<T>,
  options: { database?: boolean } = {},
): Promise<T> {
  const c = await connect(conn, what, options);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

function connectionOptions(conn: MyConnection, database: boolean): ConnectionOptions {
  return {
    ...(conn.socket ? { socketPath: conn.socket } : { host: conn.host, port: conn.port }),
    user: conn.user,
    ...(conn.password !== undefined && { password: conn.password }),
    ...(database && { database: conn.database }),
    connectTimeout: conn.connectTimeoutS * 1000,
    charset: 'utf8mb4_general_ci',
    // Exact values: big integers and decimals as text, dates as the server writes them.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    multipleStatements: false,
    ...sslOptions(conn),
  };
}

// ssl-mode as far as mysql2 can follow it (PREFERRED connects without TLS, like DISABLED).
function sslOptions(conn: MyConnection): Pick<ConnectionOptions, 'ssl'> {
  const mode = conn.sslMode;
  if (mode === undefined || mode === 'DISABLED' || mode === 'PREFERRED') return {};
  let ca: string | undefined;
  if (conn.sslCa) {
    try {
      ca = readFileSync(conn.sslCa, 'utf8');
    } catch (err) {
      throw new DbflowError(`cannot read the ssl-ca file "${conn.sslCa}" (${(err as NodeJS.ErrnoException).code}).`);
    }
  }
  return {
    ssl: {
      rejectUnauthorized: mode === 'VERIFY_CA' || mode === 'VERIFY_IDENTITY',
      ...(ca && { ca }),
      ...(mode === 'VERIFY_CA' && { checkServerIdentity: () => undefined }),
    },
  };
}

interface MyFailure {
  code?: string;
  errno?: number;
  sqlMessage?: string;
  message?: string;
}

/** A clear message for a failed connection: wrong password, no such database, nobody listening. */
export function connectError(err: unknown, conn: MyConnection, what: string): DbflowError {
  if (err instanceof DbflowError) return err;
  const e = (err ?? {}) as MyFailure;
  const at = where(conn);
  const said = e.sqlMessage ?? e.message ?? String(err);
  switch (e.code) {
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
      return new DbflowError(
        `${what}: access denied for user "${conn.user}" at ${at} (wrong password, or the user may not connect from here); check the database's "password:" (and the secret it reads).`,
        { cause: err },
      );
    case 'ER_DBACCESS_DENIED_ERROR':
      return new DbflowError(`${what}: user "${conn.user}" may not use database "${conn.database}" on ${at}: ${said}.`, { cause: err });
    case 'ER_BAD_DB_ERROR':
      return new DbflowError(`${what}: database "${conn.database}" does not exist on ${at}; create it, or fix the URL.`, { cause: err });
    case 'ER_CON_COUNT_ERROR':
      return new DbflowError(`${what}: the server at ${at} has too many connections (${said}).`, { cause: err });
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
    case 'ENOENT':
      return new DbflowError(
        `${what}: cannot connect to MySQL/MariaDB at ${at} (${e.code}); is the server running, and are the host and port (or socket) in the URL right?`,
        { cause: err },
      );
  }
  return new DbflowError(`${what}: cannot connect to MySQL/MariaDB at ${at}: ${said}.`, { cause: err });
}

/** A query failure as a DbflowError that names what was being done. */
export function queryError(err: unknown, doing: string): DbflowError {
  if (err instanceof DbflowError) return err;
  const e = (err ?? {}) as MyFailure;
  return new DbflowError(`${doing} failed: ${e.sqlMessage ?? e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}.`, { cause: err });
}
