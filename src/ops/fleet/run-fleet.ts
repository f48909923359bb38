// `dbflow run --queue` (or DBFLOW_QUEUE): a run by hand that honours the fleet's lease and shows in its view.
import { hostname } from 'node:os';
import type { EngineEvent } from '../../engine/events.js';
import type { RunResult } from '../../engine/engine.js';
import type { FleetLockOptions } from '../locked-run.js';
import { connect, parseQueueUrl } from './connection.js';
import { queueUrl } from './queue-url.js';
import { DEFAULT_LEASE_MS } from './lease.js';
import { streamReporter } from './streams.js';

/** What a run by hand does with the fleet: its lock, its events, its result; undefined without a queue. */
export interface RunFleet {
  lock: FleetLockOptions;
  event: (e: EngineEvent) => void;
  result: (r: RunResult) => Promise<void>;
  close: () => void;
}

export function runFleet(flag: string | undefined, warn: (text: string) => void): RunFleet | undefined {
  const url = queueUrl(flag);
  if (url === undefined) return undefined;
  const redis = connect(parseQueueUrl(url), warn, 'dbflow-run');
  const worker = `run@${hostname()}`;
  let token: number | undefined;
  let pipeline = '';
  const reporter = streamReporter(redis, { worker, host: hostname(), labels: {} }, warn);
  return {
    lock: { redis, ttlMs: DEFAULT_LEASE_MS, facts: { worker }, onLease: (t) => (token = t) },
    event: (e) => {
      if (e.type === 'run:start') pipeline = e.pipeline;
      reporter.event(e);
    },
    result: async (r) => {
      const started = Date.now() - r.durationMs;
      await reporter.result({
        run_id: r.runId,
        pipeline,
        status: r.status,
        started_at: new Date(started).toISOString(),
        finished_at: new Date().toISOString(),
        duration_ms: r.durationMs,
        worker,
        host: hostname(),
        labels: {},
        ...(token !== undefined && { fencing_token: token }),
        ...(r.summary.manifest && { manifest: r.summary.manifest }),
        ...(r.error && { error: r.error }),
      });
    },
    close: () => redis.disconnect(),
  };
}
