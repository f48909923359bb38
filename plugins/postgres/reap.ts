// Reaping: drops the scratch databases that runs which died left on a server.
import type { ReapOptions } from '../../src/plugin-api.js';
import { withClient } from './connect.js';
import { ident } from './scope.js';
import { parsePgUrl } from './url.js';

// How long a reaper waits for a dead run's statement to end once it was told to.
const END_SESSION_WAIT_MS = 10_000;

/**
 * Drops every database on `db`'s server whose name starts with one of `prefixes`, ending its sessions. First it
 * ends the dead runs' own sessions (named after their scratch databases): a run killed while the server was still
 * creating one would otherwise see that database appear after the reaper had looked.
 */
export async function reapScratch({ db, prefixes, signal, log }: ReapOptions): Promise<string[]> {
  if (!prefixes.length) return [];
  const conn = parsePgUrl(db.url, db.password);
  return withClient(conn, `database "${db.name}" (reaping scratch databases of dead runs)`, async (c) => {
    try {
      const inFlight = await c.query<{ pid: number; ended: boolean }>(
        `SELECT pid, pg_terminate_backend(pid, ${END_SESSION_WAIT_MS}) AS ended FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND EXISTS (SELECT 1 FROM unnest($1::text[]) AS p WHERE starts_with(application_name, p))`,
        [prefixes],
      );
      for (const { pid, ended } of inFlight.rows)
        log(
          ended
            ? `ended session ${pid} of a run that died`
            : `warning: session ${pid} of a run that died did not end within ${END_SESSION_WAIT_MS / 1000} s`,
        );
    } catch (err) {
      log(`warning: the sessions of runs that died could not be ended: ${(err as Error).message}`);
    }
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
