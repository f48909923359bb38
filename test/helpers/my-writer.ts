// A MariaDB writer that commits continuously (inserts, updates and deletes) on one connection and logs each commit's
// GTID, and what the server's binary log says of each transaction's time: so a test can say exactly which state a
// database must hold after a replay to any point.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import { connectionOptions } from './mysql.js';
import { stateAfter, type Commit, type WriterState } from './pg-writer.js';

const COUNTERS = 10;

/** A running writer; commits carry their GTID in `xid`. */
export interface MyWriter {
  commits(): readonly Commit[];
  /** Runs `fn` between two of the writer's transactions; resolves with its result and how many committed before. */
  between<T>(fn: (c: mysql.Connection) => Promise<T>): Promise<{ result: T; committedBefore: number }>;
  stop(): Promise<Commit[]>;
}

/** Creates the writer's tables in the database at `url`. */
export async function createMyWriterTables(url: string): Promise<void> {
  const c = await mysql.createConnection({ ...connectionOptions(url), multipleStatements: true });
  try {
    await c.query(`CREATE TABLE writer_events (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, note TEXT NOT NULL);
      CREATE TABLE writer_counters (id INT PRIMARY KEY, n BIGINT NOT NULL, last_seq BIGINT NOT NULL);
      INSERT INTO writer_counters SELECT seq, 0, 0 FROM seq_0_to_${COUNTERS - 1};`);
  } finally {
    await c.end();
  }
}

/** Starts committing on the database at `url` (its tables made with createMyWriterTables), `pauseMs` apart. */
export async function startMyWriter(url: string, options: { pauseMs?: number } = {}): Promise<MyWriter> {
  const c = await mysql.createConnection(connectionOptions(url));
  const log: Commit[] = [];
  let stopping = false;
  const hooks: (() => Promise<void>)[] = [];
  const loop = (async () => {
    try {
      for (let seq = 1; !stopping; seq++) {
        while (hooks.length) await hooks.shift()!();
        const counter = seq % COUNTERS;
        const deleted = seq % 5 === 0 && seq > 3 ? seq - 3 : undefined;
        await c.query('BEGIN');
        await c.query('INSERT INTO writer_events VALUES (?, ?, ?)', [seq, seq, `event ${seq}`]);
        await c.query('UPDATE writer_counters SET n = n + 1, last_seq = ? WHERE id = ?', [seq, counter]);
        if (deleted !== undefined) await c.query('DELETE FROM writer_events WHERE id = ?', [deleted]);
        await c.query('COMMIT');
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@last_gtid AS g');
        log.push({ seq, xid: String(rows[0]!.g), inserted: seq, counter, ...(deleted !== undefined && { deleted }) });
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  return {
    commits: () => log,
    between: (fn) =>
      new Promise((resolve, reject) => {
        hooks.push(async () => {
          const committedBefore = log.length;
          await fn(c).then((result) => resolve({ result, committedBefore }), reject);
        });
      }),
    async stop() {
      stopping = true;
      await loop;
      return log;
    },
  };
}

/** What the writer's tables hold in the database at `url`. */
export async function myStateOf(url: string): Promise<WriterState> {
  const c = await mysql.createConnection(connectionOptions(url));
  try {
    const [events] = await c.query<mysql.RowDataPacket[]>('SELECT id FROM writer_events ORDER BY id');
    const [counters] = await c.query<mysql.RowDataPacket[]>('SELECT id, n, last_seq FROM writer_counters');
    return {
      events: events.map((r) => Number(r.id)),
      counters: Object.fromEntries(counters.map((r) => [Number(r.id), { n: Number(r.n), lastSeq: Number(r.last_seq) }])),
    };
  } finally {
    await c.end();
  }
}

/**
 * Each transaction's latest event time in the server's binary log (`<data>/binlog.*`, read with mariadb-binlog), by
 * GTID, in seconds since the epoch: a replay that stops at the first event at or after a second keeps exactly the
 * transactions whose every event came before it.
 */
export async function binlogTimes(data: string): Promise<Map<string, number>> {
  const files = readdirSync(data)
    .filter((f) => /^binlog\.\d{6}$/.test(f))
    .sort()
    .map((f) => path.join(data, f));
  const r = await execa('mariadb-binlog', ['--no-defaults', ...files], { env: { TZ: 'UTC' } });
  const times = new Map<string, number>();
  let gtid: string | undefined;
  for (const line of r.stdout.split('\n')) {
    const head = /^#(\d{2})(\d{2})(\d{2}) +(\d{1,2}):(\d{2}):(\d{2}) server id/.exec(line);
    if (!head) continue;
    const [, yy, mo, dd, hh, mi, ss] = head;
    const at = Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss)) / 1000;
    const g = /\tGTID (\d+-\d+-\d+)/.exec(line);
    if (g) gtid = g[1];
    if (gtid) times.set(gtid, Math.max(times.get(gtid) ?? 0, at));
  }
  return times;
}

/**
 * Restores (with `restore`, given a target's flags, resolving with the writer's state there) to `seconds` random
 * seconds between the first tenth of the commits and the last, to the binlog `position` taken between two commits,
 * to a GTID (included) and to the end of the archive; each must hold exactly the commits up to its target.
 */
export async function assertBinlogTargets(
  t: Pick<TestContext, 'diagnostic'>,
  commits: readonly Commit[],
  times: ReadonlyMap<string, number>,
  position: { result: string; committedBefore: number },
  restore: (...target: string[]) => Promise<WriterState>,
  seconds = 3,
): Promise<void> {
  // A replay to a second keeps the transactions whose events all came before it.
  const committed = commits.map((c) => times.get(c.xid)).filter((x): x is number => x !== undefined);
  assert.equal(committed.length, commits.length, 'every commit is in the binary log');
  const first = committed[Math.floor(commits.length / 10)]!;
  const last = committed.at(-1)!;
  for (let i = 0; i < seconds; i++) {
    const second = first + 1 + Math.floor(Math.random() * (last - first));
    const time = new Date(second * 1000).toISOString();
    const kept = committed.filter((x) => x < second).length;
    const got = await restore('--to-time', time);
    const applied = Object.values(got.counters).reduce((sum, c) => sum + c.n, 0);
    t.diagnostic(`to ${time}: ${kept} of ${commits.length} commits expected, ${applied} restored`);
    assert.deepEqual(got, stateAfter(commits, kept), `replayed to ${time}: ${kept} commits`);
  }
  assert.deepEqual(await restore('--to-position', position.result), stateAfter(commits, position.committedBefore), `to ${position.result}`);
  const pick = Math.floor(commits.length * 0.6);
  assert.deepEqual(
    await restore('--to-gtid', commits[pick]!.xid),
    stateAfter(commits, pick + 1),
    `to GTID ${commits[pick]!.xid}, included`,
  );
  assert.deepEqual(await restore('--latest'), stateAfter(commits, commits.length), 'to the end of the archive');
}
