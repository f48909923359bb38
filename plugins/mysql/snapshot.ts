// A consistent snapshot of one MySQL/MariaDB database: a consistent-snapshot transaction and a dump, both started under a commit barrier.
import { assertionRows } from './assert-query.js';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  DbflowError,
  type DatabaseConfig,
  type DriverContext,
  type DriverSnapshot,
  type ParticipateOptions,
  type SnapshotOptions,
  type SnapshotParticipant,
  type TableCounts,
} from '../../src/plugin-api.js';
import {
  barrierName,
  readPosition,
  serverKind,
  snapshotPosition,
  tryBarrier,
  type Barrier,
  type BinlogPosition,
  type ServerKind,
} from './barrier.js';
import { schemeFor } from './checksum.js';
import { connect, PINNED_SETTINGS, queryError } from './connect.js';
import { changedTables, countTables, isNonTransactional, schemaFingerprint, tablesInScope, type MyTable } from './counts.js';
import { DUMP_TOOL, launchDump, type PendingDump, type StartedDump } from './dump-start.js';
import { myOptions, type MyOptions } from './options.js';
import { toolVersion } from './tools.js';
import { parseMyUrl, type MyConnection } from './url.js';

/** A snapshot of the mysql driver: its dump was started inside the same cut and waits to be claimed. */
export interface MySnapshot extends DriverSnapshot {
  readonly conn: MyConnection;
  /** The dump of this snapshot, once: later calls fail. */
  claimDump(): Promise<StartedDump>;
  /** Rejects, naming the tables, when DDL changed a table in scope since the snapshot was prepared. */
  unchanged(): Promise<void>;
}

/** True for a snapshot this driver took. */
export function isMySnapshot(s: DriverSnapshot): s is MySnapshot {
  return s.info.driver === 'mysql' && typeof (s as Partial<MySnapshot>).claimDump === 'function';
}

/**
 * Blocks commits (BACKUP STAGE BLOCK_COMMIT on MariaDB, FLUSH TABLES WITH READ LOCK on MySQL), opens
 * a REPEATABLE READ consistent-snapshot transaction, reads the binlog position, starts mariadb-dump's
 * own consistent-snapshot transaction, and lets commits go on: both transactions read the same cut.
 * Rows are then counted (and checksummed) inside the snapshot transaction, alongside the dump (`counted`);
 * the transaction is held until `release()`.
 */
export async function takeSnapshot(ctx: DriverContext, { db }: SnapshotOptions): Promise<MySnapshot> {
  const p = await participate(ctx, { db });
  try {
    const o = myOptions(db);
    const blocked = await p.block(o.lockWaitTimeoutS * 1000);
    if (blocked !== undefined) {
      throw new DbflowError(
        `database "${db.name}": could not block commits within ${o.lockWaitTimeoutS} s (${p.method}; options.lock_wait_timeout): ${blocked}. Wait for it, or raise lock_wait_timeout.`,
      );
    }
    await p.take(ctx.run.id);
    await p.release();
    return await p.open();
  } catch (err) {
    await p.abort();
    throw err;
  }
}

