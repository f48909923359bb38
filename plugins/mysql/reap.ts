// Reaping: drops the scratch databases that runs which died left on a server.
import type { RowDataPacket } from 'mysql2/promise';
import type { ReapOptions } from '../../src/plugin-api.js';
import { ident, withConnection } from './connect.js';
import { parseMyUrl } from './url.js';

/** Drops every database on `db`'s server whose name starts with one of `prefixes`. */
export async function reapScratch({ db, prefixes, signal, log }: ReapOptions): Promise<string[]> {
  if (!prefixes.length) return [];
  const conn = parseMyUrl(db.url, db.password);
  return withConnection(
    conn,
    `database "${db.name}" (reaping scratch databases of dead runs)`,
    async (c) => {
      // LIKE would read `_` as a wildcard: compare the start of each name instead.
      const [rows] = await c.query<RowDataPacket[]>('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY 1');
      const names = rows.map((r) => String(r.name)).filter((n) => prefixes.some((p) => n.startsWith(p)));
      const dropped: string[] = [];
      for (const name of names) {
        if (signal.aborted) break;
        await c.query(`DROP DATABASE IF EXISTS ${ident(name)}`);
        log(`dropped scratch database ${name} of a run that died`);
        dropped.push(name);
      }
      return dropped;
    },
    { database: false },
  );
}
