// The run lock of a fleet: one run at a time per pipeline and repository on every machine, as a lease in Redis.
//
// Taking the lease increments a counter, the fencing token, and stores "<token> <holder>" with a time to live;
// the holder renews it (heartbeats) while its run lives. A holder that stops (SIGKILL, SIGSTOP, a partition) loses
// it when the time to live ends and the next run takes it with a greater token. Before it publishes, a run checks
// that the lease is still its own: a paused holder that wakes up after a takeover finds another token and publishes
// nothing. The token is recorded in the manifest.
//
// A counter that is missing (the pipeline's first run, or Redis lost its data: a restart without persistence, a
// failover to an empty replica) starts at Redis's clock in milliseconds, not at 1: tokens then keep growing across
// the loss, so a holder paused before it cannot take its lease back (the renewal below) when the new counter happens
// to reach its token again.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { sleep } from '../../engine/engine.js';
import { CancelledError, FencedError, LockedError } from '../../errors.js';
import { formatDuration } from '../../ui/format.js';
import { keys } from './keys.js';

/** The default time to live of a lease (and of a BullMQ job lock): how long a stopped worker keeps what it held. */
export const DEFAULT_LEASE_MS = 30_000;

// Takes the lease when nobody holds it: a new token.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('GET', KEYS[1])} end
local token
if redis.call('EXISTS', KEYS[2]) == 1 then token = string.format('%.0f', redis.call('INCR', KEYS[2])) else
  local now = redis.call('TIME')
  token = string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {tonumber(token), ''}`;

// Renews the lease if it is still ours (1), or takes it back if it expired and nobody took it since (2); 0 when it was taken over.
const RENEW = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v and tonumber(redis.call('GET', KEYS[2]) or '0') == tonumber(ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Who holds a lease, as stored with it. */
export interface LeaseHolder {
  host: string;
  pid: number;
  /** `dbflow worker <id>`, `dbflow run`. */
  by: string;
  since: string;
  /** The queue's job the run is for. */
  job?: string;
}

export interface LeaseRequest {
  pipeline: string;
  repository: string;
  by: string;
  /** The queue's job the run is for: a holder running the same job (a job delivered twice) is waited for, however long. */
  job?: string;
  ttlMs: number;
  waitMs: number;
  signal?: AbortSignal;
  onWait?: (holder: string) => void;
  /** Called once when a heartbeat finds the lease taken over: the run must stop. */
  onLost: (error: FencedError) => void;
  warn: (message: string) => void;
}

/** The id of a pipeline and repository's lease (as the machine lock's file name). */
export function leaseId(pipeline: string, repository: string): string {
  return `${pipeline}-${createHash('sha256').update(`${pipeline}\n${repository}`).digest('hex').slice(0, 16)}`;
}

/** A lease held by this process. */
export class FleetLease {
  private timer: NodeJS.Timeout | undefined;
  private lostError: FencedError | undefined;
  private beating: Promise<void> | undefined;

  private constructor(
    private readonly redis: Redis,
    /** The lease's id (its pipeline and repository: see leaseId). */
    readonly id: string,
    readonly token: number,
    private readonly value: string,
    private readonly req: LeaseRequest,
  ) {}

  /** Takes the lease, waiting up to `waitMs` for a holder to end (or its lease to expire); a LockedError names the holder. */
  static async acquire(redis: Redis, req: LeaseRequest): Promise<FleetLease> {
    const id = leaseId(req.pipeline, req.repository);
    const holder: LeaseHolder = {
      host: hostname(),
      pid: process.pid,
      by: req.by,
      since: new Date().toISOString(),
      ...(req.job !== undefined && { job: req.job }),
    };
    const started = Date.now();
    let waiting = false;
    for (;;) {
      if (req.signal?.aborted) throw new CancelledError();
      const [token, current] = (await redis.eval(ACQUIRE, 2, keys.lease(id), keys.fence(id), JSON.stringify(holder), req.ttlMs)) as [
        number,
        string,
      ];
      if (token > 0) {
        const lease = new FleetLease(redis, id, token, `${token} ${JSON.stringify(holder)}`, req);
        lease.start();
        return lease;
      }
      const who = describeHolder(current);
      // The same job, run by a live holder: wait for it to end (it renews its lease) or to die (its lease expires).
      const sameJob = req.job !== undefined && holderOf(current)?.job === req.job;
      if (!sameJob && Date.now() - started >= req.waitMs) {
        const waited = req.waitMs > 0 ? ` after waiting ${formatDuration(req.waitMs)}` : '';
        throw new LockedError(
          `pipeline "${req.pipeline}" (repository ${req.repository}) is already running in the fleet: ${who}. Nothing was done${waited}; to wait for it instead, set lock_wait in the pipeline or pass --lock-wait.`,
        );
      }
      if (!waiting) {
        waiting = true;
        req.onWait?.(who);
      }
      await sleep(Math.min(250, Math.max(50, req.ttlMs / 20)), req.signal);
    }
  }

  /** Throws a FencedError unless the lease is still this run's (renewing it on the way): called just before publishing. */
  async check(): Promise<void> {
    if (this.lostError) throw this.lostError;
    const r = await this.renew();
    if (r === 0) throw this.markLost();
  }

  /** True once the lease was found taken over. */
  get lost(): boolean {
    return this.lostError !== undefined;
  }

  /** Stops the heartbeat and gives the lease back (when it is still ours). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
    await this.redis
      .eval(RELEASE, 1, keys.lease(this.id), this.value)
      .catch((err: unknown) => this.req.warn(`the fleet lease could not be released (${(err as Error).message}); it expires by itself`));
  }

  private start(): void {
    this.timer = setInterval(
      () => {
        this.beating ??= this.beat().finally(() => (this.beating = undefined));
      },
      Math.max(100, Math.floor(this.req.ttlMs / 3)),
    );
  }

  private async beat(): Promise<void> {
    if (this.lostError) return;
    let r: number;
    try {
      r = await this.renew();
    } catch (err) {
      // Redis unreachable: keep trying; the check before publishing decides whether the lease survived.
      this.req.warn(`the fleet lease could not be renewed: ${(err as Error).message}`);
      return;
    }
    if (r === 0) this.req.onLost(this.markLost());
  }

  private renew(): Promise<number> {
    return this.redis.eval(RENEW, 2, keys.lease(this.id), keys.fence(this.id), this.value, this.req.ttlMs, this.token) as Promise<number>;
  }

  private markLost(): FencedError {
    this.lostError ??= new FencedError(
      `the fleet lease of pipeline "${this.req.pipeline}" (fencing token ${this.token}) was taken over by another run after this one stopped renewing it (or Redis lost it); this run publishes nothing.`,
    );
    clearInterval(this.timer);
    return this.lostError;
  }
}

// The holder in a lease's value ("<token> <holder JSON>").
function holderOf(value: string): LeaseHolder | undefined {
  try {
    return JSON.parse(value.slice(value.indexOf(' ') + 1)) as LeaseHolder;
  } catch {
    return undefined;
  }
}

/** "pid 42 (dbflow worker w1) on db1, since …, fencing token 7". */
function describeHolder(value: string): string {
  const h = holderOf(value);
  return h ? `pid ${h.pid} (${h.by}) on ${h.host}, since ${h.since}, fencing token ${value.slice(0, value.indexOf(' '))}` : 'another run';
}