/** The mysql driver's part in a snapshot, coordinated with other databases or alone. */
export async function participate(
  ctx: DriverContext,
  { db }: ParticipateOptions,
): Promise<Omit<SnapshotParticipant, 'open'> & { open(): Promise<MySnapshot> }> {
  const conn = parseMyUrl(db.url, db.password);
  const o = myOptions(db);
  const what = `database "${db.name}"`;
  const fail = (err: unknown, doing = 'the snapshot'): Error => {
    if (ctx.signal.aborted) return ctx.signal.reason instanceof Error ? ctx.signal.reason : (err as Error);
    return err instanceof DbflowError ? err : queryError(err, `database "${db.name}": ${doing}`);
  };
  const snap = await connect(conn, what);
  let control: Connection | undefined;
  let pending: PendingDump | undefined;
  let dump: StartedDump | undefined;
  const destroyAll = (): void => {
    snap.destroy();
    control?.destroy();
    pending?.stop();
  };
  ctx.signal.addEventListener('abort', destroyAll, { once: true });
  let dumpTool: string;
  let kind: ServerKind;
  let loose: MyTable[];
  let definitions: Map<string, string>;
  try {
    // Before any barrier: a missing tool must not block commits, even briefly.
    dumpTool = `${DUMP_TOOL} ${await toolVersion(ctx, DUMP_TOOL, o.binDir)}`;
    kind = await serverKind(snap);
    for (const s of PINNED_SETTINGS) await snap.query(s);
    definitions = await schemaFingerprint(snap, conn.database);
    const listed = await tablesInScope(snap, conn.database, o.excludeTables);
    loose = listed.filter(isNonTransactional);
    if (loose.length) {
      ctx.log.warn(
        `${db.name}: ${loose.map((t) => `${t.name} (${t.engine})`).join(', ')} ${loose.length === 1 ? 'is' : 'are'} not transactional: a consistent snapshot does not cover ${loose.length === 1 ? 'it' : 'them'}, and rows written during the backup may differ between counts and dump. Convert to InnoDB for exact backups.`,
      );
    }
    await snap.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    control = await connect(conn, what);
    pending = await launchDump(ctx, conn, o, kind, await binlogOn(snap));
  } catch (err) {
    ctx.signal.removeEventListener('abort', destroyAll);
    destroyAll();
    throw fail(err);
  }
  const ctl = control;
  const launched = pending;
  let barrier: Barrier | undefined;
  let position: BinlogPosition | undefined;
  let barrierMs = 0;
  return {
    method: barrierName(kind),
    notCovered: loose.map((t) => `${db.name}: ${t.name} (${t.engine}, not transactional)`),
    async block(timeoutMs) {
      try {
        const got = await tryBarrier(ctl, kind, db.name, timeoutMs);
        if ('blocked' in got) return got.blocked;
        barrier = got;
        return undefined;
      } catch (err) {
        throw fail(err);
      }
    },
    async take() {
      try {
        // Side by side: nothing commits while the barrier is held, so the position is the snapshot's.
        const [, read] = await Promise.all([snap.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY'), readPosition(ctl, kind)]);
        position = read;
        if (kind.flavor === 'mariadb' && position.binlog === 'on') await checkSnapshotPosition(snap, position, db.name);
      } catch (err) {
        throw fail(err);
      }
    },
    async release() {
      try {
        // The dump's own transaction must start inside the cut: commits stay blocked until it has.
        if (position && !dump) dump = await launched.begin(position);
      } catch (err) {
        throw fail(err);
      } finally {
        barrierMs = (await barrier?.release()) ?? 0;
        barrier = undefined;
      }
      // With the binlog on, the dump's header must prove the same cut (after the barrier: commits need not wait for it).
      if (dump && position?.binlog === 'on') {
        const proved = await dump.proved.catch((err: unknown) => {
          throw fail(err);
        });
        if (proved) dump.position = proved;
      }
    },
    open() {
      if (!position || !dump) return Promise.reject(fail(new Error('open() before take() and release()')));
      ctx.signal.removeEventListener('abort', destroyAll);
      void ctl.end().catch(() => undefined);
      ctx.log.info(
        `${db.name}: snapshot ${position.binlog === 'on' ? `at binlog ${position.file}:${position.position}${position.gtid ? ` (GTID ${position.gtid})` : ''}` : '(binary log off)'}; commits blocked for ${barrierMs} ms (${barrierName(kind)})`,
      );
      return Promise.resolve(
        heldSnapshot(ctx, db, { conn, o, snap, kind, position, barrierMs, dumpTool, loose, definitions, started: dump }),
      );
    },
    async abort() {
      ctx.signal.removeEventListener('abort', destroyAll);
      await barrier?.release().catch(() => undefined);
      destroyAll();
    },
  };
}

interface Taken {
  conn: MyConnection;
  o: MyOptions;
  snap: Connection;
  kind: ServerKind;
  position: BinlogPosition;
  barrierMs: number;
  dumpTool: string;
  loose: MyTable[];
  definitions: Map<string, string>;
  started: StartedDump;
}

// The snapshot transaction open on `t.snap` as a MySnapshot: rows are counted inside it while the dump streams.
function heldSnapshot(ctx: DriverContext, db: DatabaseConfig, t: Taken): MySnapshot {
  const { conn, o, snap, kind, position, started } = t;
  const takenAt = new Date().toISOString();
  const tables: TableCounts = {};
  const scheme = o.checksums ? schemeFor(kind) : undefined;
  let settled = false;
  const counted = (async () => {
    const inScope = await tablesInScope(snap, conn.database, o.excludeTables);
    Object.assign(tables, await countTables(snap, conn.database, inScope, scheme, ctx.signal));
  })()
    .catch((err: unknown) => {
      throw err instanceof DbflowError ? err : queryError(err, `database "${db.name}": counting inside the snapshot`);
    })
    .finally(() => (settled = true));
  counted.catch(() => undefined); // its consumers (dump, rowcount-check) report a failure
  let claimed = false;
  let released = false;
  return {
    conn,
    info: {
      driver: 'mysql',
      serverVersion: kind.version,
      position: {
        ...position,
        // The database's name on the server: a replay of the binary log picks its events by it.
        database_name: conn.database,
        flavor: kind.flavor,
        barrier: barrierName(kind),
        barrier_ms: t.barrierMs,
        dump_tool: t.dumpTool,
        ...(started.position && { dump_position: `${started.position.file}:${started.position.position}` }),
        ...(scheme && { checksum: scheme }),
        ...(t.loose.length && { non_transactional: t.loose.map((l) => l.name) }),
      },
      tables,
      takenAt,
    },
    counted,
    // A data assertion reads the snapshot transaction itself (queued behind the counts on its connection).
    query: (sql, timeoutMs) => assertionRows(snap, kind, sql, timeoutMs, db.name),
    claimDump: () => {
      if (claimed) {
        return Promise.reject(
          new DbflowError(
            `database "${db.name}": the dump started with this snapshot was already read; a mysql snapshot serves one dump. Retry the whole run instead of the dump alone.`,
          ),
        );
      }
      claimed = true;
      return Promise.resolve(started);
    },
    unchanged: async () => {
      const skip = new Set(o.excludeTables);
      const changed = changedTables(t.definitions, await schemaFingerprint(snap, conn.database)).filter((n) => !skip.has(n));
      if (changed.length) {
        throw new DbflowError(
          `database "${db.name}": ${changed.map((n) => `\`${n}\``).join(', ')} changed during the backup (DDL: ALTER, CREATE, DROP, RENAME or TRUNCATE); DDL is not transactional, so the dump may hold a definition that does not match the snapshot's rows. Nothing was published: run again, away from schema changes.`,
        );
      }
    },
    release: async () => {
      if (released) return;
      released = true;
      if (!claimed) started.stop();
      // Released before the counts are done (a failure or cancel elsewhere): stop them at once.
      if (!settled) snap.destroy();
      await counted.catch(() => undefined);
      await snap.query('COMMIT').catch(() => undefined);
      await snap.end().catch(() => snap.destroy());
    },
  };
}

// Whether the server writes a binary log (its position is then part of the cut).
async function binlogOn(c: Connection): Promise<boolean> {
  const [rows] = await c.query<RowDataPacket[]>('SELECT @@log_bin AS b');
  return Number((rows[0] as { b: number | string }).b) === 1;
}

// Under the barrier, the transaction's own binlog position must be the one just read.
async function checkSnapshotPosition(snap: Connection, position: BinlogPosition, database: string): Promise<void> {
  const own = await snapshotPosition(snap);
  if (own && (own.file !== position.file || own.position !== position.position)) {
    throw new DbflowError(
      `database "${database}": the snapshot transaction is at binlog ${own.file}:${own.position}, but ${position.file}:${position.position} was read under the barrier; commits were not blocked. Run again.`,
    );
  }
}
