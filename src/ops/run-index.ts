// An index of the run records (SQLite, <state-dir>/runs-index.sqlite): pages and metrics query it instead of reading every result.json.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readRunJson, runOwner } from '../engine/run-record.js';
import { processAlive } from '../engine/process-alive.js';
import type { ListingMemo } from '../repo/repository.js';
import { ListingIndex } from './listing-index.js';
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
const SCHEMA_VERSION = 3;
// A folder's time is trusted to show every later change only once it is this much older than the listing that read it
// (file systems that keep whole seconds would not show a change made in the same second).
const SETTLED_MS = 2000;

/** What opening the index may report: it was damaged and has been built again from the records. */
export interface RunIndexOptions {
  onRebuild?: (reason: string) => void;
}

/**
 * The index of one state folder; `sync()` brings it up to date with the records (only what changed is read). A damaged
 * index file (not a database, cut short, malformed) is removed and built again from the records, whichever call meets it.
 */
export class RunIndex {
  private db!: Database.Database;
  private readonly file: string;
  private readonly listings = new ListingIndex();
  // The runs folder's identity and time when it was last listed, once that time had settled; undefined: list it again.
  private listed: string | undefined;
  // The finished runs as parsed, until a sync adds or removes one.
  private finished: FinishedRun[] | undefined;

