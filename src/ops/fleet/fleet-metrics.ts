// The daemon's /metrics for a fleet: every run on every worker, from the results stream, and the live workers.
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { keys } from './keys.js';
import { formatLabels } from './labels.js';
import { liveWorkers, type FleetResult } from './streams.js';

/** Follows the results stream from now on (a blocking read on its own connection) until `stop()`. */
export class FleetMetrics {
  private stopped = false;
  private readonly follower: Redis;
  private readonly loop: Promise<void>;

  constructor(
    private readonly redis: Redis,
    registry: Registry,
    log: (line: string) => void,
  ) {
    const labelNames = ['pipeline', 'status', 'worker', 'worker_labels'];
    const runs = new Counter({
      name: 'dbflow_fleet_runs_total',
      help: 'Runs that ended on a worker of the fleet, by how they ended.',
      labelNames,
      registers: [registry],
    });
    const delay = new Histogram({
      name: 'dbflow_fleet_start_delay_seconds',
      help: 'How long after its due time a run from the queue started.',
      labelNames: ['worker'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    const workers = new Gauge({
      name: 'dbflow_fleet_worker_running',
      help: 'Runs each live worker runs now (a worker that stops announcing itself disappears).',
      labelNames: ['worker', 'host', 'worker_labels'],
      registers: [registry],
      collect: async () => {
        workers.reset();
        for (const w of await liveWorkers(this.redis).catch(() => []))
          workers.set({ worker: w.id, host: w.host, worker_labels: formatLabels(w.labels) }, w.running.length);
      },
    });
    const follower = redis.duplicate();
    this.follower = follower;
    follower.on('error', () => undefined); // the main connection reports outages
    this.loop = (async () => {
      let from = '$';
      while (!this.stopped) {
        try {
          const read = await follower.xread('BLOCK', 1000, 'STREAMS', keys.results, from);
          for (const [, entries] of read ?? []) {
            for (const [id, fields] of entries) {
              from = id;
              const r = JSON.parse(fields[fields.indexOf('data') + 1] ?? '{}') as FleetResult;
              runs.inc({ pipeline: r.pipeline, status: r.status, worker: r.worker, worker_labels: formatLabels(r.labels ?? {}) });
              if (r.start_delay_ms !== undefined) delay.observe({ worker: r.worker }, Math.max(0, r.start_delay_ms) / 1000);
            }
          }
        } catch (err) {
          if (this.stopped) break;
          log(`reading the fleet's results: ${(err as Error).message}`);
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.follower.disconnect();
    await this.loop;
  }
}
