// The `mariabackup` step: a MariaDB physical base backup streamed as mariadb-backup's xbstream, with row counts at the point it ends at.
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Connection } from 'mysql2/promise';
import { DbflowError, defineStep, type DriverSnapshot, type StepContext, type TableCounts } from '../../src/plugin-api.js';
import { readPosition, snapshotPosition, tryBarrier, type Barrier, type BinlogPosition, type ServerKind } from './barrier.js';
import { schemeFor } from './checksum.js';
import { connect, PINNED_SETTINGS, queryError } from './connect.js';
import { countTables, isNonTransactional, tablesInScope } from './counts.js';
import { mariabackupChecks } from './mariabackup-checks.js';
import { MARIABACKUP_FORMAT } from './mariabackup-format.js';
import { myOptions, type MyOptions } from './options.js';
import { toolConnection, toolError, toolPath, toolVersion } from './tools.js';
import { parseMyUrl, type MyConnection } from './url.js';

interface MariabackupWith {
  database: string;
}

const TOOL = 'mariadb-backup';
// The counts' lock: FLUSH TABLES WITH READ LOCK, because BACKUP STAGE is mariadb-backup's (one session at a time).
const COUNTS_LOCK = 'FLUSH TABLES WITH READ LOCK';
// What mariadb-backup prints at its end: the binlog position (and GTID) read under its BLOCK_COMMIT.
const END_POSITION = /binlog position: filename '([^']+)', position '(\d+)'(?:, GTID of the last change '([^']*)')?/;

/*
 * How the counts are exact. mariadb-backup ends under its own BACKUP STAGE BLOCK_COMMIT: the prepared files hold
 * exactly the commits up to the binlog position it reads there (and prints). Only one session may be in BACKUP
 * STAGE, so the counts cannot take that lock themselves; FLUSH TABLES WITH READ LOCK is compatible with it. When
 * mariadb-backup says it enters BLOCK_DDL (the stage before BLOCK_COMMIT), the step stops reading its stream (so
 * that it waits, its stage unfinished), takes FTWRL, opens a consistent snapshot and reads the binlog position
 * under it, then lets the stream flow again, and holds FTWRL until mariadb-backup has unlocked. With the binary
 * log on, MariaDB commits in binlog order and a consistent snapshot has a binlog position: when the snapshot's
 * position equals the one the backup ends at, no transaction committed between the two cuts, so the snapshot
 * counts what the restore holds. That equality is checked, not assumed: a run where it fails (FTWRL came too late)
 * fails and says so. Commits wait only from FTWRL to mariadb-backup's end (recorded as barrier_ms).
 */
export const mariabackupStep = defineStep<MariabackupWith>({
  uses: 'mariabackup',
  kind: 'source',
  description: 'Stream a MariaDB physical base backup (mariadb-backup --stream=xbstream) and count rows at the binlog position it ends at.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['database'],
    properties: {
      database: {
        type: 'string',
        description:
          'A name from databases: (driver mysql, a MariaDB server on this machine): its server is backed up whole; its tables are counted.',
      },
    },
  },
  outputs: {
    type: 'object',
    properties: { database: { type: 'string' }, format: { type: 'string' }, extension: { type: 'string' }, position: { type: 'object' } },
  },
  async run(ctx) {
    const { database } = ctx.with;
    const { config } = ctx.database(database);
    if (config.driver !== 'mysql')
      throw new DbflowError(
        `step "${ctx.id}": database "${database}" uses driver "${config.driver}"; mariabackup takes MariaDB base backups (driver: mysql).`,
      );
    const conn = parseMyUrl(config.url, config.password);
    const o = myOptions(config);
    const what = `database "${database}"`;
    const control = await connect(conn, what);
    let snap: Connection | undefined;
    let kind: ServerKind;
    let tool: string;
    try {
      kind = await mariabackupChecks(control, conn, what);
      tool = `${TOOL} ${await toolVersion(ctx, TOOL, o.binDir)}`;
      snap = await connect(conn, what);
      for (const s of PINNED_SETTINGS) await snap.query(s);
      await snap.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    } catch (err) {
      control.destroy();
      snap?.destroy();
      throw err instanceof DbflowError ? err : queryError(err, `${what}: the base backup`);
    }
    const scheme = o.checksums ? schemeFor(kind) : undefined;
    const position: Record<string, unknown> = {
      flavor: kind.flavor,
      server_version: kind.version,
      // What the counts were taken of, so that a restore without the pipeline counts the same.
      database_name: conn.database,
      user: conn.user,
      backup_tool: tool,
      barrier: COUNTS_LOCK,
      ...(scheme && { checksum: scheme }),
    };
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    const info: DriverSnapshot['info'] = { driver: 'mysql', serverVersion: kind.version, position, tables: {}, takenAt: '' };
    const c = snap;
    const backup = streamBackup(ctx, { conn, o, kind, control, snap: c, position }, out);
    backup.catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
    const counted = backup.then(async () => {
      Object.assign(info.tables, await countIn(ctx, c, conn, o, scheme));
      info.takenAt = String(position.taken_at);
    });
    counted.catch(() => undefined);
    let released = false;
    const held: DriverSnapshot = {
      info,
      counted,
      release: async () => {
        if (released) return;
        released = true;
        await counted.catch(() => undefined);
        await c.query('COMMIT').catch(() => undefined);
        await c.end().catch(() => c.destroy());
      },
    };
    // rowcount-check reads the counts from this lease, as from a snapshot step's.
    ctx.lease(new Map([[database, held]]), async (m) => {
      for (const s of m.values()) await s.release();
    });
    const final = counted.then(() => {
      ctx.report.database(database, info);
      const rows = Object.values(info.tables).reduce((n, t) => n + t.rows, 0);
      ctx.log.info(
        `${database}: ${Object.keys(info.tables).length} tables, ${rows} rows at binlog ${String(position.file)}:${String(position.position)}`,
      );
      return { position };
    });
    return { output: out, outputs: { database, format: MARIABACKUP_FORMAT, extension: '.xbstream', position }, final };
  },
});

