// The names of what dbflow keeps in the fleet's Redis.

/** The prefix of every key dbflow writes in Redis (BullMQ's queues included). */
export const KEY_PREFIX = 'dbflow';

/** The names of dbflow's own keys (BullMQ's queues live under `dbflow:<queue>:…`). */
export const keys = {
  /** The `runs_on` label sets pipelines were scheduled with: each is a queue that matching workers take jobs from. */
  labelSets: `${KEY_PREFIX}:fleet:label-sets`,
  /** Run events of every run in the fleet (bounded). */
  events: `${KEY_PREFIX}:fleet:events`,
  /** One entry per finished run (bounded). */
  results: `${KEY_PREFIX}:fleet:results`,
  /** The ids of workers that announced themselves. */
  workers: `${KEY_PREFIX}:fleet:workers`,
  worker: (id: string) => `${KEY_PREFIX}:fleet:worker:${id}`,
  /** A job that ran (whatever its end): a second delivery of it (a stall misjudged, Redis restarted) does not run it again. */
  done: (jobId: string) => `${KEY_PREFIX}:fleet:done:${jobId}`,
  lease: (id: string) => `${KEY_PREFIX}:fleet:lease:${id}`,
  /** The manifests the lease's holder is writing (a holder that stops between two leaves them for the next holder). */
  publishing: (id: string) => `${KEY_PREFIX}:fleet:publishing:${id}`,
  /** The one job (its id) that waits for a lease to be free (`overlap: queue`). */
  queued: (id: string) => `${KEY_PREFIX}:fleet:queued:${id}`,
  fence: (id: string) => `${KEY_PREFIX}:fleet:fence:${id}`,
};

/** How many entries each stream keeps (approximately: Redis trims whole nodes). */
export const STREAM_MAX = 10_000;
