// A causal writer across three databases: item i is committed to PostgreSQL db1, then to MariaDB mq, then to PostgreSQL db2.
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import pg from 'pg';

/** The table every participant gets: the writer inserts item i into each, in order. */
export const ITEMS_PG = 'CREATE TABLE items (id bigint PRIMARY KEY, note text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())';
export const ITEMS_MY =
  'CREATE TABLE items (id bigint PRIMARY KEY, note varchar(64) NOT NULL, written_at datetime(6) NOT NULL DEFAULT NOW(6)) ENGINE=InnoDB';

/** Where the writer writes: two PostgreSQL URLs and a mysql2 connection config, each database with an `items` table. */
export interface CausalTargets {
  db1: string;
  mq: mysql.ConnectionOptions;
  db2: string;
}

export interface CausalWriterOptions {
  /** It stops by itself after this long, whatever happens (default 180 s). */
  maxMs?: number;
  /** Registers the final stop (a test's `t.after`). */
  after?: (fn: () => Promise<unknown>) => void;
}

/** A loop of items written db1 → mq → db2, one transaction each, until stopped. */
export interface CausalWriter {
  /** Items committed on all three databases. */
  iterations(): number;
  /** Resolves once at least `n` items are committed on all three (rejects if the writer failed or stopped before). */
  committed(n: number, timeoutMs?: number): Promise<void>;
  /** Starts recording the latency (INSERT to COMMIT done) of every transaction; returns what was recorded since the last mark. */
  mark(): number[];
  /** Why it stopped early (deadline or failure), if it did. */
  stopped(): string | undefined;
  /** Stops the writer; resolves with the items committed on all three, rejects if it had failed. */
  stop(): Promise<number>;
}

// A transaction of item `i` on a PostgreSQL database, in three round trips (so that a barrier can find it in flight).
async function pgItem(c: pg.Client, i: number): Promise<void> {
  await c.query('BEGIN');
  await c.query('INSERT INTO items (id, note) VALUES ($1, $2)', [i, `item ${i}`]);
  await c.query('COMMIT');
}

async function myItem(c: mysql.Connection, i: number): Promise<void> {
  await c.query('START TRANSACTION');
  await c.query('INSERT INTO items (id, note) VALUES (?, ?)', [i, `item ${i}`]);
  await c.query('COMMIT');
}

/** Starts the writer on its own three connections, with no pause between transactions. */
export async function startCausalWriter(targets: CausalTargets, options: CausalWriterOptions = {}): Promise<CausalWriter> {
  const db1 = new pg.Client({ connectionString: targets.db1, connectionTimeoutMillis: 10_000, application_name: 'causal writer' });
  const db2 = new pg.Client({ connectionString: targets.db2, connectionTimeoutMillis: 10_000, application_name: 'causal writer' });
  for (const c of [db1, db2]) c.on('error', () => undefined); // surfaces in the loop's query
  await Promise.all([db1.connect(), db2.connect()]);
  const mq = await mysql.createConnection({ ...targets.mq, multipleStatements: false });
  mq.on('error', () => undefined);

  let count = 0;
  let stopping = false;
  let why: string | undefined;
  let failure: Error | undefined;
  let latencies: number[] | undefined;
  const deadline = setTimeout(() => {
    why ??= `the causal writer's time bound of ${((options.maxMs ?? 180_000) / 1000).toFixed(0)} s was reached`;
    stopping = true;
  }, options.maxMs ?? 180_000);
  deadline.unref();
  const timed = async (write: () => Promise<void>): Promise<void> => {
    const t0 = performance.now();
    await write();
    latencies?.push(performance.now() - t0);
  };
  const loop = (async () => {
    try {
      while (!stopping) {
        const i = count + 1;
        await timed(() => pgItem(db1, i));
        await timed(() => myItem(mq, i));
        await timed(() => pgItem(db2, i));
        count = i;
      }
    } catch (err) {
      if (!stopping) {
        failure = new Error(`the causal writer failed at item ${count + 1}: ${(err as Error).message}`);
        why = failure.message;
      }
    } finally {
      stopping = true;
      clearTimeout(deadline);
      await Promise.all([db1.end().catch(() => undefined), db2.end().catch(() => undefined), mq.end().catch(() => mq.destroy())]);
    }
  })();
  const stop = async (): Promise<number> => {
    stopping = true;
    // A transaction held up by a barrier that is never released must not hang the test: its connections are cut.
    const ended = await Promise.race([loop.then(() => true), sleep(15_000, false, { ref: false })]);
    if (!ended) {
      mq.destroy();
      await Promise.all([db1.end().catch(() => undefined), db2.end().catch(() => undefined)]);
      await loop;
    }
    if (failure) throw failure;
    return count;
  };
  options.after?.(() => stop().catch(() => undefined));
  return {
    iterations: () => count,
    async committed(n, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      while (count < n) {
        if (failure) throw failure;
        if (stopping) throw new Error(`the causal writer stopped after ${count} items, before ${n}${why ? `: ${why}` : ''}`);
        if (Date.now() > until) throw new Error(`the causal writer committed ${count} items in ${timeoutMs} ms, not ${n}`);
        await sleep(5);
      }
    },
    mark() {
      const since = latencies ?? [];
      latencies = [];
      return since;
    },
    stopped: () => why,
    stop,
  };
}

/** The item ids of a database, ascending. */
export async function pgItemIds(db: pg.Pool | pg.Client): Promise<number[]> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM items ORDER BY id');
  return rows.map((r) => Number(r.id));
}

export async function myItemIds(db: mysql.Pool | mysql.Connection): Promise<number[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT id FROM items ORDER BY id');
  return rows.map((r) => Number(r.id));
}

/**
 * What a consistent cut of the writer's databases satisfies: ids(db1) ⊇ ids(mq) ⊇ ids(db2) and
 * |db1| − |db2| ≤ 1. Returns how a set of ids breaks it, or undefined.
 */
export function causalViolation(ids: { db1: readonly number[]; mq: readonly number[]; db2: readonly number[] }): string | undefined {
  const missing = (from: readonly number[], of: readonly number[]): number[] => {
    const have = new Set(from);
    return of.filter((id) => !have.has(id));
  };
  const span = (xs: readonly number[]): string => (xs.length ? `${xs.length} ids, ${xs[0]}..${xs.at(-1)}` : 'no ids');
  const shape = `db1 ${span(ids.db1)}, mq ${span(ids.mq)}, db2 ${span(ids.db2)}`;
  const notInDb1 = missing(ids.db1, ids.mq);
  if (notInDb1.length) return `mq has items db1 lacks (${notInDb1.slice(0, 5).join(', ')}): ${shape}`;
  const notInMq = missing(ids.mq, ids.db2);
  if (notInMq.length) return `db2 has items mq lacks (${notInMq.slice(0, 5).join(', ')}): ${shape}`;
  if (ids.db1.length - ids.db2.length > 1) return `db1 is ${ids.db1.length - ids.db2.length} items ahead of db2: ${shape}`;
  return undefined;
}
