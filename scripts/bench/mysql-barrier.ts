// How long the mysql driver's snapshot blocks commits, under a concurrent writer: the driver is called
// through the public API (builtinRegistry) in a loop while a writer on its own connection commits
// small INSERT + UPDATE transactions; every snapshot records its barrier time in `info.position`.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execa, type Options as ExecaOptions } from 'execa';
import { builtinRegistry, type DatabaseConfig, type DriverContext, type EdgeStats } from '../../src/index.js';
import { myConnect, myDatabaseUrl, myDropScratch, myForgetDir, myIdent, myRegisterDir, myScratchName, withMy } from './mysql-server.js';
import { BenchError } from './util.js';

export interface BarrierOptions {
  snapshots: number;
  /** The writer stops after this long at the latest (and the loop of snapshots with it). */
  maxMs: number;
  log: (s: string) => void;
}

export interface BarrierResult {
  database: string;
  /** `info.position.barrier_ms` of every snapshot, in order. */
  barrierMs: number[];
  /** Wall time of each `driver.snapshot()` call (connect, barrier, dump start, counts). */
  snapshotMs: number[];
  barrierName: string;
  binlog: string;
  /** Writer commits from the first snapshot's start to the last one's release. */
  commits: number;
  measureMs: number;
  /** COMMIT latencies the writer saw during the measurement (ms): the other side of the barrier. */
  commitLatencyMs: number[];
  warnings: string[];
  /** Set when the writer or a snapshot stopped the measurement early. */
  stoppedEarly?: string;
}

// A context like the engine's for one driver call: exec is execa with cancelSignal, a private tmpdir.
async function driverContext(signal: AbortSignal, logs: string[]): Promise<{ ctx: DriverContext; dispose: () => Promise<void> }> {
  const tmpdir = await mkdtemp(path.join(os.tmpdir(), 'dbflow-bench-barrier-'));
  myRegisterDir(tmpdir);
  const log = (level: string) => (message: string) => logs.push(`${level}: ${message}`);
  const unavailable = (what: string) => (): never => {
    throw new BenchError(`bench driver context: ${what} is not available`);
  };
  const ctx: DriverContext = {
    id: 'snapshot',
    stepId: 'snapshot',
    with: {},
    matrix: {},
    run: { id: 'bench-barrier', startedAt: new Date(), pipeline: 'bench_barrier', dir: tmpdir, pipelineDir: process.cwd() },
    signal,
    log: { debug: log('debug'), info: log('info'), warn: log('warn') },
    tmpdir,
    input: Readable.from([]),
    inputPipe: () => undefined,
    inputStats: () => Promise.reject<EdgeStats>(new BenchError('bench driver context: inputStats is not available')),
    chain: [],
    exec(file: string, args: readonly string[], execOptions: ExecaOptions = {}) {
      return execa(file, args, { cancelSignal: signal, forceKillAfterDelay: 2000, ...execOptions });
    },
    lease: unavailable('lease()'),
    resource: unavailable('resource()'),
    outputsOf: unavailable('outputsOf()'),
    database: unavailable('database()'),
    databaseNames: () => [],
    storage: unavailable('storage()'),
    codec: unavailable('codec()'),
    progress: () => undefined,
    report: { database: () => undefined, coordination: () => undefined, artifact: () => undefined, verification: () => undefined },
  };
  const dispose = async (): Promise<void> => {
    await rm(tmpdir, { recursive: true, force: true });
    myForgetDir(tmpdir);
  };
  return { ctx, dispose };
}

const WRITER_SCHEMA = [
  `CREATE TABLE bench_writes (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  written_at datetime(6) NOT NULL,
  account int NOT NULL,
  amount decimal(10,2) NOT NULL,
  note varchar(64) NOT NULL
) ENGINE=InnoDB`,
  'CREATE TABLE bench_accounts (id int NOT NULL PRIMARY KEY, balance decimal(14,2) NOT NULL, writes bigint NOT NULL) ENGINE=InnoDB',
  'INSERT INTO bench_accounts SELECT seq, 1000, 0 FROM seq_1_to_64',
];

interface Writer {
  commits(): number;
  /** Commit latencies recorded since `mark()`. */
  mark(): void;
  latenciesSinceMark(): number[];
  /** Resolves when the writer has stopped (deadline or stop()); rejects with its error. */
  done: Promise<void>;
  stopped(): string | undefined;
  stop(): Promise<void>;
}

