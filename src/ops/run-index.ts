// An index of the run records (SQLite, <state-dir>/runs-index.sqlite): pages and metrics query it instead of reading every result.json.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readRunJson, runOwner } from '../engine/run-record.js';
import { processAlive } from '../engine/process-alive.js';
import { isVerifiedBackup, readFinishedRuns, readResult, type FinishedRun } from './run-results.js';

/** One run as the index holds it: finished ones with their result, others as running (or killed, once their process is gone). */
export interface IndexedRun {
  runId: string;
  pipeline: string;
  status: string;
  startedAt: number;
  finishedAt: number | null;
  durationMs: number | null;
}

/** Filters of a run listing. */
export interface RunFilter {
  pipeline?: string;
  status?: string;
  /** Runs started at or after / before these times (ms). */
  since?: number;
  until?: number;
  limit?: number;
  offset?: number;
}

const INDEX_NAME = 'runs-index.sqlite';
const SCHEMA_VERSION = 1;

/** The index of one state folder; `sync()` brings it up to date with the records (only what changed is read). */
export class RunIndex {
  private readonly db: Database.Database;

  constructor(private readonly stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.db = new Database(path.join(stateDir, INDEX_NAME));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    if (this.db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
      this.db.exec(`DROP TABLE IF EXISTS runs;
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL, started_at INTEGER NOT NULL,
          finished_at INTEGER, duration_ms INTEGER, finished INTEGER NOT NULL, result TEXT);
        CREATE INDEX runs_pipeline ON runs (pipeline, started_at);
        CREATE INDEX runs_status ON runs (status, started_at);
        CREATE INDEX runs_started ON runs (started_at);`);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
  }

  /** Reads the records the index does not hold as finished: new runs, and runs that were still going. Removed records leave it. */
  sync(): void {
    const root = path.join(this.stateDir, 'runs');
    const ids = existsSync(root) ? readdirSync(root) : [];
    const finished = new Set(this.db.prepare('SELECT run_id FROM runs WHERE finished = 1').pluck().all() as string[]);
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO runs (run_id, pipeline, status, started_at, finished_at, duration_ms, finished, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const rows: unknown[][] = [];
    const present = new Set(ids);
    for (const id of ids) {
      if (finished.has(id)) continue;
      const run = readResult(readRunJson(this.stateDir, id, 'result.json'), id);
      if (run) {
        rows.push([id, run.pipeline, run.status, run.startedAt, run.finishedAt, run.durationMs, 1, JSON.stringify(run)]);
        continue;
      }
      // Not finished (or its result is being written): running, or killed when its process is gone.
      const meta = readRunJson(this.stateDir, id, 'pipeline.json');
      const owner = runOwner(meta);
      const started = Date.parse(typeof meta?.started_at === 'string' ? meta.started_at : '') || runIdTime(id);
      const status = owner !== undefined && !processAlive(owner.pid, owner.host) ? 'killed' : 'running';
      rows.push([id, typeof meta?.name === 'string' ? meta.name : '?', status, started, null, null, 0, null]);
    }
    const gone = [...finished].filter((id) => !present.has(id));
    const unfinished = this.db.prepare('SELECT run_id FROM runs WHERE finished = 0').pluck().all() as string[];
    gone.push(...unfinished.filter((id) => !present.has(id)));
    const del = this.db.prepare('DELETE FROM runs WHERE run_id = ?');
    this.db.transaction(() => {
      for (const r of rows) put.run(...r);
      for (const id of gone) del.run(id);
    })();
  }

  /** Every finished run, oldest first (as readFinishedRuns gives them). */
  finishedRuns(): FinishedRun[] {
    return (this.db.prepare('SELECT result FROM runs WHERE finished = 1 ORDER BY finished_at, run_id').pluck().all() as string[]).map(
      (r) => JSON.parse(r) as FinishedRun,
    );
  }

  /**
   * Per pipeline, its newest finished run and its newest verified backup (oldest first): what freshness is judged on,
   * without reading the rest of the history.
   */
  newestRuns(): FinishedRun[] {
    const out = new Map<string, FinishedRun>();
    const newest = this.db.prepare(
      'SELECT result FROM runs WHERE pipeline = ? AND finished = 1 ORDER BY finished_at DESC, run_id DESC LIMIT 1',
    );
    const successes = this.db.prepare(
      "SELECT result FROM runs WHERE pipeline = ? AND finished = 1 AND status = 'success' ORDER BY finished_at DESC, run_id DESC",
    );
    for (const pipeline of this.pipelines()) {
      const last = newest.pluck().get(pipeline) as string | undefined;
      if (last !== undefined) {
        const run = JSON.parse(last) as FinishedRun;
        out.set(run.runId, run);
      }
      for (const r of successes.pluck().iterate(pipeline) as IterableIterator<string>) {
        const run = JSON.parse(r) as FinishedRun;
        if (!isVerifiedBackup(run)) continue;
        out.set(run.runId, run);
        break;
      }
    }
    return [...out.values()].sort((a, b) => a.finishedAt - b.finishedAt || a.runId.localeCompare(b.runId));
  }

  /** The manifest URLs of the finished runs that published a backup. */
  manifests(): string[] {
    return this.db
      .prepare("SELECT json_extract(result, '$.manifest') FROM runs WHERE finished = 1 AND json_extract(result, '$.manifest') IS NOT NULL")
      .pluck()
      .all() as string[];
  }

  /** One finished run's result, when indexed. */
  finishedRun(runId: string): FinishedRun | undefined {
    const r = this.db.prepare('SELECT result FROM runs WHERE run_id = ? AND finished = 1').pluck().get(runId) as string | undefined;
    return r === undefined ? undefined : (JSON.parse(r) as FinishedRun);
  }

  /** Runs newest first, filtered; with how many match in all. */
  runs(f: RunFilter = {}): { runs: IndexedRun[]; total: number } {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.pipeline) {
      where.push('pipeline = ?');
      args.push(f.pipeline);
    }
    if (f.status) {
      where.push('status = ?');
      args.push(f.status);
    }
    if (f.since !== undefined) {
      where.push('started_at >= ?');
      args.push(f.since);
    }
    if (f.until !== undefined) {
      where.push('started_at < ?');
      args.push(f.until);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = this.db
      .prepare(`SELECT COUNT(*) FROM runs ${clause}`)
      .pluck()
      .get(...args) as number;
    const runs = this.db
      .prepare(
        `SELECT run_id AS runId, pipeline, status, started_at AS startedAt, finished_at AS finishedAt, duration_ms AS durationMs FROM runs ${clause} ORDER BY started_at DESC, run_id DESC LIMIT ? OFFSET ?`,
      )
      .all(...args, f.limit ?? 50, f.offset ?? 0) as IndexedRun[];
    return { runs, total };
  }

  /** The pipelines that have runs, by name. */
  pipelines(): string[] {
    return this.db.prepare('SELECT DISTINCT pipeline FROM runs ORDER BY pipeline').pluck().all() as string[];
  }

  close(): void {
    this.db.close();
  }
}

/** The finished runs under `stateDir` from its index (brought up to date first); oldest first. */
export function indexedFinishedRuns(stateDir: string): FinishedRun[] {
  const dir = path.resolve(stateDir);
  if (!existsSync(path.join(dir, 'runs'))) return [];
  let index: RunIndex | undefined;
  try {
    index = new RunIndex(dir);
    index.sync();
    return index.finishedRuns();
  } catch (err) {
    // A state folder this user cannot write (or a damaged index): the records themselves.
    if ((err as { code?: string }).code === undefined && !(err instanceof Database.SqliteError)) throw err;
    return readFinishedRuns(dir);
  } finally {
    index?.close();
  }
}

// The start time a run id carries (20261124T030000Z-3fa2), else 0.
function runIdTime(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : 0;
}
