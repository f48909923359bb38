// The `basebackup` step: a PostgreSQL physical base backup streamed as one tar, with row counts at a point it recovers to exactly.
import { PassThrough } from 'node:stream';
import {
  DbflowError,
  defineStep,
  DURATION_PATTERN,
  parseDuration,
  type DatabaseConfig,
  type DriverSnapshot,
  type StepContext,
} from '../../src/plugin-api.js';
import { baseBackupChecks, type BaseBackupServer } from './basebackup-checks.js';
import { pgOptions } from './options.js';
import { participate } from './participant.js';
import { passBody, writeMembers } from './tar-append.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { parsePgUrl, type PgConnection } from './url.js';
import { fetchWal, lsnBytes, segmentName } from './wal-fetch.js';

/** The format name of a base backup artifact: pg_basebackup's tar (-Ft) with the WAL it needs in pg_wal/. */
export const BASEBACKUP_FORMAT = 'pg-basebackup-tar';

interface BaseBackupWith {
  database: string;
  barrier_timeout?: string;
}

/*
 * How the counts are exact. pg_basebackup -X fetch gives a tar that recovers to its stop LSN, a point
 * no client can take a snapshot at. So after it, the step holds the coordinated snapshot's write barrier
 * (SHARE locks on the tables in scope: no write to them can commit), and under it creates the restore
 * point dbflow_<run id> and exports a snapshot; then it releases the barrier and counts in that
 * snapshot. Between the barrier's acquisition and release the committed contents of those tables cannot
 * change, so recovery that stops at the restore point sees exactly what the snapshot counted. The WAL
 * from the base backup's end to the restore point (a segment or two: the server switches segments when
 * a backup stops) is fetched with pg_receivewal and appended to the same tar, under pg_wal/, so the
 * artifact alone recovers to the restore point.
 */
export const basebackupStep = defineStep<BaseBackupWith>({
  uses: 'basebackup',
  kind: 'source',
  description:
    'Stream a PostgreSQL physical base backup (pg_basebackup tar with its WAL up to a restore point) and count rows at that restore point.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['database'],
    properties: {
      database: {
        type: 'string',
        description: 'A name from databases: (driver postgres): its server is backed up whole; its tables are counted.',
      },
      barrier_timeout: {
        type: 'string',
        pattern: DURATION_PATTERN,
        default: '30s',
        description: 'How long to keep trying to hold the write barrier the counts are taken under.',
      },
    },
  },
  outputs: {
    type: 'object',
    properties: {
      database: { type: 'string' },
      format: { type: 'string' },
      extension: { type: 'string' },
      position: { type: 'object' },
    },
  },
  async run(ctx) {
    const { database } = ctx.with;
    const { config } = ctx.database(database);
    if (config.driver !== 'postgres')
      throw new DbflowError(
        `step "${ctx.id}": database "${database}" uses driver "${config.driver}"; basebackup takes PostgreSQL base backups (driver: postgres).`,
      );
    const conn = parsePgUrl(config.url, config.password);
    const server = await baseBackupChecks(conn, `database "${database}"`);
    const position: Record<string, unknown> = {
      system_identifier: server.systemId,
      timeline: server.timeline,
      server_version: server.serverVersion,
      // What the counts were taken of, so that a restore without the pipeline counts the same.
      database_name: conn.database,
      user: conn.user,
    };
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const counted = deferred<DriverSnapshot>();
    const tail = streamBase(ctx, config, conn, server, position, out, counted);
    tail.catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
    counted.promise.catch(() => undefined);
    // rowcount-check reads the counts from this lease, as from a snapshot step's.
    const info: DriverSnapshot['info'] = { driver: 'postgres', serverVersion: server.serverVersion, position, tables: {}, takenAt: '' };
    let inner: DriverSnapshot | undefined;
    const held: DriverSnapshot = {
      info,
      counted: counted.promise.then(async (s) => {
        inner = s;
        await s.counted;
        Object.assign(info, { tables: s.info.tables, takenAt: s.info.takenAt, position: { ...s.info.position, ...position } });
        await s.release();
      }),
      release: async () => {
        await inner?.release();
      },
    };
    held.counted!.catch(() => undefined);
    ctx.lease(new Map([[database, held]]), async (m) => {
      for (const s of m.values()) await s.release();
    });
    const final = Promise.all([tail, held.counted]).then(() => {
      info.position = { ...info.position, ...position };
      ctx.report.database(database, info);
      const rows = Object.values(info.tables).reduce((n, t) => n + t.rows, 0);
      ctx.log.info(
        `${database}: ${Object.keys(info.tables).length} tables, ${rows} rows at restore point ${String(position.restore_point)}`,
      );
      return { position };
    });
    return { output: out, outputs: { database, format: BASEBACKUP_FORMAT, extension: '.tar', position }, final };
  },
});

