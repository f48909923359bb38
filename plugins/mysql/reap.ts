// Reaping: drops the scratch databases that runs which died left on a server.
import { setTimeout as delay } from 'node:timers/promises';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ReapOptions } from '../../src/plugin-api.js';
import { ident, withConnection } from './connect.js';
import { parseMyUrl } from './url.js';

// How long a reaper waits for a dead run's statement to end once it was killed.
const END_SESSION_WAIT_MS = 10_000;

/**
 * Drops every database on `db`'s server whose name starts with one of `prefixes`. First it ends the dead runs' own
 * sessions (one creating a scratch database, or using one): a run killed while the server was still creating one
 * would otherwise see that database appear after the reaper had looked.
 */
export async function reapScratch({ db, prefixes, signal, log }: ReapOptions): Promise<string[]> {
  if (!prefixes.length) return [];
  const conn = parseMyUrl(db.url, db.password);
  return withConnection(
    conn,
    `database "${db.name}" (reaping scratch databases of dead runs)`,
    async (c) => {
      await endSessions(c, prefixes, log);
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

// Kills the sessions of dead runs (by the database they use or the scratch database they create) and waits until they are gone.
async function endSessions(c: Connection, prefixes: readonly string[], log: (message: string) => void): Promise<void> {
  const ofDeadRun = async (): Promise<number[]> => {
    const [rows] = await c.query<RowDataPacket[]>(
      'SELECT ID AS id, DB AS db, INFO AS info FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()',
    );
    const names = (r: RowDataPacket): boolean => {
      const created = /^\s*CREATE\s+DATABASE\s+`?([^`\s]+)/i.exec(String(r.info ?? ''))?.[1];
      return prefixes.some((p) => String(r.db ?? '').startsWith(p) || !!created?.startsWith(p));
    };
    return rows.filter(names).map((r) => Number(r.id));
  };
  try {
    const ids = await ofDeadRun();
    for (const id of ids) {
      await c.query(`KILL CONNECTION ${id}`).catch(() => undefined);
      log(`ended session ${id} of a run that died`);
    }
    const deadline = Date.now() + END_SESSION_WAIT_MS;
    let left = ids;
    while (left.length && Date.now() < deadline) {
      await delay(100);
      const now = new Set(await ofDeadRun());
      left = left.filter((id) => now.has(id));
    }
    if (left.length) log(`warning: sessions ${left.join(', ')} of a run that died did not end within ${END_SESSION_WAIT_MS / 1000} s`);
  } catch (err) {
    log(`warning: the sessions of runs that died could not be ended: ${(err as Error).message}`);
  }
}
