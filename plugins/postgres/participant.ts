// The postgres driver's part in a coordinated snapshot: a SHARE-lock write barrier on the tables in scope.
import type { Client } from 'pg';
import { DbflowError, type DriverContext, type ParticipateOptions, type SnapshotParticipant } from '../../src/plugin-api.js';
import { connect } from './connect.js';
import { DEADLOCK_DETECTED, describeBlockers, LOCK_NOT_AVAILABLE, lockTables, UNDEFINED_TABLE } from './locks.js';
import { tablesInScope, type PgTable } from './scope.js';
import {
  asSnapshotError,
  beginLocked,
  exportSnapshot,
  heldSnapshot,
  snapshotSession,
  snapshotTables,
  type Position,
  type SnapshotSession,
} from './snapshot.js';

const METHOD = 'LOCK TABLE … IN SHARE MODE';

/**
 * Prepares a coordinated snapshot: a snapshot session, and a barrier session whose SHARE locks on
 * every table in scope make writers wait (readers and pg_dump do not) while the cut is taken. Under
 * the barrier a named restore point marks the cut for point-in-time recovery.
 */
export async function participate(
  ctx: DriverContext,
  { db }: ParticipateOptions,
  options: { restorePointRequired?: boolean } = {},
): Promise<SnapshotParticipant> {
  const s = await snapshotSession(db);
  let barrier: Client | undefined;
  let listed: PgTable[];
  const notCovered: string[] = [];
  try {
    barrier = await connect(s.conn, s.what, 'dbflow barrier');
    // A barrier waiting for a lock notices at once that dbflow is gone (PostgreSQL 14+), so writers queued behind it go on.
    if (s.versionNum >= 140000) await barrier.query('SET client_connection_check_interval = 100');
    listed = await tablesInScope(s.client, s.o);
    notCovered.push(...(await uncovered(s)));
  } catch (err) {
    await Promise.all([s.client, ...(barrier ? [barrier] : [])].map((c) => c.end().catch(() => undefined)));
    throw asSnapshotError(err, db.name);
  }
  const bar = barrier;
  let position: Position | undefined;
  let restorePoint: { name: string; lsn: string } | Error | undefined;
  let inTransaction = false;
  const rollback = async (c: Client): Promise<void> => void (await c.query('ROLLBACK').catch(() => undefined));
  const endAll = async (): Promise<void> => void (await Promise.all([s.client, bar].map((c) => c.end().catch(() => undefined))));
  const onAbort = (): void => void endAll();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  return {
    method: METHOD,
    notCovered,
    async block(timeoutMs) {
      try {
        // The snapshot session's own ACCESS SHARE locks first, so that taking the cut never waits behind a queued DDL.
        inTransaction = true;
        await beginLocked(s, listed, timeoutMs);
        await bar.query('BEGIN');
        await lockTables(bar, listed, timeoutMs, 'SHARE');
        return undefined;
      } catch (err) {
        const code = (err as { code?: string }).code;
        await Promise.all([rollback(bar), rollback(s.client)]);
        inTransaction = false;
        if (code === UNDEFINED_TABLE) {
          listed = await tablesInScope(s.client, s.o);
          return 'a table was dropped while it was being locked';
        }
        if (code !== LOCK_NOT_AVAILABLE && code !== DEADLOCK_DETECTED) throw asSnapshotError(err, db.name);
        const blockers = await describeBlockers(s.client, listed, 'SHARE').catch(
          (e: unknown) => `(the blocking sessions could not be listed: ${String(e)})`,
        );
        return `${code === DEADLOCK_DETECTED ? 'a deadlock with' : 'blocked by'} ${blockers}`;
      }
    },
    async take(cut) {
      // One round trip on each session, side by side: the snapshot, and a restore point at the same cut.
      const [pos, point] = await Promise.all([exportSnapshot(s), createRestorePoint(bar, `dbflow_${cut}`.slice(0, 63))]);
      position = pos;
      restorePoint = point;
    },
    async release() {
      await rollback(bar);
      if (!position && inTransaction) await rollback(s.client);
      inTransaction = false;
    },
    async open() {
      if (!position) throw asSnapshotError(new Error('open() before take()'), db.name);
      if (restorePoint instanceof Error && options.restorePointRequired) throw restorePointError(restorePoint, db.name);
      ctx.signal.removeEventListener('abort', onAbort);
      await bar.end().catch(() => undefined);
      if (restorePoint instanceof Error && !options.restorePointRequired)
        ctx.log.warn(`${db.name}: no restore point at the cut (${restorePoint.message}); point-in-time recovery cannot target it by name.`);
      // Listed again inside the snapshot (after the barrier: the snapshot sees the catalog as it was at the cut).
      const tables = await snapshotTables(s, listed, s.o.lockTimeoutMs).catch((err: unknown) => {
        throw asSnapshotError(err, db.name);
      });
      return heldSnapshot(ctx, s, position, tables, {
        barrier: METHOD,
        ...(restorePoint && !(restorePoint instanceof Error) && { restore_point: restorePoint.name, restore_point_lsn: restorePoint.lsn }),
      });
    },
    async abort() {
      ctx.signal.removeEventListener('abort', onAbort);
      await endAll();
    },
  };
}

// A named restore point at the cut and its LSN, or why the server refused one (no privilege, wal_level minimal, a standby).
// A refusal aborts the barrier's transaction, which keeps its locks until the rollback that releases them.
async function createRestorePoint(barrier: Client, name: string): Promise<{ name: string; lsn: string } | Error> {
  try {
    const r = await barrier.query<{ lsn: string }>('SELECT pg_create_restore_point($1)::text AS lsn', [name]);
    return { name, lsn: r.rows[0]!.lsn };
  } catch (err) {
    return err as Error;
  }
}

// What a SHARE barrier does not hold still: sequences (nextval is not transactional) and large objects.
async function uncovered(s: SnapshotSession): Promise<string[]> {
  const r = await s.client.query<{ sequences: number; large_objects: boolean }>(
    `SELECT (SELECT count(*)::int FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
                AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1)) AND NOT (n.nspname = ANY($2))) AS sequences,
            EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata) AS large_objects`,
    [s.o.schemas, s.o.excludeSchemas],
  );
  const { sequences, large_objects: largeObjects } = r.rows[0]!;
  return [
    ...(sequences
      ? [
          `${s.db.name}: ${sequences} sequence${sequences === 1 ? '' : 's'} (nextval is not transactional: a sequence may be ahead of the rows in the cut)`,
        ]
      : []),
    ...(largeObjects ? [`${s.db.name}: large objects (not locked by the table barrier)`] : []),
  ];
}

// A base backup's counts are only reachable through its restore point: without one there is no backup.
function restorePointError(err: Error, database: string): Error {
  const denied = (err as { code?: string }).code === '42501';
  return new DbflowError(
    `database "${database}": the restore point the base backup's counts are taken at could not be created (${err.message})${
      denied ? '; an administrator runs GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO <the backup role>;' : '.'
    }`,
    { cause: err },
  );
}