// pg_basebackup's tar into `out` without its end marker, then the known point, the WAL up to it, and the end marker.
async function streamBase(
  ctx: StepContext<BaseBackupWith>,
  db: DatabaseConfig,
  conn: PgConnection,
  server: BaseBackupServer,
  position: Record<string, unknown>,
  out: PassThrough,
  counted: Deferred<DriverSnapshot>,
): Promise<void> {
  const o = pgOptions(db);
  const { env, removeAfter } = toolConnection(ctx, conn, 'dbflow pg_basebackup');
  const fail = (err: unknown): Error => toolError(err, 'pg_basebackup', { binDir: o.binDir, conn, doing: 'taking the base backup' });
  const sub = ctx.exec(toolPath('pg_basebackup', o.binDir), ['-D', '-', '-Ft', '-X', 'fetch', '--checkpoint=fast', '--no-password', '-v'], {
    env,
    stdin: 'ignore',
    buffer: { stdout: false, stderr: true },
  });
  removeAfter(sub);
  sub.catch(() => undefined);
  try {
    await Promise.all([passBody(sub.stdout!, out), sub]);
  } catch (err) {
    counted.reject(err);
    throw replicationHint(fail(await sub.catch((e: unknown) => e)));
  }
  const said = String((await sub).stderr);
  const start = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i.exec(said);
  const stop = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i.exec(said);
  if (!start || !stop) {
    const err = new DbflowError(
      `pg_basebackup did not report its start and end points (pg_basebackup -v said: ${said.trim().slice(-400)}).`,
    );
    counted.reject(err);
    throw err;
  }
  Object.assign(position, { start_lsn: start[1], stop_lsn: stop[1], timeline: Number(start[2]) });
  const snap = await knownPoint(ctx, db).catch((err: unknown) => {
    counted.reject(err);
    throw err;
  });
  counted.resolve(snap);
  const point = snap.info.position as { restore_point: string; restore_point_lsn: string; checksum?: string };
  Object.assign(position, {
    restore_point: point.restore_point,
    restore_point_lsn: point.restore_point_lsn,
    ...(point.checksum !== undefined && { checksum: point.checksum }),
  });
  const timeline = Number(start[2]);
  const wal = await fetchWal(ctx, conn, o.binDir, {
    timeline,
    segmentSize: server.segmentSize,
    after: stop[1]!,
    until: point.restore_point_lsn,
  });
  // Every segment from the one after the base backup's last to the one holding the restore point, none missing.
  const seg = (at: bigint): string => segmentName(timeline, at, server.segmentSize);
  const expected: string[] = [];
  for (
    let at = (lsnBytes(stop[1]!) - 1n) / BigInt(server.segmentSize) + 1n;
    at <= (lsnBytes(point.restore_point_lsn) - 1n) / BigInt(server.segmentSize);
    at++
  )
    expected.push(seg(at * BigInt(server.segmentSize)));
  const got = wal.map((f) => f.name);
  if (got.join() !== expected.join())
    throw new DbflowError(
      `pg_receivewal fetched WAL segments ${got.join(', ') || 'none'}, but the restore point needs ${expected.join(', ')}; the backup is incomplete.`,
    );
  position.wal = { first: seg(lsnBytes(start[1]!)), last: expected.at(-1) ?? seg(lsnBytes(stop[1]!) - 1n) };
  await writeMembers(
    out,
    wal.map((f) => ({ name: `pg_wal/${f.name}`, path: f.path })),
  );
  out.end();
  ctx.log.info(
    `base backup from ${start[1]} to ${stop[1]} (timeline ${start[2]}), WAL to restore point ${point.restore_point} at ${point.restore_point_lsn}`,
  );
}

// Under the coordinated snapshot's write barrier: a restore point and a snapshot; the snapshot then counts.
async function knownPoint(ctx: StepContext<BaseBackupWith>, db: DatabaseConfig): Promise<DriverSnapshot> {
  const o = pgOptions(db);
  const deadline = Date.now() + parseDuration(ctx.with.barrier_timeout ?? '30s');
  const p = await participate(ctx, { db }, { restorePointRequired: true });
  try {
    for (let attempt = 1; ; attempt++) {
      const blocked = await p.block(o.lockTimeoutMs);
      if (blocked === undefined) break;
      if (Date.now() >= deadline)
        throw new DbflowError(
          `database "${db.name}": the write barrier for the base backup's counts could not be held within ${ctx.with.barrier_timeout ?? '30s'} (${attempt} tries): ${blocked}.`,
        );
      ctx.log.info(`try ${attempt} could not hold the write barrier (${blocked}); trying again`);
    }
    await p.take(ctx.run.id);
    await p.release();
    return await p.open();
  } catch (err) {
    await p.abort();
    throw err;
  }
}

// pg_basebackup's own refusals (no REPLICATION, max_wal_senders, pg_hba.conf) said as what to change.
function replicationHint(err: Error): Error {
  if (/must be superuser or replication role|max_wal_senders|no pg_hba\.conf entry for replication/i.test(err.message))
    return new DbflowError(
      `${err.message.replace(/\.$/, '')}. A base backup needs a role with REPLICATION (ALTER ROLE … REPLICATION), max_wal_senders ≥ 2 and a "replication" line in pg_hba.conf.`,
      { cause: err },
    );
  return err;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
