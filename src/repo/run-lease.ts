// A run's lease in the repository: a small object in each folder the run writes to, saying the run is alive.
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import type { Storage } from '../plugins/types.js';

/** The name of the lease object in a folder a run writes to. */
export const RUN_LEASE_NAME = '.dbflow-run.json';

/** How often a live run rewrites its leases. */
export const HEARTBEAT_MS = 30_000;

/** A lease as stored. */
export interface RunLease {
  format: 'dbflow-run-lease';
  version: 1;
  run_id: string;
  pipeline: string;
  host: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  /** The run rewrites the lease this often. */
  heartbeat_ms: number;
}

/** Whether a lease's run is alive, and why it is judged so. */
export interface LeaseVerdict {
  alive: boolean;
  why: string;
}

/** On another host a run is alive while its heartbeat is younger than this many intervals. */
const REMOTE_INTERVALS = 3;
/** On this host a process with the lease's pid is taken for the run while its heartbeat is younger than this many intervals (a pid may be reused). */
const LOCAL_INTERVALS = 20;

/** True for the URL of a lease object. */
export function isLeaseUrl(url: string): boolean {
  return url.endsWith(`/${RUN_LEASE_NAME}`);
}

/** Parses a lease's text; undefined when it is not one. */
export function parseLease(text: string): RunLease | undefined {
  try {
    const data = JSON.parse(text) as Partial<RunLease>;
    if (
      data.format !== 'dbflow-run-lease' ||
      typeof data.pid !== 'number' ||
      typeof data.host !== 'string' ||
      typeof data.heartbeat_at !== 'string'
    )
      return undefined;
    return data as RunLease;
  } catch {
    return undefined;
  }
}

/**
 * Is the lease's run alive? On this host the process decides (gone: dead, whatever the heartbeat);
 * from another host, a heartbeat younger than a few intervals. A lease that cannot be read counts as alive.
 */
export function judgeLease(lease: RunLease | undefined, now: Date, host = hostname()): LeaseVerdict {
  if (!lease) return { alive: true, why: 'its run lease cannot be read: taken for a live run' };
  const age = now.getTime() - Date.parse(lease.heartbeat_at);
  const interval = lease.heartbeat_ms > 0 ? lease.heartbeat_ms : HEARTBEAT_MS;
  const who = `run ${lease.run_id} of "${lease.pipeline}" (pid ${lease.pid} on ${lease.host})`;
  const beat = `last heartbeat ${Math.max(0, Math.round(age / 1000))}s ago`;
  if (lease.host === host) {
    if (!processExists(lease.pid)) return { alive: false, why: `${who} has ended (no such process)` };
    return age < LOCAL_INTERVALS * interval
      ? { alive: true, why: `${who} is running, ${beat}` }
      : { alive: false, why: `${who}: ${beat}, the pid belongs to another process` };
  }
  return age < REMOTE_INTERVALS * interval
    ? { alive: true, why: `${who} is running, ${beat}` }
    : { alive: false, why: `${who}: ${beat}, taken for dead` };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The identity of a run, for its leases. */
export interface LeaseOwner {
  runId: string;
  pipeline: string;
  startedAt: Date;
}

/**
 * The leases of one run: written in a folder before the run's first object there, rewritten every
 * heartbeat while the run lives, removed when it ends (`close`).
 */
export class RunLeases {
  private readonly folders = new Map<string, { storage: Storage; settings?: Record<string, unknown>; written: Promise<boolean> }>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly owner: LeaseOwner,
    private readonly warn: (message: string) => void,
    private readonly intervalMs = HEARTBEAT_MS,
  ) {}

  /**
   * Writes this run's lease in the folder of `url`, once, before anything else of the run is written there.
   * Never rejects: a lease that cannot be written is a warning (the write it precedes fails with its own error if the storage is at fault).
   * It is written with that write's storage settings, so the folders it makes are what the write asks for (e.g. their mode).
   */
  ensure(storage: Storage, url: string, settings?: Record<string, unknown>): Promise<boolean> {
    const folder = url.slice(0, url.lastIndexOf('/'));
    let entry = this.folders.get(folder);
    if (!entry) {
      const written = this.write(storage, folder, settings).then(
        () => true,
        (err: unknown) => {
          this.warn(
            `the run lease could not be written in ${folder} (${(err as Error).message}): prune cannot tell that this run is alive`,
          );
          return false;
        },
      );
      entry = { storage, ...(settings && { settings }), written };
      this.folders.set(folder, entry);
      this.timer ??= setInterval(() => {
        this.beating ??= this.beat().finally(() => (this.beating = undefined));
      }, this.intervalMs).unref();
    }
    return entry.written;
  }

  /** Stops the heartbeat and removes every lease (a failure is a warning: the next prune reaps it). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating; // a renewal in flight must not bring a lease back after it was removed
    for (const [folder, { storage, written }] of this.folders) {
      if (!(await written)) continue;
      await storage
        .delete(`${folder}/${RUN_LEASE_NAME}`)
        .catch((err: unknown) => this.warn(`the run lease ${folder}/${RUN_LEASE_NAME} could not be removed: ${(err as Error).message}`));
    }
    this.folders.clear();
  }

  private async beat(): Promise<void> {
    for (const [folder, { storage, settings }] of this.folders) {
      await this.write(storage, folder, settings).catch((err: unknown) =>
        this.warn(`the run lease in ${folder} could not be renewed: ${(err as Error).message}`),
      );
    }
  }

  private async write(storage: Storage, folder: string, settings?: Record<string, unknown>): Promise<void> {
    const lease: RunLease = {
      format: 'dbflow-run-lease',
      version: 1,
      run_id: this.owner.runId,
      pipeline: this.owner.pipeline,
      host: hostname(),
      pid: process.pid,
      started_at: this.owner.startedAt.toISOString(),
      heartbeat_at: new Date().toISOString(),
      heartbeat_ms: this.intervalMs,
    };
    await storage.put(`${folder}/${RUN_LEASE_NAME}`, Readable.from([Buffer.from(`${JSON.stringify(lease)}\n`)]), {
      signal: new AbortController().signal,
      ...(settings && { settings }),
    });
  }
}