/** A writer on its own connection: a loop of small transactions (INSERT a row, UPDATE an account), bounded by `maxMs`. */
async function startWriter(url: string, maxMs: number): Promise<Writer> {
  const c = await myConnect(url);
  let commits = 0;
  let stop = false;
  let why: string | undefined;
  let latencies: number[] | undefined;
  const deadline = performance.now() + maxMs;
  const loop = async (): Promise<void> => {
    try {
      while (!stop) {
        if (performance.now() > deadline) {
          why = `the writer's time bound of ${(maxMs / 1000).toFixed(0)} s was reached`;
          break;
        }
        const account = 1 + (commits % 64);
        await c.query('START TRANSACTION');
        await c.query('INSERT INTO bench_writes (written_at, account, amount, note) VALUES (NOW(6), ?, ?, ?)', [
          account,
          (commits % 1000) / 10,
          `write ${commits}`,
        ]);
        await c.query('UPDATE bench_accounts SET balance = balance + 0.10, writes = writes + 1 WHERE id = ?', [account]);
        const t0 = performance.now();
        await c.query('COMMIT');
        latencies?.push(performance.now() - t0);
        commits++;
      }
    } catch (err) {
      why = `the writer failed: ${(err as Error).message}`;
      throw new BenchError(why);
    } finally {
      await c.end().catch(() => c.destroy());
    }
  };
  const done = loop();
  done.catch(() => undefined);
  return {
    commits: () => commits,
    mark: () => (latencies = []),
    latenciesSinceMark: () => latencies ?? [],
    done,
    stopped: () => why,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

/**
 * Creates a scratch database with the writer's tables, starts the writer, and takes `snapshots`
 * snapshots of that database through the mysql driver (its defaults: checksums on), releasing each
 * at once. The scratch database is dropped at the end.
 */
export async function measureBarrier(o: BarrierOptions): Promise<BarrierResult> {
  const registry = await builtinRegistry();
  const driver = registry.drivers.get('mysql');
  if (!driver) throw new BenchError('no "mysql" driver is registered (plugins/index.ts)');
  const database = myScratchName('barrier');
  const url = myDatabaseUrl(database);
  await withMy(async (c) => {
    await c.query(`CREATE DATABASE ${myIdent(database)}`);
    await c.query(`USE ${myIdent(database)}`);
    for (const s of WRITER_SCHEMA) await c.query(s);
  });
  const db: DatabaseConfig = { name: 'bench', driver: 'mysql', url, options: {} };
  const abort = new AbortController();
  let writer: Writer | undefined;
  try {
    writer = await startWriter(url, o.maxMs);
    // Let the writer get going before the first snapshot.
    const warm = performance.now();
    while (writer.commits() < 20 && !writer.stopped() && performance.now() - warm < 10_000) await new Promise((r) => setTimeout(r, 20));
    const barrierMs: number[] = [];
    const snapshotMs: number[] = [];
    const warnings: string[] = [];
    let barrierName = '';
    let binlog = '';
    const before = writer.commits();
    writer.mark();
    const t0 = performance.now();
    let stoppedEarly: string | undefined;
    for (let i = 0; i < o.snapshots; i++) {
      stoppedEarly = writer.stopped();
      if (stoppedEarly) break;
      const logs: string[] = [];
      const { ctx, dispose } = await driverContext(abort.signal, logs);
      try {
        const s0 = performance.now();
        const snap = await driver.snapshot(ctx, { db });
        snapshotMs.push(performance.now() - s0);
        await snap.release();
        const pos = snap.info.position;
        const ms = Number(pos.barrier_ms);
        if (!Number.isFinite(ms))
          throw new BenchError(`snapshot #${i + 1}: info.position.barrier_ms is ${JSON.stringify(pos.barrier_ms)}, not a number`);
        barrierMs.push(ms);
        barrierName = typeof pos.barrier === 'string' ? pos.barrier : '';
        binlog = typeof pos.binlog === 'string' ? pos.binlog : '';
        warnings.push(...logs.filter((l) => l.startsWith('warn:')));
      } finally {
        await dispose();
      }
      if ((i + 1) % 10 === 0) o.log(`  snapshots under the writer: ${i + 1}/${o.snapshots}, ${writer.commits() - before} commits so far`);
    }
    const measureMs = performance.now() - t0;
    const commits = writer.commits() - before;
    const commitLatencyMs = writer.latenciesSinceMark();
    await writer.stop();
    if (!barrierMs.length) throw new BenchError(`no snapshot was taken: ${stoppedEarly ?? 'unknown reason'}`);
    return {
      database,
      barrierMs,
      snapshotMs,
      barrierName,
      binlog,
      commits,
      measureMs,
      commitLatencyMs,
      warnings: [...new Set(warnings)],
      ...(stoppedEarly && { stoppedEarly }),
    };
  } finally {
    abort.abort();
    await writer?.stop().catch(() => undefined);
    await myDropScratch(database);
  }
}
