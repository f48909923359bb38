// A consistent snapshot of one MySQL/MariaDB database: a consistent-snapshot transaction and a dump, both started under a commit barrier.
import type { Connection } from 'mysql2/promise';
import { DbflowError, type DatabaseConfig, type DriverContext, type DriverSnapshot, type TableCounts } from '../../src/index.js';
import { acquireBarrier, readPosition, serverKind, snapshotPosition, type BinlogPosition } from './barrier.js';
import { connect, PINNED_SETTINGS, queryError } from './connect.js';
import { CHECKSUM_SCHEME, countTables, isNonTransactional, tablesInScope } from './counts.js';
import { DUMP_TOOL, startDump, type StartedDump } from './dump-start.js';
import { myOptions } from './options.js';
import { toolVersion } from './tools.js';
import { parseMyUrl, type MyConnection } from './url.js';

/** A snapshot of the mysql driver: its dump was started inside the same cut and waits to be claimed. */
export interface MySnapshot extends DriverSnapshot {
  readonly conn: MyConnection;
  /** The dump of this snapshot, once: later calls fail. */
  claimDump(): Promise<StartedDump>;
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
export async function takeSnapshot(ctx: DriverContext, db: DatabaseConfig): Promise<MySnapshot> {
  const conn = parseMyUrl(db.url, db.password);
  const o = myOptions(db);
  const what = `database "${db.name}"`;
  const snap = await connect(conn, what);
  let control: Connection | undefined;
  let dump: StartedDump | undefined;
  const destroyAll = (): void => {
    snap.destroy();
    control?.destroy();
    dump?.stop();
  };
  ctx.signal.addEventListener('abort', destroyAll, { once: true });
  try {
    // Before any barrier: a missing tool must not block commits, even briefly.
    const dumpTool = `${DUMP_TOOL} ${await toolVersion(ctx, DUMP_TOOL, o.binDir)}`;
    const kind = await serverKind(snap);
    for (const s of PINNED_SETTINGS) await snap.query(s);
    const listed = await tablesInScope(snap, conn.database, o.excludeTables);
    const loose = listed.filter(isNonTransactional);
    if (loose.length) {
      ctx.log.warn(
        `${db.name}: ${loose.map((t) => `${t.name} (${t.engine})`).join(', ')} ${loose.length === 1 ? 'is' : 'are'} not transactional: a consistent snapshot does not cover ${loose.length === 1 ? 'it' : 'them'}, and rows written during the backup may differ between counts and dump. Convert to InnoDB for exact backups.`,
      );
    }
    await snap.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    control = await connect(conn, what);
    const barrier = await acquireBarrier(control, kind, db.name, o.lockWaitTimeoutS);
    let position: BinlogPosition;
    let barrierMs: number;
    try {
      await snap.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      position = await readPosition(control, kind);
      if (kind.flavor === 'mariadb' && position.binlog === 'on') await checkSnapshotPosition(snap, position, db.name);
      dump = await startDump(ctx, conn, o, kind, position);
    } finally {
      barrierMs = await barrier.release();
    }
    await control.end().catch(() => undefined);
    const takenAt = new Date().toISOString();
    ctx.log.info(
      `${db.name}: snapshot ${position.binlog === 'on' ? `at binlog ${position.file}:${position.position}${position.gtid ? ` (GTID ${position.gtid})` : ''}` : '(binary log off)'}; commits blocked for ${barrierMs} ms (${barrier.name})`,
    );
    // Rows are counted inside the snapshot transaction while the dump streams: the dump need not wait.
    const tables: TableCounts = {};
    let settled = false;
    const counted = (async () => {
      const inScope = await tablesInScope(snap, conn.database, o.excludeTables);
      Object.assign(tables, await countTables(snap, conn.database, inScope, o.checksums, ctx.signal));
    })()
      .catch((err: unknown) => {
        throw err instanceof DbflowError ? err : queryError(err, `database "${db.name}": counting inside the snapshot`);
      })
      .finally(() => (settled = true));
    counted.catch(() => undefined); // its consumers (dump, rowcount-check) report a failure
    const started = dump;
    let claimed = false;
    let released = false;
    return {
      conn,
      info: {
        driver: 'mysql',
        serverVersion: kind.version,
        position: {
          ...position,
          flavor: kind.flavor,
          barrier: barrier.name,
          barrier_ms: barrierMs,
          dump_tool: dumpTool,
          ...(started.position && { dump_position: `${started.position.file}:${started.position.position}` }),
          ...(o.checksums && { checksum: CHECKSUM_SCHEME }),
          ...(loose.length && { non_transactional: loose.map((t) => t.name) }),
        },
        tables,
        takenAt,
      },
      counted,
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
      release: async () => {
        if (released) return;
        released = true;
        ctx.signal.removeEventListener('abort', destroyAll);
        if (!claimed) started.stop();
        // Released before the counts are done (a failure or cancel elsewhere): stop them at once.
        if (!settled) snap.destroy();
        await counted.catch(() => undefined);
        await snap.query('COMMIT').catch(() => undefined);
        await snap.end().catch(() => snap.destroy());
      },
    };
  } catch (err) {
    ctx.signal.removeEventListener('abort', destroyAll);
    destroyAll();
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : err;
    throw err instanceof DbflowError ? err : queryError(err, `database "${db.name}": the snapshot`);
  }
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
