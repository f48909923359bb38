// A writer that commits continuously (inserts, updates and deletes) and keeps its own log of what committed, so a
// test can say exactly which state a database must hold after recovery to any point: the commits up to it, no more.
import pg from 'pg';
import { withPassword } from './postgres.js';

/** One transaction the writer committed, in commit order. */
export interface Commit {
  /** 1, 2, 3 … in the order of the writer's commits (one connection: the order of their commit records). */
  seq: number;
  /** The transaction id (`pg_current_xact_id()`), as text. */
  xid: string;
  /** The event row it inserted. */
  inserted: number;
  /** The event row it deleted, if any. */
  deleted?: number;
  /** The counter row it incremented. */
  counter: number;
  /**
   * The server's commit time in microseconds since the epoch (`pg_xact_commit_timestamp`, which needs
   * `track_commit_timestamp = on`), once asked for: a Date's milliseconds would misplace commits near a target.
   */
  committedMicros?: bigint;
}

/** What the writer's tables hold: event ids, and each counter's value and last writer. */
export interface WriterState {
  events: number[];
  counters: Record<number, { n: number; lastSeq: number }>;
}

/** A running writer. */
export interface PgWriter {
  /** The commits so far. */
  commits(): readonly Commit[];
  /** Runs `fn` on the writer's connection between two of its transactions; resolves with its result and how many committed before. */
  between<T>(fn: (client: pg.Client) => Promise<T>): Promise<{ result: T; committedBefore: number }>;
  /** Stops after the transaction in progress (rolled back, never logged, if it did not commit); resolves with every commit. */
  stop(): Promise<Commit[]>;
}

const COUNTERS = 10;

/** Creates the writer's tables in the database at `url` (dropping earlier ones). */
export async function createWriterTables(client: pg.Client): Promise<void> {
  await client.query(`
    DROP TABLE IF EXISTS writer_events, writer_counters;
    CREATE TABLE writer_events (id bigint PRIMARY KEY, seq bigint NOT NULL, note text NOT NULL);
    CREATE TABLE writer_counters (id int PRIMARY KEY, n bigint NOT NULL, last_seq bigint NOT NULL);
    INSERT INTO writer_counters SELECT g, 0, 0 FROM generate_series(0, ${COUNTERS - 1}) g;
  `);
}

/**
 * Starts committing transactions on the database at `url` (its tables made with createWriterTables), one after
 * another on one connection, `pauseMs` apart: each inserts an event (its note `padBytes` long, for WAL volume), increments a counter and, every fifth, deletes
 * the event three before it. Only what committed is logged; a failed commit stops the writer (stop() rejects).
 */
export async function startWriter(
  url: string,
  options: { password?: string; pauseMs?: number; padBytes?: number; holdMs?: number } = {},
): Promise<PgWriter> {
  const client = new pg.Client({ connectionString: withPassword(url, options.password) });
  await client.connect();
  const log: Commit[] = [];
  let stopping = false;
  const hooks: (() => Promise<void>)[] = [];
  const loop = (async () => {
    try {
      for (let seq = 1; !stopping; seq++) {
        while (hooks.length) await hooks.shift()!();
        const counter = seq % COUNTERS;
        const deleted = seq % 5 === 0 && seq > 3 ? seq - 3 : undefined;
        await client.query('BEGIN');
        const { rows } = await client.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
        await client.query('INSERT INTO writer_events VALUES ($1, $1, $2)', [seq, `event ${seq} `.padEnd(options.padBytes ?? 0, 'x')]);
        // Between its two writes the transaction holds the first table's lock (holdMs widens that window).
        if (options.holdMs) await new Promise((r) => setTimeout(r, options.holdMs));
        await client.query('UPDATE writer_counters SET n = n + 1, last_seq = $1 WHERE id = $2', [seq, counter]);
        if (deleted !== undefined) await client.query('DELETE FROM writer_events WHERE id = $1', [deleted]);
        await client.query('COMMIT');
        log.push({ seq, xid: rows[0]!.xid, inserted: seq, counter, ...(deleted !== undefined && { deleted }) });
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return {
    commits: () => log,
    between: (fn) =>
      new Promise((resolve, reject) => {
        hooks.push(async () => {
          const committedBefore = log.length;
          await fn(client).then((result) => resolve({ result, committedBefore }), reject);
        });
      }),
    async stop() {
      stopping = true;
      await loop;
      return log;
    },
  };
}

/** Fills in each commit's `committedAt` from the server at `url` (which must have `track_commit_timestamp = on`). */
export async function commitTimes(url: string, commits: Commit[], password?: string): Promise<void> {
  const client = new pg.Client({ connectionString: withPassword(url, password) });
  await client.connect();
  try {
    const { rows } = await client.query<{ xid: string; us: string | null }>(
      `SELECT x AS xid, (extract(epoch FROM pg_xact_commit_timestamp(x::xid)) * 1000000)::bigint::text AS us
         FROM unnest($1::text[]) x`,
      [commits.map((c) => c.xid)],
    );
    const at = new Map(rows.map((r) => [r.xid, r.us]));
    for (const c of commits) {
      const us = at.get(c.xid);
      if (!us) throw new Error(`no commit time for transaction ${c.xid}: is track_commit_timestamp on?`);
      c.committedMicros = BigInt(us);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The state after the first `count` commits. */
export function stateAfter(commits: readonly Commit[], count: number): WriterState {
  const events = new Set<number>();
  const counters: WriterState['counters'] = {};
  for (let i = 0; i < COUNTERS; i++) counters[i] = { n: 0, lastSeq: 0 };
  for (const c of commits.slice(0, count)) {
    events.add(c.inserted);
    if (c.deleted !== undefined) events.delete(c.deleted);
    counters[c.counter] = { n: counters[c.counter]!.n + 1, lastSeq: c.seq };
  }
  return { events: [...events].sort((a, b) => a - b), counters };
}

/** How many commits recovery to `target` keeps: those whose commit time is at or before it (commitTimes first). */
export function commitsUpTo(commits: readonly Commit[], target: Date): number {
  const limit = BigInt(target.getTime()) * 1000n;
  return commits.filter((c) => {
    if (c.committedMicros === undefined) throw new Error('commit times are unknown: call commitTimes() first');
    return c.committedMicros <= limit;
  }).length;
}

/** What the writer's tables hold in the database at `url`. */
export async function stateOf(url: string, password?: string): Promise<WriterState> {
  const client = new pg.Client({ connectionString: withPassword(url, password) });
  await client.connect();
  try {
    const events = await client.query<{ id: string }>('SELECT id FROM writer_events ORDER BY id');
    const counters = await client.query<{ id: number; n: string; last_seq: string }>('SELECT id, n, last_seq FROM writer_counters');
    return {
      events: events.rows.map((r) => Number(r.id)),
      counters: Object.fromEntries(counters.rows.map((r) => [r.id, { n: Number(r.n), lastSeq: Number(r.last_seq) }])),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
