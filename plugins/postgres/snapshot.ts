// A consistent snapshot of one PostgreSQL database: an exported REPEATABLE READ snapshot, held open.
import { assertionRows } from './assert-query.js';
import type { Client } from 'pg';
import { DbflowError, type DatabaseConfig, type DriverContext, type DriverSnapshot, type SnapshotOptions } from '../../src/plugin-api.js';
import { cancelQueries, connect, PINNED_SETTINGS } from './connect.js';
import { schemeFor } from './checksum.js';
import { countTables } from './counts.js';
import { describeBlockers, LOCK_NOT_AVAILABLE, lockTables, lockTimeoutError, UNDEFINED_TABLE } from './locks.js';
import { pgOptions, type PgOptions } from './options.js';
import { tablesInScope, type PgTable } from './scope.js';
import { toolMajor } from './tools.js';
import { parsePgUrl, type PgConnection } from './url.js';

/** A snapshot of the postgres driver: dumps import `snapshotId` while `release()` has not run. */
export interface PgSnapshot extends DriverSnapshot {
  readonly snapshotId: string;
  readonly conn: PgConnection;
  readonly serverVersionNum: number;
}

/** True for a snapshot this driver took. */
export function isPgSnapshot(s: DriverSnapshot): s is PgSnapshot {
  return s.info.driver === 'postgres' && typeof (s as Partial<PgSnapshot>).snapshotId === 'string';
}

/** The position of an exported snapshot. */
export interface Position {
  snapshot_id: string;
  lsn: string;
  txid_snapshot: string;
  in_recovery: boolean;
  taken_at: Date;
}

/** A connected snapshot session with its settings pinned: what a snapshot starts from. */
export interface SnapshotSession {
  db: DatabaseConfig;
  conn: PgConnection;
  o: PgOptions;
  what: string;
  client: Client;
  versionNum: number;
  serverVersion: string;
}

/** Connects the snapshot session and reads the server's version. */
export async function snapshotSession(db: DatabaseConfig): Promise<SnapshotSession> {
  const conn = parsePgUrl(db.url, db.password);
  const what = `database "${db.name}"`;
  const client = await connect(conn, what, 'dbflow snapshot');
  try {
    for (const s of PINNED_SETTINGS) await client.query(s);
    const r = await client.query<{ n: string; v: string }>(
      `SELECT current_setting('server_version_num') AS n, current_setting('server_version') AS v`,
    );
    return { db, conn, o: pgOptions(db), what, client, versionNum: Number(r.rows[0]!.n), serverVersion: r.rows[0]!.v };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw asSnapshotError(err, db.name);
  }
}

/**
 * Opens a REPEATABLE READ READ ONLY transaction, locks the tables in scope (ACCESS SHARE, unless
 * `lock_tables: false`) before its snapshot is taken, exports the snapshot, and counts rows and
 * checksums inside it. The transaction stays open until `release()`.
 */
export async function takeSnapshot(ctx: DriverContext, { db }: SnapshotOptions): Promise<PgSnapshot> {
  // The dump will ask pg_dump's version: asked now, beside the snapshot (a failure is reported by the dump).
  toolMajor(ctx, 'pg_dump', pgOptions(db).binDir).catch(() => undefined);
  const s = await snapshotSession(db);
  const stopOnAbort = (): void => void cancelQueries(s.conn, s.what, [s.client]);
  ctx.signal.addEventListener('abort', stopOnAbort, { once: true });
  try {
    const { pos, tables } = await openSnapshot(s);
    return heldSnapshot(ctx, s, pos, tables, {});
  } catch (err) {
    await s.client.end().catch(() => undefined);
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : err;
    throw asSnapshotError(err, db.name);
  } finally {
    ctx.signal.removeEventListener('abort', stopOnAbort);
  }
}

// BEGIN, lock what is in scope, export the snapshot; a table dropped meanwhile means another try.
async function openSnapshot(s: SnapshotSession): Promise<{ pos: Position; tables: PgTable[] }> {
  for (let attempt = 1; ; attempt++) {
    const listed = await tablesInScope(s.client, s.o);
    try {
      await beginLocked(s, listed, s.o.lockTimeoutMs);
      const pos = await exportSnapshot(s);
      return { pos, tables: await snapshotTables(s, listed, s.o.lockTimeoutMs) };
    } catch (err) {
      const code = (err as { code?: string }).code;
      await s.client.query('ROLLBACK').catch(() => undefined);
      if (code === LOCK_NOT_AVAILABLE)
        throw lockTimeoutError(s.db.name, s.o.lockTimeoutMs, await describeBlockers(s.client, await tablesInScope(s.client, s.o)));
      if (code === UNDEFINED_TABLE && attempt < 3) continue; // dropped between listing and locking
      throw err;
    }
  }
}

/** BEGIN the snapshot's transaction and lock `listed` (ACCESS SHARE, with lock_tables): LOCK does not take the transaction's snapshot yet. */
export async function beginLocked(s: SnapshotSession, listed: readonly PgTable[], timeoutMs: number): Promise<void> {
  await s.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  if (s.o.lockTables) await lockTables(s.client, listed, timeoutMs);
}

