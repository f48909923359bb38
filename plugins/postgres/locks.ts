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

/** Locks `tables` in `mode` (default ACCESS SHARE) in the open transaction, waiting at most `timeoutMs` for each. */
export async function lockTables(
  client: Client,
  tables: readonly PgTable[],
  timeoutMs: number,
  mode: LockMode = 'ACCESS SHARE',
): Promise<void> {
  if (!tables.length) return;
  await client.query(`SET LOCAL lock_timeout = ${Math.min(MAX_LOCK_TIMEOUT_MS, Math.max(1, Math.round(timeoutMs)))}`);
  for (let i = 0; i < tables.length; i += 500) {
    const list = tables
      .slice(i, i + 500)
      .map((t) => t.sql)
      .join(', ');
    await client.query(`LOCK TABLE ${list} IN ${mode} MODE`);
  }
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
