// The run lock: one run at a time per pipeline and repository, on this machine, whoever starts it.
//
// The lock is an exclusive SQLite transaction on a lock file: the kernel's POSIX record lock under it
// goes away with the process that held it, however that process ended (SIGKILL, OOM, power cut of a
// container), so a dead holder never blocks the next run and no timeout has to guess that it is dead.
// The lock file itself is never deleted (a waiter may hold it open); a small JSON file beside it says
// who holds it, for messages only. Finding that file when taking the lock means its writer died holding it.
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { sleep } from '../engine/engine.js';
import { staticContext, type LoadedPipeline } from '../engine/load.js';
import { processAlive } from '../engine/process-alive.js';
import { CancelledError, LockedError } from '../errors.js';
import { anchorUrl } from '../spec/paths.js';
import { renderValue } from '../spec/templates.js';
import { formatDuration } from '../ui/format.js';
import { currentUser } from './audit.js';

/** Who holds a lock, as written beside it. */
export interface LockOwner {
  pid: number;
  host: string;
  user: string;
  pipeline: string;
  repository: string;
  since: string;
  /** What holds it: `dbflow run`, `dbflow daemon`. */
  by: string;
}

export interface LockRequest {
  pipeline: string;
  /** The repository (storage URL prefix) the pipeline writes to; with the pipeline's name, the lock's identity. */
  repository: string;
  /** How long to wait for a holder to finish; 0 fails at once. */
  waitMs: number;
  by: string;
  signal?: AbortSignal;
  /** Called once when the lock is busy and the request starts to wait. */
  onWait?: (owner: LockOwner | undefined) => void;
  /** Called when the lock was left behind by a holder that ended without releasing it. */
  onRecovered?: (previous: LockOwner) => void;
}

export interface HeldLock {
  readonly file: string;
  release(): void;
}

const POLL_MS = 200;

/**
 * Where lock files live: $DBFLOW_LOCK_DIR, else /run/lock/dbflow (the system's lock folder, which a
 * systemd unit's PrivateTmp does not hide), else a folder in the temporary directory.
 */
export function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DBFLOW_LOCK_DIR) return path.resolve(env.DBFLOW_LOCK_DIR);
  try {
    accessSync(SYSTEM_LOCKS, constants.W_OK);
    return path.join(SYSTEM_LOCKS, 'dbflow');
  } catch {
    return path.join(tmpdir(), 'dbflow-locks');
  }
}

const SYSTEM_LOCKS = '/run/lock';

/** The lock file of a pipeline and repository. */
export function lockFile(pipeline: string, repository: string, dir = lockDir()): string {
  const id = createHash('sha256').update(`${pipeline}\n${repository}`).digest('hex').slice(0, 16);
  return path.join(dir, `${pipeline}-${id}.lock`);
}

/** Takes the lock, waiting up to `waitMs`; a LockedError names the holder when it stays busy. */
export async function acquireLock(req: LockRequest): Promise<HeldLock> {
  const dir = lockDir();
  // Shared by every user who runs pipelines on this machine, like /tmp itself (the umask would narrow the mode).
  if (mkdirSync(dir, { recursive: true }) !== undefined && !process.env.DBFLOW_LOCK_DIR) chmodSync(dir, 0o1777);
  const file = lockFile(req.pipeline, req.repository, dir);
  const ownerFile = `${file}.json`;
  const { default: Database } = await import('better-sqlite3');
  const db: BetterSqlite3.Database = new Database(file, { timeout: 0 });
  const started = Date.now();
  let waiting = false;
  try {
    for (;;) {
      if (req.signal?.aborted) throw new CancelledError();
      if (tryBegin(db)) break;
      const waitedEnough = Date.now() - started >= req.waitMs;
      const owner = waitedEnough || !waiting ? await holderOf(ownerFile) : undefined;
      if (waitedEnough) {
        if (!owner && tryBegin(db)) break; // the holder ended while its record was looked for
        const who = owner ? describeOwner(owner) : 'another run';
        const waited = req.waitMs > 0 ? ` after waiting ${formatDuration(req.waitMs)}` : '';
        throw new LockedError(
          `pipeline "${req.pipeline}" (repository ${req.repository}) is already running: ${who}. Nothing was done${waited}; ` +
            `to wait for it instead, set lock_wait in the pipeline or pass --lock-wait (lock file ${file}).`,
        );
      }
      if (!waiting) {
        waiting = true;
        req.onWait?.(owner);
      }
      await sleep(POLL_MS, req.signal);
    }
  } catch (err) {
    db.close();
    throw err;
  }
  const previous = readOwner(ownerFile);
  if (previous) req.onRecovered?.(previous);
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    user: currentUser().user,
    pipeline: req.pipeline,
    repository: req.repository,
    since: new Date().toISOString(),
    by: req.by,
  };
  writeFileSync(ownerFile, `${JSON.stringify(owner)}\n`, { mode: 0o644 });
  let held = true;
  return {
    file,
    release() {
      if (!held) return;
      held = false;
      rmSync(ownerFile, { force: true });
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    },
  };
}