interface Source {
  conn: MyConnection;
  o: MyOptions;
  kind: ServerKind;
  control: Connection;
  snap: Connection;
  position: Record<string, unknown>;
}

// mariadb-backup's stream into `out`, the counts' snapshot taken at its end; resolves once both agree on the binlog position.
async function streamBackup(ctx: StepContext<MariabackupWith>, s: Source, out: PassThrough): Promise<void> {
  // Its own folders: --target-dir (only its small metadata files land there when streaming) and --tmpdir.
  const work = mkdtempSync(path.join(ctx.tmpdir, 'mariabackup-'));
  const target = path.join(work, 'target');
  const tmp = path.join(work, 'tmp');
  mkdirSync(tmp);
  const { arg, removeAfter } = toolConnection(ctx, s.conn);
  // --defaults-file, not -extra-: the server's own option files (datadir, InnoDB paths) are read from the server instead.
  const defaults = arg.replace('--defaults-extra-file=', '--defaults-file=');
  const sub = ctx.exec(
    toolPath(TOOL, s.o.binDir),
    [defaults, '--backup', '--stream=xbstream', `--target-dir=${target}`, `--tmpdir=${tmp}`],
    {
      stdin: 'ignore',
      buffer: { stdout: false, stderr: false },
    },
  );
  removeAfter(sub);
  sub.catch(() => undefined);
  const stdout = sub.stdout as Readable;
  stdout.pipe(out, { end: false });
  let point: Promise<BinlogPosition> | undefined;
  let barrier: Barrier | undefined;
  const unlock = async (): Promise<void> => {
    await point?.catch(() => undefined);
    const ms = await barrier?.release();
    if (ms !== undefined) s.position.barrier_ms = ms;
  };
  let pending = '';
  const log = { last: [] as string[], end: undefined as RegExpExecArray | undefined };
  sub.stderr!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      log.last = [...log.last.slice(-2), line.trim()];
      log.end ??= END_POSITION.exec(line) ?? undefined;
      if (!point && /Started BACKUP STAGE BLOCK_DDL|Executing FLUSH TABLES WITH READ LOCK/.test(line)) {
        // mariadb-backup waits on a full pipe while the lock is taken: its BLOCK_COMMIT comes after ours.
        stdout.unpipe(out);
        point = takePoint(ctx, s, (b) => (barrier = b)).finally(() => stdout.pipe(out, { end: false }));
        // A lock that cannot be had fails the backup: mariadb-backup, waiting on its stream, is stopped.
        point.catch(() => sub.kill());
      }
      if (/All tables unlocked/.test(line)) void unlock();
    }
  });
  const fail = (err: unknown): Error => toolError(err, TOOL, { binDir: s.o.binDir, conn: s.conn, doing: 'taking the base backup' });
  try {
    await Promise.all([sub, new Promise((resolve, reject) => stdout.once('end', resolve).once('error', reject))]);
  } catch (err) {
    // The counts' lock failing first is the cause (mariadb-backup was stopped for it).
    const first = point
      ? await point.then(
          () => undefined,
          (e: unknown) => e,
        )
      : undefined;
    throw first instanceof DbflowError ? first : fail(err);
  } finally {
    await unlock();
    // The lock's connection is done with: left open, it would keep the process alive.
    await s.control.end().catch(() => s.control.destroy());
  }
  const said = log.last.join(' / ');
  if (!point) throw new DbflowError(`${TOOL} did not say when it locked the server (its log ends: ${said})`);
  const taken = await point;
  const end = log.end;
  if (!end) throw new DbflowError(`${TOOL} did not report the binlog position its backup ends at (its log ends: ${said})`);
  const ends = { file: end[1]!, position: Number(end[2]), gtid: end[3] ?? '' };
  if (ends.file !== taken.file || ends.position !== taken.position)
    throw new DbflowError(
      `database "${ctx.with.database}": the backup ends at binlog ${ends.file}:${ends.position}, but the counts' snapshot is at ${taken.file}:${taken.position}: ${COUNTS_LOCK} came after mariadb-backup had unlocked (a long statement delayed it). Nothing was published: run again.`,
    );
  Object.assign(s.position, { binlog: 'on', file: ends.file, position: ends.position, ...(ends.gtid && { gtid: ends.gtid }) });
  out.end();
  ctx.log.info(
    `base backup ends at binlog ${ends.file}:${ends.position}${ends.gtid ? ` (GTID ${ends.gtid})` : ''}; commits waited ${String(s.position.barrier_ms)} ms`,
  );
}

