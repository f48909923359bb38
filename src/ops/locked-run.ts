// A run under the pipeline's lock, followed by the metrics textfile: what `dbflow run` and the daemon both do.
import path from 'node:path';
import { loadExec } from '../engine/context.js';
import { runPipeline, type RunOptions, type RunResult } from '../engine/engine.js';
import type { LoadedPipeline } from '../engine/load.js';
import { defaultStateDir } from '../engine/state-dir.js';
import { acquireLock, describeOwner, pipelineRepository, uploadRepositories, type LockOwner } from './lock.js';
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
}

/** Takes the lock (a LockedError when it stays busy), runs, releases, then writes the metrics textfile. */
export async function lockedRun(loaded: LoadedPipeline, o: LockedRunOptions): Promise<RunResult> {
  const repository = pipelineRepository(loaded, o.env ?? process.env);
  const lock = await acquireLock({
    pipeline: loaded.pipeline.name,
    repository,
    waitMs: o.lockWaitMs ?? loaded.pipeline.lockWaitMs,
    by: o.by,
    ...(o.signal && { signal: o.signal }),
    onWait: (owner?: LockOwner) =>
      o.notice(`waiting for the running ${loaded.pipeline.name} to finish (${owner ? describeOwner(owner) : 'another run'})…`),
    onRecovered: (previous) => o.notice(`took over the lock of ${describeOwner(previous)}, which ended without releasing it`),
  });
  const stateDir = path.resolve(o.stateDir ?? defaultStateDir());
  const held = { pipeline: loaded.pipeline.name, repository };
  // Before the first step, with the databases resolved: what runs that died holding this lock (or any dead run) left.
  const beforeSteps: LockedRunOptions['beforeSteps'] = async ({ databases, signal }) => {
    await reapDeadRuns({ stateDir, held, registry: loaded.registry, databases, signal, by: `a run of ${held.pipeline}`, log: o.notice });
  };
  try {
    return await runPipeline(loaded, { ...o, repository, beforeSteps });
  } finally {
    lock.release();
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
