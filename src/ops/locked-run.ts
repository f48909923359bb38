// A run under the pipeline's lock, followed by the metrics textfile: what `dbflow run` and the daemon both do.
import path from 'node:path';
import { loadExec } from '../engine/context.js';
import { runPipeline, type RunOptions, type RunResult } from '../engine/engine.js';
import type { LoadedPipeline } from '../engine/load.js';
import { defaultStateDir } from '../engine/state-dir.js';
import type { Redis } from 'ioredis';
import { publishBackup, type FinishedRun, type FleetRunFacts } from '../repo/publish-backup.js';
import { FleetLease } from './fleet/lease.js';
import { fleetPublishIntent, withdrawFleetNote } from './fleet/publishing.js';
import { acquireLock, describeOwner, pipelineRepository, uploadRepositories, type HeldLock, type LockOwner } from './lock.js';
import { writeMetricsTextfile } from './metrics.js';
import { reapDeadRuns } from './reap.js';

export interface LockedRunOptions extends RunOptions {
  /** Overrides the pipeline's `lock_wait`. */
  lockWaitMs?: number;
  /** Who runs it, for the lock's owner record: `dbflow run`, `dbflow daemon`. */
  by: string;
  /** The node_exporter textfile to rewrite after the run; default `<stateDir>/metrics.prom`. */
  metricsFile?: string;
  /** Lines about the lock (waiting for a holder, a stale lock taken over). */
  notice: (text: string) => void;
  /** With a queue (`--queue`, DBFLOW_QUEUE, a worker): the lock is the fleet's lease in this Redis instead of the machine's lock. */
  fleet?: FleetLockOptions;
}

/** How a run takes the fleet's lease. */
export interface FleetLockOptions {
  redis: Redis;
  /** The lease's time to live: a holder that stops renewing it loses it after this long. */
  ttlMs: number;
  /** Added to the manifest's `run` (with the fencing token). */
  facts?: Omit<FleetRunFacts, 'fencing_token'>;
  /** Called with the fencing token once the lease is taken. */
  onLease?: (token: number) => void;
  /** The queue's job the run is for (a holder of the same job is waited for). */
  job?: string;
  /** Called once the lease is taken, before the run: what it throws ends the attempt (the lease is given back). */
  admit?: () => Promise<void>;
  /** Called with the result while the lease is still held (unless it was lost): recording that the job ran, before another delivery can look. */
  settled?: (result: RunResult) => Promise<void>;
}

/** Takes the lock (a LockedError when it stays busy), runs, releases, then writes the metrics textfile. */
export async function lockedRun(loaded: LoadedPipeline, o: LockedRunOptions): Promise<RunResult> {
  const repository = pipelineRepository(loaded, o.env ?? process.env);
  const waitMs = o.lockWaitMs ?? loaded.pipeline.lockWaitMs;
  let lease: FleetLease | undefined;
  let lock: HeldLock | undefined;
  // A lease taken over mid-run (this process was paused or cut off longer than its time to live) stops the run.
  const fenced = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, fenced.signal]) : fenced.signal;
  if (o.fleet) {
    lease = await FleetLease.acquire(o.fleet.redis, {
      pipeline: loaded.pipeline.name,
      repository,
      by: o.by,
      ...(o.fleet.job !== undefined && { job: o.fleet.job }),
      ttlMs: o.fleet.ttlMs,
      waitMs,
      ...(o.signal && { signal: o.signal }),
      onWait: (holder) => o.notice(`waiting for the running ${loaded.pipeline.name} to finish (${holder})…`),
      onLost: (err) => {
        o.notice(err.message);
        fenced.abort(err);
      },
      warn: o.notice,
    });
    o.fleet.onLease?.(lease.token);
    try {
      await o.fleet.admit?.();
    } catch (err) {
      await lease.release();
      throw err;
    }
  } else {
    lock = await acquireLock({
      pipeline: loaded.pipeline.name,
      repository,
      waitMs,
      by: o.by,
      ...(o.signal && { signal: o.signal }),
      onWait: (owner?: LockOwner) =>
        o.notice(`waiting for the running ${loaded.pipeline.name} to finish (${owner ? describeOwner(owner) : 'another run'})…`),
      onRecovered: (previous) => o.notice(`took over the lock of ${describeOwner(previous)}, which ended without releasing it`),
    });
  }
  const stateDir = path.resolve(o.stateDir ?? defaultStateDir());
  const held = { pipeline: loaded.pipeline.name, repository };
  // Before the first step, with the databases resolved: what runs that died holding this lock (or any dead run) left.
  const beforeSteps: LockedRunOptions['beforeSteps'] = async ({ databases, signal }) => {
    const reaping = { registry: loaded.registry, repositories: uploadRepositories(loaded, o.env ?? process.env), signal, log: o.notice };
    await reapDeadRuns({ ...reaping, stateDir, held, databases, by: `a run of ${held.pipeline}` });
    if (lease && o.fleet) await withdrawFleetNote(o.fleet.redis, lease.id, reaping);
  };
  // With a lease, the manifest is published only while the lease is still this run's, and carries its fencing token.
  const finish = lease
    ? async (finished: FinishedRun): Promise<string[] | undefined> => {
        await lease.check();
        const intent = fleetPublishIntent(o.fleet!.redis, lease.id, { id: finished.run.id, token: lease.token }, finished.intent);
        const urls = await publishBackup({ ...finished, intent }, { fencing_token: lease.token, ...o.fleet?.facts });
        try {
          await lease.check();
        } catch (err) {
          // Taken over while the manifests were written: the backup is withdrawn, the run that took over publishes its own.
          for (const url of urls ?? []) await finished.registry.storageFor(url).delete(url);
          throw err;
        }
        return urls;
      }
    : undefined;
  try {
    const result = await runPipeline(loaded, { ...o, signal, repository, beforeSteps, ...(finish && !o.finish && { finish }) });
    if (lease && !lease.lost) await o.fleet?.settled?.(result);
    return result;
  } finally {
    lock?.release();
    await lease?.release();
    await writeMetricsTextfile(stateDir, o.metricsFile ?? path.join(stateDir, 'metrics.prom')).catch((err: unknown) =>
      o.notice(`warning: the metrics textfile could not be written: ${(err as Error).message}`),
    );
  }
}

/** What a run's audit record says about the pipeline before it starts: its name and upload repository. */
export function runAuditFields(loaded: LoadedPipeline): { pipeline: string; repository?: string } {
  const [repository] = uploadRepositories(loaded);
  return { pipeline: loaded.pipeline.name, ...(repository !== undefined && { repository: repository.replace(/\/+$/, '') }) };
}

/** Loads what a run otherwise loads on first use (the lock's SQLite, the process runner): a daemon's first runs start on time. */
export async function warmUp(): Promise<void> {
  await Promise.all([import('better-sqlite3'), loadExec()]);
}
