// Starts mariadb-dump under the commit barrier and proves that its transaction reads the snapshot's cut.
import path from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { checkedStdout, DbflowError, type DriverContext } from '../../src/index.js';
import type { BinlogPosition, ServerKind } from './barrier.js';
import type { MyOptions } from './options.js';
import { Spool } from './spool.js';
import { defaultsFileArg, toolEnv, toolError, toolPath } from './tools.js';
import type { MyConnection } from './url.js';

/** The dump tool. */
export const DUMP_TOOL = 'mariadb-dump';

// The last line of mariadb-dump's fixed header; what it prints after it, it prints inside its transaction.
const HEADER_END = /SET @OLD_SQL_NOTES=/;
const CHANGE_MASTER = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m;
const WATCH_LIMIT = 1 << 20;

/** A dump whose transaction has started; its stream is spooled until the dump step claims it. */
export interface StartedDump {
  spool: Spool;
  /** The dump's own position, from its header (binlog on), equal to the snapshot's. */
  position?: { file: string; position: number };
  /** Stops the dump if it still runs. */
  stop(): void;
}

/**
 * Runs `mariadb-dump --single-transaction` (with `--master-data=2` on MariaDB with binlog on) and
 * resolves once its transaction has started: when its header shows `-- CHANGE MASTER TO …` (whose
 * position must equal `expected`, else the dump fails), or otherwise once it prints anything after
 * its fixed header (it does only after START TRANSACTION WITH CONSISTENT SNAPSHOT). The caller
 * holds the commit barrier until then, so the dump reads the same cut as the snapshot.
 */
export async function startDump(ctx: DriverContext, conn: MyConnection, o: MyOptions, kind: ServerKind, expected: BinlogPosition): Promise<StartedDump> {
  // MariaDB gives the position of the dump's own snapshot (Binlog_snapshot_*) without a lock of its
  // own; on MySQL, --master-data would make mariadb-dump take FLUSH TABLES WITH READ LOCK itself.
  const binlog = expected.binlog === 'on' && kind.flavor === 'mariadb';
  const args = [
    defaultsFileArg(ctx, conn), // must come first
    '--single-transaction',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--default-character-set=utf8mb4',
    '--hex-blob',
    '--no-tablespaces',
    ...(binlog ? ['--master-data=2'] : []),
    ...o.excludeTables.map((t) => `--ignore-table=${conn.database}.${t}`),
    conn.database,
  ];
  const fail = (error: unknown): Error => toolError(error, DUMP_TOOL, { binDir: o.binDir, conn });
  const sub = ctx.exec(toolPath(DUMP_TOOL, o.binDir), args, { ...toolEnv(conn), buffer: { stdout: false, stderr: true }, stdin: 'ignore' });
  const out = checkedStdout(sub, fail);

  let seen = '';
  let started: (position?: { file: string; position: number }) => void = () => undefined;
  let failed: (error: Error) => void = () => undefined;
  const running = new Promise<{ file: string; position: number } | undefined>((resolve, reject) => {
    started = resolve;
    failed = reject;
  });
  let watching = true;
  const watch = new Transform({
    readableHighWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, done) {
      if (watching) {
        seen += chunk.toString('latin1');
        const error = inspect();
        if (error) return done(error);
      }
      done(null, chunk);
    },
    flush(done) {
      // The dump ended (exit 0) before a marker: it ran whole inside the barrier, or it lacks its header.
      if (watching && binlog) return done(mismatch('no "-- CHANGE MASTER TO" line'));
      if (watching) started();
      done();
    },
  });
  const inspect = (): Error | undefined => {
    if (binlog) {
      const m = CHANGE_MASTER.exec(seen);
      if (m) {
        watching = false;
        seen = '';
        const position = { file: m[1]!, position: Number(m[2]) };
        if (position.file !== expected.file || position.position !== expected.position) return mismatch(`${position.file}:${position.position}`);
        started(position);
      }
    } else {
      const lines = seen.split('\n');
      const end = lines.findIndex((l) => HEADER_END.test(l));
      if (end >= 0 && lines.slice(end + 1, -1).some((l) => l.trim() !== '')) {
        watching = false;
        seen = '';
        started();
      }
    }
    if (watching && seen.length > WATCH_LIMIT) return mismatch('no recognizable header');
    return undefined;
  };
  const mismatch = (found: string): Error =>
    new DbflowError(
      binlog
        ? `${DUMP_TOOL} did not read the snapshot's cut: the snapshot was taken at binlog ${expected.file}:${expected.position}, the dump's header says ${found}; nothing was published. Run again.`
        : `${DUMP_TOOL}'s output has ${found}, so the start of its transaction cannot be told; nothing was published. Check the "${DUMP_TOOL}" in use (options.bin_dir).`,
    );
  const stream: Readable = pipeline(out, watch, (error) => {
    if (error) failed(error instanceof Error ? error : new Error(String(error)));
  });
  const spool = new Spool(stream, path.join(ctx.tmpdir, `mariadb-dump-${Math.random().toString(36).slice(2)}.sql`));
  const stop = (): void => spool.discard();
  const timer = setTimeout(
    () => failed(new DbflowError(`${DUMP_TOOL} did not start its transaction within ${o.dumpStartTimeoutMs / 1000} s (options.dump_start_timeout); commits were blocked meanwhile, and are free again.`)),
    o.dumpStartTimeoutMs,
  );
  try {
    const position = await running;
    return { spool, ...(position && { position }), stop };
  } catch (error) {
    stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
