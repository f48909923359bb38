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
