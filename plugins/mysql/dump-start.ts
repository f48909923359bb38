// Starts mariadb-dump under the commit barrier and proves that its transaction reads the snapshot's cut.
import path from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkedStdout, DbflowError, type DriverContext } from '../../src/plugin-api.js';
import type { BinlogPosition, ServerKind } from './barrier.js';
import type { MyOptions } from './options.js';
import { DumpGate, gateable } from './gate.js';
import { HeldOutput, Spool, type DumpOutput } from './spool.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import type { MyConnection } from './url.js';

/** The dump tool. */
export const DUMP_TOOL = 'mariadb-dump';

// The last line of mariadb-dump's fixed header; what it prints after it, it prints inside its transaction.
const HEADER_END = /SET @OLD_SQL_NOTES=/;
const CHANGE_MASTER = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);/m;
const WATCH_LIMIT = 1 << 20;

/** A dump whose transaction has started; its stream waits (or is spooled) until the dump step claims it. */
export interface StartedDump {
  spool: DumpOutput;
  /** The dump's own position, from its header (binlog on), equal to the snapshot's. */
  position?: { file: string; position: number } | undefined;
  /** Resolves once the dump's header proved its cut (binlog on) or its output began; rejects when it could not. */
  proved: Promise<{ file: string; position: number } | undefined>;
  /** Stops the dump if it still runs. */
  stop(): void;
}

/** A dump tool started before the barrier: `begin` lets its transaction start inside the cut. */
export interface PendingDump {
  /**
   * Called under the barrier, after the snapshot's position was read: resolves once the dump's own
   * transaction has started (at `expected`, proved by its header when the binlog is on).
   */
  begin(expected: BinlogPosition): Promise<StartedDump>;
  /** Stops the dump tool. */
  stop(): void;
}

/** Seconds, beyond the connect timeout, that mariadb-dump may take to start and set up its session before the barrier. */
const PREPARE_SLACK_S = 60;

/**
 * Starts mariadb-dump ahead of the barrier when a gate can relay its connection: it connects and
 * sets up its session, and its START TRANSACTION waits at the gate until `begin` (so commits are
 * blocked only for one round trip, not for a program's start). Without a gate, `begin` starts it.
 */
export async function launchDump(
  ctx: DriverContext,
  conn: MyConnection,
  o: MyOptions,
  kind: ServerKind,
  binlogOn: boolean,
): Promise<PendingDump> {
  const gate = gateable(conn) ? await DumpGate.open(ctx.tmpdir, conn) : undefined;
  if (!gate) {
    let dump: StartedDump | undefined;
    return {
      begin: async (expected) => (dump = await startDump(ctx, conn, o, kind, expected)),
      stop: () => dump?.stop(),
    };
  }
  // The gate proves where the dump's transaction began, so its output needs no watching: it stays unread,
  // for the next program of the chain to read directly, as in a shell pipeline.
  const { sub, out, fail } = spawnTool(ctx, conn, gate.clientConnection(), o, kind, binlogOn);
  const output = new HeldOutput(out, spoolFile(ctx), CLAIM_GRACE_MS);
  const stop = (): void => {
    gate.close();
    output.discard();
  };
  try {
    // Nothing is blocked yet: the tool may take its time to start and connect (a busy machine), so this
    // wait has the connection's own timeout plus slack, not dump_start_timeout (the budget with commits blocked).
    const readyMs = (conn.connectTimeoutS + PREPARE_SLACK_S) * 1000;
    // Its stdout is held unread, so the subprocess settles only once that ends: its exit is what says it ended.
    // Discarding the held output then lets it settle, with how it ended.
    let onExit: () => void = () => undefined;
    const ended = new Promise<never>((_, reject) => {
      onExit = () => {
        output.discard();
        sub.stdout?.destroy();
        sub.then(
          () => reject(new DbflowError(`${DUMP_TOOL} ended before it began its transaction.`)),
          (error: unknown) => reject(fail(error)),
        );
      };
    });
    ended.catch(() => undefined);
    sub.once('exit', onExit);
    try {
      await withTimeout(
        Promise.race([gate.waiting, ended]),
        readyMs,
        `${DUMP_TOOL} did not reach its START TRANSACTION within ${readyMs / 1000} s of starting (nothing was blocked yet)`,
      );
    } catch (error) {
      // A relayed connection that breaks is mostly the dump ending: its exit, when it follows, names the cause.
      throw await Promise.race([ended.catch((cause: unknown) => cause), sleep(1000).then(() => error)]);
    } finally {
      // Past the gate, the stream reports how the dump ended.
      sub.off('exit', onExit);
    }
  } catch (error) {
    stop();
    throw error;
  }
  return {
    async begin(position) {
      await withTimeout(
        gate.pass(),
        o.dumpStartTimeoutMs,
        `${DUMP_TOOL} did not start its transaction within ${o.dumpStartTimeoutMs / 1000} s (options.dump_start_timeout); commits were blocked meanwhile, and are free again`,
      );
      output.hold();
      // The server answered its START TRANSACTION while commits were blocked at `position`: that is its cut
      // (and what its header says, with the binlog on; the tests read it back from stored dumps).
      const at =
        binlogOn && kind.flavor === 'mariadb' && position.file !== undefined && position.position !== undefined
          ? { file: position.file, position: position.position }
          : undefined;
      return { spool: output, ...(at && { position: at }), stop, proved: Promise.resolve(at) };
    },
    stop,
  };
}