  constructor(
    private readonly stateDir: string,
    private readonly options: RunIndexOptions = {},
  ) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.file = path.join(stateDir, INDEX_NAME);
    try {
      this.open();
    } catch (err) {
      if (!isDamage(err)) throw err;
      this.rebuild((err as Error).message); // opens it anew
    }
  }

  private open(): void {
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    if (this.db.pragma('user_version', { simple: true }) !== SCHEMA_VERSION) {
      this.db.exec(`DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS listed;
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL, started_at INTEGER NOT NULL,
          finished_at INTEGER, duration_ms INTEGER, finished INTEGER NOT NULL, result TEXT, manifest TEXT, repo TEXT);
        CREATE INDEX runs_pipeline ON runs (pipeline, started_at);
        CREATE INDEX runs_status ON runs (status, started_at);
        CREATE INDEX runs_started ON runs (started_at);
        CREATE INDEX runs_finished ON runs (pipeline, finished, finished_at, run_id);
        CREATE INDEX runs_success ON runs (pipeline, status, finished_at, run_id);
        CREATE INDEX runs_unfinished ON runs (run_id) WHERE finished = 0;
        CREATE INDEX runs_manifest ON runs (manifest);
        CREATE INDEX runs_repo ON runs (repo);`);
      ListingIndex.create(this.db);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
    this.listed = undefined;
    this.finished = undefined;
  }

  // Runs `fn`; when it meets a damaged index, builds the index again from the records and runs it once more.
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!isDamage(err)) throw err;
      this.rebuild((err as Error).message);
      return fn();
    }
  }

  private rebuild(reason: string): void {
    try {
      this.db?.close();
    } catch {
      /* a damaged file may not even close cleanly */
    }
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${this.file}${suffix}`, { force: true });
    this.listings.forget();
    this.open();
    this.syncNow();
    this.options.onRebuild?.(reason);
  }

  /** Reads the records the index does not hold as finished: new runs, and runs that were still going. Removed records leave it. */
  sync(): void {
    this.guard(() => this.syncNow());
  }

  private syncNow(): void {
    const root = path.join(this.stateDir, 'runs');
    // The runs folder changes its time when a run is added or removed; while it has not, only unfinished runs are read.
    const folder = statSync(root, { bigint: true, throwIfNoEntry: false });
    const stamp = folder ? `${folder.ino}:${folder.mtimeNs}` : 'none';
    const put = this.db.prepare(
      'INSERT OR REPLACE INTO runs (run_id, pipeline, status, started_at, finished_at, duration_ms, finished, result, manifest, repo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const unfinished = this.db.prepare('SELECT run_id FROM runs WHERE finished = 0').pluck().all() as string[];
    const listing = stamp !== this.listed;
    let toRead: string[] = unfinished;
    const gone: string[] = [];
    if (listing) {
      const ids = folder?.isDirectory() ? readdirSync(root) : [];
      const present = new Set(ids);
      const finished = new Set(this.db.prepare('SELECT run_id FROM runs WHERE finished = 1').pluck().all() as string[]);
      toRead = ids.filter((id) => !finished.has(id));
      gone.push(...[...finished, ...unfinished].filter((id) => !present.has(id)));
    }
    const rows: unknown[][] = [];
    for (const id of toRead) {
      const run = readResult(readRunJson(this.stateDir, id, 'result.json'), id);
      if (run) {
        const manifest = run.manifest ?? null;
        rows.push([
          id,
          run.pipeline,
          run.status,
          run.startedAt,
          run.finishedAt,
          run.durationMs,
          1,
          JSON.stringify(run),
          manifest,
          manifest && repositoryOf(manifest),
        ]);
        continue;
      }
      const meta = readRunJson(this.stateDir, id, 'pipeline.json');
      if (!meta && !existsSync(path.join(root, id))) {
        gone.push(id); // removed since the index last listed the folder
        continue;
      }
      // Not finished (or its result is being written): running, or killed when its process is gone.
      const owner = runOwner(meta);
      const started = Date.parse(typeof meta?.started_at === 'string' ? meta.started_at : '') || runIdTime(id);
      const status = owner !== undefined && !processAlive(owner.pid, owner.host) ? 'killed' : 'running';
      rows.push([id, typeof meta?.name === 'string' ? meta.name : '?', status, started, null, null, 0, null, null, null]);
    }
    const del = this.db.prepare('DELETE FROM runs WHERE run_id = ?');
    this.db.transaction(() => {
      for (const r of rows) put.run(...r);
      for (const id of gone) del.run(id);
    })();
    if (gone.length || rows.some((r) => r[6] === 1)) this.finished = undefined;
    if (listing) this.listed = folder && Date.now() - Number(folder.mtimeNs / 1_000_000n) > SETTLED_MS ? stamp : undefined;
  }

  /** Every finished run, oldest first (as readFinishedRuns gives them). */
  finishedRuns(): FinishedRun[] {
    if (!this.finished) {
      const rows = this.guard(
        () => this.db.prepare('SELECT result FROM runs WHERE finished = 1 ORDER BY finished_at, run_id').pluck().all() as string[],
      );
      this.finished = rows.map((r) => JSON.parse(r) as FinishedRun);
    }
    return [...this.finished];
  }

  /**
   * Per pipeline, its newest finished run and its newest verified backup (oldest first): what freshness is judged on,
   * without reading the rest of the history.
   */
  newestRuns(): FinishedRun[] {
    const pipelines = this.pipelines();
    return this.guard(() => {
      const out = new Map<string, FinishedRun>();
      const newest = this.db.prepare(
        'SELECT result FROM runs WHERE pipeline = ? AND finished = 1 ORDER BY finished_at DESC, run_id DESC LIMIT 1',
      );
      const successes = this.db.prepare(
        "SELECT result FROM runs WHERE pipeline = ? AND finished = 1 AND status = 'success' ORDER BY finished_at DESC, run_id DESC",
      );
      for (const pipeline of pipelines) {
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
    });
  }

  /** True when a finished run published the backup whose manifest is at `manifestUrl`. */
  hasManifest(manifestUrl: string): boolean {
    return this.guard(() => this.db.prepare('SELECT 1 FROM runs WHERE manifest = ?').pluck().get(manifestUrl) !== undefined);
  }

  /** The repositories the runs published backups to (the folder two up from each manifest), by URL. */
  repositories(): string[] {
    return this.guard(
      () => this.db.prepare('SELECT DISTINCT repo FROM runs WHERE repo IS NOT NULL ORDER BY repo').pluck().all() as string[],
    );
  }

  /**
   * A memo for one listing of the repository `repo`: the manifests and verify records it read before, held here and in
   * the index file, are read again only when the listing shows them changed; `settle()` after a listing that completed
   * keeps what it read and forgets what it did not see (pruned backups).
   */
  listingMemo(repo: string): ListingMemo & { settle(): void } {
    const memo = this.listings.memo(repo, () => this.guard(() => ListingIndex.load(this.db, repo)));
    return {
      manifest: (o, read) => memo.manifest(o, read),
      verify: (o, read) => memo.verify(o, read),
      settle: () => {
        const { fresh, gone } = memo.settle();
        try {
          this.guard(() => ListingIndex.save(this.db, repo, fresh, gone));
        } catch {
          /* an index that cannot be written: the listings are held in memory only */
        }
      },
    };
  }

  /** One finished run's result, when indexed. */
  finishedRun(runId: string): FinishedRun | undefined {
    const r = this.guard(
      () => this.db.prepare('SELECT result FROM runs WHERE run_id = ? AND finished = 1').pluck().get(runId) as string | undefined,
    );
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
    return this.guard(() => {
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
    });
  }

  /** The pipelines that have runs, by name. */
  pipelines(): string[] {
    return this.guard(() => this.db.prepare('SELECT DISTINCT pipeline FROM runs ORDER BY pipeline').pluck().all() as string[]);
  }

  close(): void {
    this.db.close();
  }
}

/** The repository of a backup's manifest URL: two folders up (…/<repo>/<run id>/manifest.json). */
export function repositoryOf(manifestUrl: string): string {
  return manifestUrl.replace(/\/[^/]+\/manifest\.json$/, '');
}

// A damaged index file: not a database, cut short, or malformed.
function isDamage(err: unknown): boolean {
  return err instanceof Database.SqliteError && /^SQLITE_(CORRUPT|NOTADB)/.test(err.code);
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