// Under FTWRL: a consistent snapshot and the binlog position it stands at (the snapshot's own, checked against the server's).
async function takePoint(ctx: StepContext<MariabackupWith>, s: Source, held: (b: Barrier) => void): Promise<BinlogPosition> {
  const name = ctx.with.database;
  try {
    const got = await tryBarrier(s.control, { ...s.kind, flavor: 'mysql' }, name, s.o.lockWaitTimeoutS * 1000);
    if ('blocked' in got)
      throw new DbflowError(
        `database "${name}": ${COUNTS_LOCK} for the base backup's counts was not granted within ${s.o.lockWaitTimeoutS} s (options.lock_wait_timeout): ${got.blocked}.`,
      );
    held(got);
    const [, read] = await Promise.all([
      s.snap.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY'),
      readPosition(s.control, s.kind),
    ]);
    const own = await snapshotPosition(s.snap);
    if (read.binlog !== 'on' || !own || own.file !== read.file || own.position !== read.position)
      throw new DbflowError(`database "${name}": the counts' snapshot is not at the binlog position read under ${COUNTS_LOCK}; run again.`);
    s.position.taken_at = new Date().toISOString();
    return read;
  } catch (err) {
    throw err instanceof DbflowError ? err : queryError(err, `database "${name}": the counts' snapshot`);
  }
}

// The tables of the database, counted (and checksummed) in the snapshot taken at the backup's end.
async function countIn(
  ctx: StepContext<MariabackupWith>,
  snap: Connection,
  conn: MyConnection,
  o: MyOptions,
  scheme: ReturnType<typeof schemeFor> | undefined,
): Promise<TableCounts> {
  try {
    const tables = await tablesInScope(snap, conn.database, o.excludeTables);
    const loose = tables.filter(isNonTransactional);
    if (loose.length)
      ctx.log.warn(
        `${ctx.with.database}: ${loose.map((t) => `${t.name} (${t.engine})`).join(', ')} not transactional: the snapshot does not cover them, and their counts may differ from the backup's. Convert to InnoDB for exact backups.`,
      );
    return await countTables(snap, conn.database, tables, scheme, ctx.signal);
  } catch (err) {
    throw err instanceof DbflowError ? err : queryError(err, `database "${ctx.with.database}": counting at the backup's end`);
  }
}
