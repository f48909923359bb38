// A restore's target database on its server: does it exist, and creating it (`dbflow restore --create`).
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { DbflowError, type CreateOptions, type DriverContext, type ExistsOptions } from '../../src/plugin-api.js';
import { ident, withConnection } from './connect.js';
import { parseMyUrl, where } from './url.js';

async function exists(c: Connection, database: string): Promise<boolean> {
  const [rows] = await c.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
  return rows.length > 0;
}

/** True when the database `db.url` names exists on its server. */
export async function targetExists(_ctx: DriverContext, { db }: ExistsOptions): Promise<boolean> {
  const conn = parseMyUrl(db.url, db.password);
  return withConnection(conn, `looking for database "${conn.database}"`, (c) => exists(c, conn.database), { database: false });
}

/** Creates the database `db.url` names, with the server's default character set, unless it exists; true when it did. */
export async function createTarget(ctx: DriverContext, { db }: CreateOptions): Promise<boolean> {
  const conn = parseMyUrl(db.url, db.password);
  return withConnection(
    conn,
    `creating database "${conn.database}"`,
    async (c) => {
      if (await exists(c, conn.database)) return false;
      try {
        await c.query(`CREATE DATABASE ${ident(conn.database)}`);
      } catch (err) {
        const e = err as { sqlMessage?: string };
        throw new DbflowError(
          `cannot create database "${conn.database}" on ${where(conn)}: ${e.sqlMessage ?? String(err)}; create it yourself (CREATE DATABASE) or grant CREATE.`,
          {
            cause: err,
          },
        );
      }
      ctx.log.info(`created database ${conn.database} on ${where(conn)}`);
      return true;
    },
    { database: false },
  );
}
