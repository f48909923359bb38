// A restore's target database on its server: does it exist, and creating it (`dbflow restore --create`).
import type { Client } from 'pg';
import { DbflowError, type CreateOptions, type DriverContext, type ExistsOptions } from '../../src/plugin-api.js';
import { withClient } from './connect.js';
import { ident } from './scope.js';
import { parsePgUrl, where, withDatabase, type PgConnection } from './url.js';

// Through the server's `postgres` database: the target itself may not exist.
function onServer<T>(conn: PgConnection, what: string, fn: (c: Client) => Promise<T>): Promise<T> {
  return withClient(withDatabase(conn, 'postgres'), what, fn);
}

async function exists(c: Client, database: string): Promise<boolean> {
  return ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount ?? 0) > 0;
}

/** True when the database `db.url` names exists on its server. */
export async function targetExists(_ctx: DriverContext, { db }: ExistsOptions): Promise<boolean> {
  const conn = parsePgUrl(db.url, db.password);
  return onServer(conn, `looking for database "${conn.database}"`, (c) => exists(c, conn.database));
}

/** Creates the database `db.url` names (from template0) unless it exists; true when it did. */
export async function createTarget(ctx: DriverContext, { db }: CreateOptions): Promise<boolean> {
  const conn = parsePgUrl(db.url, db.password);
  return onServer(conn, `creating database "${conn.database}"`, async (c) => {
    if (await exists(c, conn.database)) return false;
    try {
      await c.query(`CREATE DATABASE ${ident(conn.database)} TEMPLATE template0`);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const hint = e.code === '42501' ? `; user "${conn.user}" needs CREATEDB, or create it yourself (createdb)` : '';
      throw new DbflowError(`cannot create database "${conn.database}" on ${where(conn)}: ${e.message}${hint}.`, { cause: err });
    }
    ctx.log.info(`created database ${conn.database} on ${where(conn)}`);
    return true;
  });
}
