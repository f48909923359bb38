// Table locks of a snapshot, and who holds them when they cannot be had in time.
import type { Client } from 'pg';
import { DbflowError } from '../../src/plugin-api.js';
import type { PgTable } from './scope.js';

/** SQLSTATEs the snapshot handles. */
export const UNDEFINED_TABLE = '42P01';
export const LOCK_NOT_AVAILABLE = '55P03';

/** SQLSTATE of a deadlock the server broke by failing one of its transactions. */
export const DEADLOCK_DETECTED = '40P01';

/** A table lock mode, as LOCK TABLE names it, and the pg_locks modes that conflict with it. */
export type LockMode = 'ACCESS SHARE' | 'SHARE';
const CONFLICTS: Record<LockMode, string[]> = {
  'ACCESS SHARE': ['AccessExclusiveLock'],
  SHARE: ['RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
};

// The largest lock_timeout the server takes (an int of milliseconds); a longer wait is that long.
const MAX_LOCK_TIMEOUT_MS = 2 ** 31 - 1;

// How long one attempt waits for a lock: well below the server's deadlock_timeout (1 s by default), so that
// a writer waiting on a lock the attempt holds never waits long enough for the server to look for a deadlock.
const ATTEMPT_MS = 50;

/**
 * Locks `tables` in `mode` (default ACCESS SHARE) in the open transaction, within `timeoutMs`. Taken one after
 * another, the locks could deadlock with a writer that holds one of the tables and wants another the barrier holds,
 * and the server would then fail the writer's transaction. So each attempt waits at most a moment for each lock,
 * and one that cannot have them all gives back those it took (to a savepoint) and tries again shortly; a writer
 * waits on the barrier for at most one attempt. When `timeoutMs` has passed, the last lock_timeout error is thrown.
 */
export async function lockTables(
  client: Client,
  tables: readonly PgTable[],
  timeoutMs: number,
  mode: LockMode = 'ACCESS SHARE',
): Promise<void> {
  if (!tables.length) return;
  const deadline = Date.now() + timeoutMs;
  let order = tables;
  for (;;) {
    const wait = Math.min(MAX_LOCK_TIMEOUT_MS, Math.max(1, Math.min(ATTEMPT_MS, Math.round(deadline - Date.now()))));
    await client.query(`SET LOCAL lock_timeout = ${wait}`);
    await client.query('SAVEPOINT dbflow_lock');
    try {
      for (let i = 0; i < tables.length; i += 500) {
        const list = order
          .slice(i, i + 500)
          .map((t) => t.sql)
          .join(', ');
        await client.query(`LOCK TABLE ${list} IN ${mode} MODE`);
      }
      await client.query('RELEASE SAVEPOINT dbflow_lock');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
      await client.query('ROLLBACK TO SAVEPOINT dbflow_lock');
      if (Date.now() >= deadline) throw err;
      // The tables someone holds in a conflicting mode go first: the next attempt waits in their queue holding
      // nothing, so the writers in the way finish (and new ones queue behind it) instead of meeting the barrier again.
      order = await contendedFirst(client, order, mode);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 10)));
    }
  }
}

// `tables` with those that another session holds in a mode conflicting with `mode` first, in their order.
async function contendedFirst(client: Client, tables: readonly PgTable[], mode: LockMode): Promise<readonly PgTable[]> {
  const r = await client.query<{ t: string }>(
    `SELECT t FROM unnest($1::text[]) t
      WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                     WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
                       AND l.relation = t::regclass AND l.mode = ANY($2::text[]))`,
    [tables.map((t) => t.sql), CONFLICTS[mode]],
  );
  const busy = new Set(r.rows.map((x) => x.t));
  return [...tables.filter((t) => busy.has(t.sql)), ...tables.filter((t) => !busy.has(t.sql))];
}

/** The sessions that hold or queue for a lock conflicting with `mode` (default ACCESS SHARE) on any of `tables`. */
export async function describeBlockers(
  client: Client,
  tables: readonly PgTable[],
  mode: LockMode = 'ACCESS SHARE',
  except: readonly number[] = [],
): Promise<string> {
  const r = await client.query<{
    pid: number;
    state: string | null;
    query: string | null;
    age_s: number | null;
    rel: string;
    granted: boolean;
  }>(
    `SELECT a.pid, a.state, left(a.query, 160) AS query,
            extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::int AS age_s,
            l.relation::regclass::text AS rel, l.granted
       FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'relation' AND l.mode = ANY($2::text[]) AND a.pid <> pg_backend_pid() AND NOT (a.pid = ANY($3::int[]))
        AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
        AND l.relation = ANY($1::regclass[])
      ORDER BY l.granted DESC, age_s DESC NULLS LAST`,
    [tables.map((t) => t.sql), CONFLICTS[mode], except],
  );
  if (!r.rows.length) return 'no session holds a conflicting lock now';
  // Holders first; sessions that only queue (often behind this backup's own locks) when nobody holds one.
  const holders = r.rows.filter((b) => b.granted);
  return (holders.length ? holders : r.rows)
    .slice(0, 5)
    .map((b) => `pid ${b.pid} on ${b.rel} (${b.state ?? '?'} for ${b.age_s ?? '?'}s: ${JSON.stringify(b.query ?? '')})`)
    .join('; ');
}

/** The error for a lock that could not be had: it names the blocking sessions. */
export function lockTimeoutError(database: string, timeoutMs: number, blockers: string): DbflowError {
  return new DbflowError(
    `database "${database}": the snapshot could not lock its tables within ${timeoutMs} ms (options.lock_timeout): blocked by ${blockers}. End that session or raise lock_timeout, then run again.`,
  );
}
