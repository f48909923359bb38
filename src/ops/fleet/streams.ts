// One view of the fleet: run events and results in bounded Redis streams, and the live workers, as every command reads them.
import type { Redis } from 'ioredis';
import type { EngineEvent } from '../../engine/events.js';
import { readResult, type FinishedRun } from '../run-results.js';
import { keys, STREAM_MAX } from './keys.js';
import type { Labels } from './labels.js';

/** One finished run, as the results stream holds it. */
export interface FleetResult {
  run_id: string;
  pipeline: string;
  status: string;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  worker: string;
  host: string;
  labels: Labels;
  /** For a run from a queue: its job, its due time and how long after it the run started. */
  job_id?: string;
  due_at?: string;
  start_delay_ms?: number;
  fencing_token?: number;
  manifest?: string;
  error?: string;
  /** The databases the run stored, and its checks (restore-tests with their durations): what `status --queue` judges freshness and RTO by. */
  artifacts?: { database: string }[];
  verifications?: { database: string; check: string; ok: boolean; duration_ms?: number }[];
}

/** A result of the stream as a finished run, for the commands that judge runs (status): oldest first in, oldest first out. */
export function fleetFinishedRuns(results: readonly FleetResult[]): FinishedRun[] {
  return results.flatMap((r) => {
    const run = readResult(
      {
        ...r,
        summary: { artifacts: r.artifacts ?? [], verifications: r.verifications ?? [], ...(r.manifest && { manifest: r.manifest }) },
      },
      r.run_id,
    );
    return run ? [run] : [];
  });
}

/** Who runs a run, for its events. */
export interface RunOrigin {
  worker: string;
  host: string;
  labels: Labels;
  jobId?: string;
  dueAt?: string;
}

/** Appends a run's events to the events stream (start, each step's end, the end) and its result to the results stream. */
export function streamReporter(redis: Redis, origin: RunOrigin, warn: (message: string) => void) {
  let failed = false;
  const add = (stream: string, fields: Record<string, string>): void => {
    redis
      .xadd(stream, 'MAXLEN', '~', STREAM_MAX, '*', ...Object.entries(fields).flat())
      .then(() => (failed = false))
      .catch((err: unknown) => {
        if (!failed) warn(`the fleet's streams cannot be written (${(err as Error).message}); the run goes on`);
        failed = true;
      });
  };
  const base = {
    worker: origin.worker,
    host: origin.host,
    labels: JSON.stringify(origin.labels),
    ...(origin.jobId && { job_id: origin.jobId }),
  };
  let runId = '';
  let pipeline = '';
  return {
    /** Engine events: what other machines see of this run. Error texts are the engine's, with secrets masked. */
    event(e: EngineEvent): void {
      if (e.type === 'run:start') {
        runId = e.runId;
        pipeline = e.pipeline;
        add(keys.events, { ...base, type: e.type, time: e.time, run_id: runId, pipeline, ...(origin.dueAt && { due_at: origin.dueAt }) });
      } else if (e.type === 'step:end') {
        add(keys.events, { ...base, type: e.type, time: e.time, run_id: runId, pipeline, step: e.id, status: e.status });
      } else if (e.type === 'run:end') {
        add(keys.events, {
          ...base,
          type: e.type,
          time: e.time,
          run_id: runId,
          pipeline,
          status: e.status,
          ...(e.error && { error: e.error }),
        });
      }
    },
    result(r: FleetResult): Promise<unknown> {
      return redis.xadd(keys.results, 'MAXLEN', '~', STREAM_MAX, '*', 'data', JSON.stringify(r)).catch((err: unknown) => {
        warn(`the run's result could not be added to the fleet's stream: ${(err as Error).message}`);
      });
    },
  };
}

/** The newest `limit` results, newest first. */
export async function readResults(redis: Redis, limit: number): Promise<FleetResult[]> {
  const entries = await redis.xrevrange(keys.results, '+', '-', 'COUNT', limit);
  return entries.flatMap(([, fields]) => {
    const i = fields.indexOf('data');
    try {
      return [JSON.parse(fields[i + 1] ?? '') as FleetResult];
    } catch {
      return [];
    }
  });
}

/** A live worker, as it announces itself. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  labels: Labels;
  concurrency: number;
  started_at: string;
  seen_at: string;
  /** The runs it runs now. */
  running: { job_id: string; pipeline: string; run_id?: string; started_at: string }[];
}

/** How often a worker announces itself; it is taken for gone after three times as long without. */
export const ANNOUNCE_MS = 2000;

/** Writes a worker's entry (it expires unless rewritten). */
export async function announceWorker(redis: Redis, info: WorkerInfo): Promise<void> {
  await redis
    .multi()
    .set(keys.worker(info.id), JSON.stringify(info), 'PX', 3 * ANNOUNCE_MS)
    .sadd(keys.workers, info.id)
    .exec();
}

/** Removes a worker's entry (it stops). */
export async function retireWorker(redis: Redis, id: string): Promise<void> {
  await redis.multi().del(keys.worker(id)).srem(keys.workers, id).exec();
}

/** The live workers, by id; ids whose entry expired are forgotten. */
export async function liveWorkers(redis: Redis): Promise<WorkerInfo[]> {
  const ids = (await redis.smembers(keys.workers)).sort();
  if (!ids.length) return [];
  const values = await redis.mget(...ids.map((id) => keys.worker(id)));
  const out: WorkerInfo[] = [];
  const gone: string[] = [];
  ids.forEach((id, i) => {
    const v = values[i];
    if (v) out.push(JSON.parse(v) as WorkerInfo);
    else gone.push(id);
  });
  if (gone.length) await redis.srem(keys.workers, ...gone);
  return out;
}