/**
 * Runs `mariadb-dump --single-transaction` (with `--master-data=2` on MariaDB with binlog on) and
 * resolves once its transaction has started: when its header shows `-- CHANGE MASTER TO …` (whose
 * position must equal `expected`, else the dump fails), or otherwise once it prints anything after
 * its fixed header (it does only after START TRANSACTION WITH CONSISTENT SNAPSHOT). The caller
 * holds the commit barrier until then, so the dump reads the same cut as the snapshot.
 */
export async function startDump(
  ctx: DriverContext,
  conn: MyConnection,
  o: MyOptions,
  kind: ServerKind,
  expected: BinlogPosition,
): Promise<StartedDump> {
  const run = spawnDump(ctx, conn, o, kind, expected.binlog === 'on', { position: expected });
  const timer = setTimeout(
    () =>
      run.fail(
        new DbflowError(
          `${DUMP_TOOL} did not start its transaction within ${o.dumpStartTimeoutMs / 1000} s (options.dump_start_timeout); commits were blocked meanwhile, and are free again.`,
        ),
      ),
    o.dumpStartTimeoutMs,
  );
  try {
    const position = await run.running;
    return { spool: run.spool, ...(position && { position }), stop: run.stop, proved: run.running };
  } catch (error) {
    run.stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

interface DumpRun {
  spool: DumpOutput;
  /** Resolves at the dump's position marker (binlog on) or at its first output after the header. */
  running: Promise<{ file: string; position: number } | undefined>;
  fail: (error: Error) => void;
  stop: () => void;
}

/** How long a started dump's output may wait unread for the dump step before it is spooled to a file. */
const CLAIM_GRACE_MS = 2000;

const spoolFile = (ctx: DriverContext): string => path.join(ctx.tmpdir, `mariadb-dump-${Math.random().toString(36).slice(2)}.sql`);

// mariadb-dump connecting as `tool` (the server, or a gate in front of it); its stdout is not read yet.
function spawnTool(ctx: DriverContext, conn: MyConnection, tool: MyConnection, o: MyOptions, kind: ServerKind, binlogOn: boolean) {
  // MariaDB gives the position of the dump's own snapshot (Binlog_snapshot_*) without a lock of its
  // own; on MySQL, --master-data would make mariadb-dump take FLUSH TABLES WITH READ LOCK itself.
  const binlog = binlogOn && kind.flavor === 'mariadb';
  const connection = toolConnection(ctx, tool);
  const args = [
    connection.arg, // must come first
    '--single-transaction',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--default-character-set=utf8mb4',
    '--hex-blob',
    '--no-tablespaces',
    // No LOCK TABLES … WRITE around each table's rows: a restore of a dump holding them keeps BACKUP STAGE
    // START (and so every backup of that server) waiting for as long as it loads a table.
    '--skip-add-locks',
    ...(binlog ? ['--master-data=2'] : []),
    ...o.excludeTables.map((t) => `--ignore-table=${conn.database}.${t}`),
    conn.database,
  ];
  const fail = (error: unknown): Error => toolError(error, DUMP_TOOL, { binDir: o.binDir, conn });
  const sub = ctx.exec(toolPath(DUMP_TOOL, o.binDir), args, { buffer: { stdout: false, stderr: true }, stdin: 'ignore' });
  connection.removeAfter(sub);
  return { sub, out: checkedStdout(sub, fail), fail, binlog };
}

// mariadb-dump connecting to the server itself: its output is watched for the start of its transaction, and spooled.
function spawnDump(
  ctx: DriverContext,
  conn: MyConnection,
  o: MyOptions,
  kind: ServerKind,
  binlogOn: boolean,
  expected: { position?: BinlogPosition },
): DumpRun {
  const { out, binlog } = spawnTool(ctx, conn, conn, o, kind, binlogOn);

  let seen = '';
  let started: (position?: { file: string; position: number }) => void = () => undefined;
  let failed: (error: Error) => void = () => undefined;
  const running = new Promise<{ file: string; position: number } | undefined>((resolve, reject) => {
    started = resolve;
    failed = reject;
  });
  running.catch(() => undefined);
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
        const want = expected.position;
        if (!want || position.file !== want.file || position.position !== want.position)
          return mismatch(`${position.file}:${position.position}`);
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
        ? `${DUMP_TOOL} did not read the snapshot's cut: the snapshot was taken at binlog ${expected.position?.file}:${expected.position?.position}, the dump's header says ${found}; nothing was published. Run again.`
        : `${DUMP_TOOL}'s output has ${found}, so the start of its transaction cannot be told; nothing was published. Check the "${DUMP_TOOL}" in use (options.bin_dir).`,
    );
  const stream: Readable = pipeline(out, watch, (error) => {
    if (error) failed(error instanceof Error ? error : new Error(String(error)));
  });
  const spool = new Spool(stream, spoolFile(ctx));
  return { spool, running, fail: failed, stop: () => spool.discard() };
}

// `p`, or a DbflowError saying `what` once `ms` have passed.
async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DbflowError(`${what}.`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