/** The holder of a pipeline's lock right now, or undefined when nobody holds it. */
export async function lockHolder(pipeline: string, repository: string): Promise<LockOwner | 'unknown' | undefined> {
  const file = lockFile(pipeline, repository);
  const { default: Database } = await import('better-sqlite3');
  let db: BetterSqlite3.Database;
  try {
    db = new Database(file, { timeout: 0, fileMustExist: true });
  } catch {
    return undefined;
  }
  try {
    if (tryBegin(db)) {
      db.exec('ROLLBACK');
      return undefined;
    }
    return readOwner(`${file}.json`) ?? 'unknown';
  } finally {
    db.close();
  }
}

function tryBegin(db: BetterSqlite3.Database): boolean {
  try {
    db.exec('BEGIN EXCLUSIVE');
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') return false;
    throw err;
  }
}

/**
 * The owner record of a held lock. A new holder writes it just after taking the lock, so for a moment
 * it may be missing or still name a holder that died: wait up to a second for a living one.
 */
async function holderOf(file: string): Promise<LockOwner | undefined> {
  const until = Date.now() + OWNER_WAIT_MS;
  for (;;) {
    const owner = readOwner(file);
    if ((owner && isAlive(owner)) || Date.now() >= until) return owner;
    await sleep(50);
  }
}

const OWNER_WAIT_MS = 1000;

/** False only when the owner is on this machine and its process is gone. */
function isAlive(owner: LockOwner): boolean {
  return processAlive(owner.pid, owner.host);
}

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** "pid 4242 (dbflow run) of alice on db1, since 2026-12-02T02:00:00Z". */
export function describeOwner(o: LockOwner): string {
  return `pid ${o.pid} (${o.by}) of ${o.user} on ${o.host}, since ${o.since}`;
}

/** The repository a pipeline writes to, for its lock: its upload repositories, or without uploads its file. */
export function pipelineRepository(loaded: LoadedPipeline, env: Record<string, string | undefined> = process.env): string {
  const prefixes = uploadRepositories(loaded, env);
  return prefixes.length ? prefixes.join(' ') : `file://${path.resolve(loaded.pipeline.file)}`;
}

/**
 * Where a pipeline's `upload` steps write: each `to` (each URL of a list of copies, of each matrix cell), up to the last `/`
 * before the first part that changes from run to run, relative file URLs made absolute; sorted, without duplicates.
 */
export function uploadRepositories(loaded: LoadedPipeline, env: Record<string, string | undefined> = process.env): string[] {
  const marker = '\u0000';
  const base = staticContext(loaded.pipeline, env);
  const context = { ...base, run: { id: marker, started_at: marker, dir: marker, status: marker, failed_steps: [], error: marker } };
  const prefixes = new Set<string>();
  for (const step of loaded.plan.steps.values()) {
    const to = step.spec.uses === 'upload' ? step.spec.with.to : undefined;
    const urls = typeof to === 'string' ? [to] : Array.isArray(to) ? to.filter((u): u is string => typeof u === 'string') : [];
    for (const url of urls) {
      let text: string;
      try {
        text = String(renderValue(url, { ...context, matrix: step.cell }));
      } catch {
        text = url;
      }
      const cut = Math.min(...[marker, 'RUN_ID', '{{'].map((m) => (text.includes(m) ? text.indexOf(m) : text.length)));
      let prefix = text.slice(0, cut);
      prefix = prefix.slice(0, prefix.lastIndexOf('/') + 1) || prefix;
      prefixes.add(anchorUrl(prefix, loaded.pipeline.dir));
    }
  }
  return [...prefixes].sort();
}
