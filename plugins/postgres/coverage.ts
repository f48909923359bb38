// What the entry's scope leaves out of a backup: the coverage check of the snapshot step.
import type { DatabaseConfig, DriverContext, LeftOut } from '../../src/plugin-api.js';
import { withClient } from './connect.js';
import { pgOptions } from './options.js';
import { leftOut } from './scope.js';
import { parsePgUrl } from './url.js';

/** `DatabaseDriver.coverage`: the tables of the database outside the entry's scope. */
export async function coverage(_ctx: DriverContext, { db }: { db: DatabaseConfig }): Promise<LeftOut[]> {
  const conn = parsePgUrl(db.url, db.password);
  return withClient(conn, `database "${db.name}"`, (c) => leftOut(c, pgOptions(db)));
}

/**
 * `DatabaseDriver.serverDatabases`: the databases of the entry's server that take connections, but the templates, the
 * maintenance database `postgres` and dbflow's scratch databases.
 */
export async function serverDatabases(_ctx: DriverContext, { db }: { db: DatabaseConfig }): Promise<string[]> {
  const conn = parsePgUrl(db.url, db.password);
  return withClient(conn, `the server of database "${db.name}"`, async (c) => {
    const r = await c.query<{ d: string }>(
      `SELECT datname AS d FROM pg_catalog.pg_database
        WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' AND NOT starts_with(datname, 'dbflow_verify_')
        ORDER BY 1`,
    );
    return r.rows.map((row) => row.d);
  });
}