/** The transaction's first query: its snapshot, exported, and the position. */
export async function exportSnapshot(s: SnapshotSession): Promise<Position> {
  const current = s.versionNum >= 130000 ? 'pg_current_snapshot()' : 'txid_current_snapshot()';
  const r = await s.client.query<Position>(
    `SELECT pg_export_snapshot() AS snapshot_id,
            (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
            ${current}::text AS txid_snapshot, pg_is_in_recovery() AS in_recovery, clock_timestamp() AS taken_at`,
  );
  return r.rows[0]!;
}

/** The tables in scope as the open snapshot sees them: those created since `listed` are locked (with lock_tables) and counted too. */
export async function snapshotTables(s: SnapshotSession, listed: readonly PgTable[], timeoutMs: number): Promise<PgTable[]> {
  const tables = await tablesInScope(s.client, s.o);
  const known = new Set(listed.map((t) => t.key));
  if (s.o.lockTables)
    await lockTables(
      s.client,
      tables.filter((t) => !known.has(t.key)),
      timeoutMs,
    );
  return tables;
}

/**
 * The snapshot open on `s.client` as a DriverSnapshot: rows are counted inside it (in parallel
 * sessions that import it) while the dumps run; `release()` ends it.
 */
export function heldSnapshot(
  ctx: DriverContext,
  s: SnapshotSession,
  pos: Position,
  tables: PgTable[],
  extra: Record<string, unknown>,
): PgSnapshot {
  const { conn, o, what, client, db } = s;
  const helpers: Client[] = [];
  const scheme = o.checksums ? schemeFor(s.versionNum) : undefined;
  ctx.log.info(
    `${db.name}: snapshot ${pos.snapshot_id} at LSN ${pos.lsn}; counting ${tables.length} tables${o.checksums ? ' with checksums' : ''} while the dump runs`,
  );
  const info: DriverSnapshot['info'] = {
    driver: 'postgres',
    serverVersion: s.serverVersion,
    position: {
      snapshot_id: pos.snapshot_id,
      lsn: pos.lsn,
      txid_snapshot: pos.txid_snapshot,
      in_recovery: pos.in_recovery,
      tables_locked: o.lockTables,
      ...(scheme && { checksum: scheme }),
      ...extra,
    },
    tables: {},
    takenAt: pos.taken_at.toISOString(),
  };
  // The counts read the exported snapshot alongside pg_dump, which imports it: the dump need not wait.
  const stop = new AbortController();
  const onAbort = (): void => {
    stop.abort(ctx.signal.reason);
    void cancelQueries(conn, what, [client, ...helpers]);
  };
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let settled = false;
  const counted = (async () => {
    // Counting takes ACCESS SHARE locks that last as long as the transaction: without lock_tables, only
    // sessions that import the snapshot and end after counting may count, so DDL is not held up.
    const own = o.lockTables ? 1 : 0;
    const workers = Math.max(1, Math.min(o.jobs, tables.length));
    for (let i = own; i < workers; i++) helpers.push(await importSnapshot(conn, what, pos.snapshot_id));
    info.tables = await countTables(own ? [client, ...helpers] : helpers, tables, scheme, stop.signal);
    await Promise.all(helpers.splice(0).map((c) => c.query('COMMIT').finally(() => c.end())));
  })()
    .catch(async (err: unknown) => {
      await Promise.all(helpers.splice(0).map((c) => c.end().catch(() => undefined)));
      throw stop.signal.aborted
        ? new DbflowError(`database "${db.name}": counting inside the snapshot was stopped.`)
        : asSnapshotError(err, db.name);
    })
    .finally(() => {
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
    });
  counted.catch(() => undefined); // its consumers (dump, rowcount-check) report a failure
  let released = false;
  return {
    snapshotId: pos.snapshot_id,
    conn,
    serverVersionNum: s.versionNum,
    info,
    counted,
    // A data assertion reads the same snapshot in a session of its own (the counts use theirs).
    query: async (sql, timeoutMs) => {
      const c = await importSnapshot(conn, what, pos.snapshot_id);
      try {
        return await assertionRows(c, sql, timeoutMs, db.name);
      } finally {
        await c.query('ROLLBACK').catch(() => undefined);
        await c.end().catch(() => undefined);
      }
    },
    release: async () => {
      if (released) return;
      released = true;
      // Released before the counts are done (a failure or cancel elsewhere): stop them at once.
      if (!settled) {
        stop.abort(new DbflowError('snapshot released'));
        await cancelQueries(conn, what, [client, ...helpers]);
      }
      await counted.catch(() => undefined);
      await client.query('COMMIT').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

// A second session reading the same snapshot (for parallel counting).
async function importSnapshot(conn: PgConnection, what: string, snapshotId: string): Promise<Client> {
  const c = await connect(conn, what, 'dbflow snapshot');
  try {
    for (const s of PINNED_SETTINGS) await c.query(s);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET TRANSACTION SNAPSHOT '${snapshotId.replace(/'/g, "''")}'`);
    return c;
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
}

/** A snapshot failure as a DbflowError naming the database. */
export function asSnapshotError(err: unknown, database: string): Error {
  if (err instanceof DbflowError) return err;
  const e = err as { code?: string; message?: string };
  return new DbflowError(
    `database "${database}": the snapshot failed: ${e.message ?? String(err)}${e.code ? ` (SQLSTATE ${e.code})` : ''}.`,
    { cause: err },
  );
}
