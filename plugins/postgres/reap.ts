// Reaping: drops the scratch databases that runs which died left on a server.
import type { ReapOptions } from '../../src/plugin-api.js';
import { withClient } from './connect.js';
import { ident } from './scope.js';
import { parsePgUrl } from './url.js';

/** Drops every database on `db`'s server whose name starts with one of `prefixes`, ending its sessions. */
export async function reapScratch({ db, prefixes, signal, log }: ReapOptions): Promise<string[]> {
  if (!prefixes.length) return [];
  const conn = parsePgUrl(db.url, db.password);
  return withClient(conn, `database "${db.name}" (reaping scratch databases of dead runs)`, async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS p WHERE starts_with(datname, p)) ORDER BY 1',
      [prefixes],
    );
    const dropped: string[] = [];
    for (const { datname } of rows) {
      if (signal.aborted) break;
      await c.query(`DROP DATABASE IF EXISTS ${ident(datname)} WITH (FORCE)`);
      log(`dropped scratch database ${datname} of a run that died`);
      dropped.push(datname);
    }
    return dropped;
  });
}
