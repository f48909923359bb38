// What the entry's scope leaves out of a backup: the coverage check of the snapshot step.
import type { RowDataPacket } from 'mysql2/promise';
import type { DatabaseConfig, DriverContext, LeftOut } from '../../src/plugin-api.js';
import { withConnection } from './connect.js';
import { tablesInScope } from './counts.js';
import { myOptions } from './options.js';
import { parseMyUrl } from './url.js';

/** `DatabaseDriver.coverage`: the tables of the database that options.exclude_tables leaves out. */
export async function coverage(_ctx: DriverContext, { db }: { db: DatabaseConfig }): Promise<LeftOut[]> {
  const conn = parseMyUrl(db.url, db.password);
  const { excludeTables } = myOptions(db);
  if (!excludeTables.length) return [];
  return withConnection(conn, `database "${db.name}"`, async (c) => {
    const every = await tablesInScope(c, conn.database);
    return every
      .filter((t) => excludeTables.includes(t.name))
      .map((t) => ({ table: t.name, why: 'excluded by options.exclude_tables', excluded: true }));
  });
}

/** `DatabaseDriver.serverDatabases`: the schemas of the entry's server, but its own and dbflow's scratch databases. */
export async function serverDatabases(_ctx: DriverContext, { db }: { db: DatabaseConfig }): Promise<string[]> {
  const conn = parseMyUrl(db.url, db.password);
  return withConnection(conn, `the server of database "${db.name}"`, async (c) => {
    const [rows] = await c.query<RowDataPacket[]>(
      `SELECT SCHEMA_NAME AS d FROM information_schema.SCHEMATA
        WHERE SCHEMA_NAME NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema') AND SCHEMA_NAME NOT LIKE 'dbflow\\_verify\\_%'
        ORDER BY 1`,
    );
    return rows.map((row) => String(row.d));
  });
}
