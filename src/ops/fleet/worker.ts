// `dbflow worker`: takes the jobs of every label set its labels include and runs them with the engine, under the fleet's lease.
import { hostname } from 'node:os';
import path from 'node:path';
import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadPipelineText, type LoadedPipeline } from '../../engine/load.js';
import type { RunResult } from '../../engine/engine.js';
import { AlreadyRanError, ExitCode, isUserError, LockedError, runExitCode, userErrorText } from '../../errors.js';
import type { AuditNote } from '../audit.js';
import { formatDuration } from '../../ui/format.js';
import { plainRenderer } from '../../ui/plain.js';
import { pipelineRepository } from '../lock.js';
import { lockedRun, runAuditFields } from '../locked-run.js';
import type { QueueTarget } from './connection.js';
import { keys, KEY_PREFIX } from './keys.js';
import { leaseId } from './lease.js';
import type { FleetJobData, FleetJobResult } from './jobs.js';
import { formatLabels, labelsMatch, parseLabels, queueName, type Labels } from './labels.js';
import { ANNOUNCE_MS, announceWorker, retireWorker, streamReporter, type WorkerInfo } from './streams.js';

export interface FleetWorkerOptions {
  target: QueueTarget;
  /** A connection for dbflow's own keys (leases, streams, the worker's entry). */
  redis: Redis;
  id: string;
  labels: Labels;
  /** Most runs at once, over every queue it takes jobs from. */
  concurrency: number;
  /** The lease's and the job lock's time to live: how long until a stopped worker's jobs go to another. */
  leaseMs: number;
  stateDir: string;
  verbose?: boolean;
  log: (line: string) => void;
  /** Wraps each run so that it leaves its audit record, like `dbflow run` does; `body` returns the run's exit code. */
  audit?: (file: string, body: (note: AuditNote) => Promise<number>) => Promise<number>;
}

/** How long the record that a job ran is kept (longer than BullMQ keeps the job). */
const DONE_KEEP_S = 24 * 3600;

/** How often the worker looks for label sets new pipelines were scheduled with. */
const DISCOVER_MS = 1000;

/** How often a job queued behind its pipeline's running run (`overlap: queue`) looks whether the lease is free. */
const QUEUED_POLL_MS = 1000;

/** How long the queued job's claim lasts without being renewed (each look renews it): a job lost meanwhile frees it. */
const QUEUED_CLAIM_MS = 60_000;

// Claims the pipeline's one queued place for a job (1), or renews its claim; 0 when another job has it.
const CLAIM_QUEUED = `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

// Frees the queued place if this job has it.
const FREE_QUEUED = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Takes and runs jobs until `stop()`. */
export class FleetWorker {
  private readonly workers = new Map<string, Worker>();
  private readonly running = new Map<string, WorkerInfo['running'][number] & { controller: AbortController }>();
  private readonly startedAt = new Date().toISOString();
  private timers: NodeJS.Timeout[] = [];
  private free: number;
  private readonly waiting: (() => void)[] = [];
  private stopping = false;

  constructor(private readonly o: FleetWorkerOptions) {
    this.free = o.concurrency;
  }

  async start(): Promise<void> {
    await this.announce();
    await this.discover();
    this.timers = [
      setInterval(
        () => void this.discover().catch((err: unknown) => this.o.log(`looking for queues: ${(err as Error).message}`)),
        DISCOVER_MS,
      ),
      setInterval(() => void this.announce().catch(() => undefined), ANNOUNCE_MS),
    ];
    this.o.log(
      `worker ${this.o.id} with labels ${formatLabels(this.o.labels) || '(none)'}, concurrency ${this.o.concurrency}: taking jobs from ${[...this.workers.keys()].join(', ')}`,
    );
  }

  /** Takes no more jobs, waits for the running runs to end, and leaves the fleet. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    if (this.running.size)
      this.o.log(`stopping: waiting for ${this.running.size} running ${this.running.size === 1 ? 'run' : 'runs'} to end…`);
    await Promise.all([...this.workers.values()].map((w) => w.close()));
    await retireWorker(this.o.redis, this.o.id).catch(() => undefined);
  }

  // A BullMQ worker for the queue of every label set (scheduled by some daemon) that this worker's labels include.
  private async discover(): Promise<void> {
    if (this.stopping) return;
    const sets = ['', ...(await this.o.redis.smembers(keys.labelSets))];
    for (const set of sets) {
      let wanted: Labels;
      try {
        wanted = parseLabels(set);
      } catch {
        continue;
      }
      const name = queueName(wanted);
      if (this.workers.has(name) || !labelsMatch(wanted, this.o.labels)) continue;
      const worker = new Worker(name, (job, token) => this.process(job as Job<FleetJobData>, token), {
        // ioredis options; BullMQ's own type spells a few of them differently.
        connection: this.o.target.options as ConnectionOptions,
        prefix: KEY_PREFIX,
        concurrency: this.o.concurrency,
        lockDuration: this.o.leaseMs,
        stalledInterval: Math.max(1000, Math.floor(this.o.leaseMs / 2)),
        maxStalledCount: 3,
        name: this.o.id,
      });
      worker.on('error', (err) => this.o.log(`queue ${name}: ${err.message}`));
      this.workers.set(name, worker);
      if (this.workers.size > 1) this.o.log(`taking jobs from ${name} too`);
    }
  }

  private async announce(): Promise<void> {
    await announceWorker(this.o.redis, {
      id: this.o.id,
      host: hostname(),
      pid: process.pid,
      labels: this.o.labels,
      concurrency: this.o.concurrency,
      started_at: this.startedAt,
      seen_at: new Date().toISOString(),
      running: [...this.running.values()].map(({ controller: _, ...r }) => r),
    });
  }

  // One slot of --concurrency, shared by every queue.
  private async slot(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }

  /**
   * `overlap: queue` in the fleet, as the daemon does it on one machine: a due time that finds its pipeline's run going
   * (the lease held) or another due time already queued waits for the lease, in BullMQ's delayed set, looking every
   * second; one due time per pipeline and repository waits, later ones are skipped. Resolves to `wait` once the job was
   * put back (its processor then throws DelayedError), to the reason to skip it when another job holds the place, or to
   * undefined to run it now.
   */
  private async queueBehind(
    job: Job<FleetJobData>,
    token: string | undefined,
    loaded: LoadedPipeline,
    locked: boolean,
  ): Promise<'wait' | { skip: string } | undefined> {
    const id = leaseId(loaded.pipeline.name, pipelineRepository(loaded, process.env));
    const claimed = Number(await this.o.redis.eval(CLAIM_QUEUED, 1, keys.queued(id), job.id ?? '', String(QUEUED_CLAIM_MS)));
    if (!claimed) return { skip: `another due time of ${loaded.pipeline.name} is already queued (overlap: queue keeps one)` };
    if (!locked && !(await this.o.redis.exists(keys.lease(id)))) return undefined;
    await job.updateData({ ...job.data, queued: (job.data.queued ?? 0) + 1 });
    await job.moveToDelayed(Date.now() + QUEUED_POLL_MS, token);
    return 'wait';
  }

  // Leaves the queued place to the next due time, if this job has it.
  private async freeQueued(loaded: LoadedPipeline, job: Job<FleetJobData>): Promise<void> {
    const id = leaseId(loaded.pipeline.name, pipelineRepository(loaded, process.env));
    await this.o.redis.eval(FREE_QUEUED, 1, keys.queued(id), job.id ?? '');
  }

  private async process(job: Job<FleetJobData>, token?: string): Promise<FleetJobResult> {
    const data = job.data;
    if (data.format !== 'dbflow-job' || data.version !== 1)
      throw new UnrecoverableError(`job ${job.id} is not a dbflow job (format ${String(data.format)})`);
    // The queue routes by labels; this guard keeps it true even for a job put in the wrong queue by hand.
    if (!labelsMatch(data.runs_on, this.o.labels))
      throw new UnrecoverableError(`job ${job.id} asks for labels ${formatLabels(data.runs_on)}, which worker ${this.o.id} lacks`);
    const jobKey = keys.done(job.id ?? '');
    const ran = async (): Promise<void> => {
      const done = await this.o.redis.get(jobKey);
      if (done) throw new AlreadyRanError(JSON.parse(done) as FleetJobResult);
    };
    try {
      await ran();
    } catch (err) {
      if (!(err instanceof AlreadyRanError)) throw err;
      this.o.log(`[${data.pipeline.name}] job ${job.id} delivered again: ${err.message}; not run again`);
      return err.result as FleetJobResult;
    }
    await this.slot();
    const name = data.pipeline.name;
    const prefix = (line: string): void => this.o.log(`[${name}] ${line}`);
    const render = plainRenderer(prefix, this.o.verbose);
    const controller = new AbortController();
    const entry = { job_id: job.id ?? '', pipeline: name, started_at: new Date().toISOString(), controller };
    this.running.set(entry.job_id, entry);
    const reporter = streamReporter(
      this.o.redis,
      { worker: this.o.id, host: hostname(), labels: this.o.labels, jobId: entry.job_id, dueAt: data.due_at },
      prefix,
    );
    let runStart: number | undefined;
    let fencingToken: number | undefined;
    // The pipeline, when it queues a due time that finds its run going (overlap: queue).
    let queued: LoadedPipeline | undefined;
    let putBack = false;
    // The job was put back to wait (overlap: queue): BullMQ's DelayedError tells its worker so.
    const wait: () => never = () => {
      putBack = true;
      if (!data.queued) prefix(`queued: its previous run is still going (overlap: queue); it starts once that one ends`);
      throw new DelayedError();
    };
    const skipped = async (reason: string): Promise<FleetJobResult> => {
      prefix(`skipped: ${reason}`);
      return await failed('skipped', reason);
    };
    const base = { pipeline: name, worker: this.o.id, host: hostname(), labels: this.o.labels, job_id: entry.job_id, due_at: data.due_at };
    const failed = async (status: string, error: string): Promise<FleetJobResult> => {
      const now = new Date().toISOString();
      await reporter.result({ ...base, run_id: '', status, started_at: entry.started_at, finished_at: now, duration_ms: 0, error });
      return { run_id: '', status, worker: this.o.id };
    };
    try {
      let loaded;
      try {
        // Validated again here, against this worker's plugins and environment: where its secrets are read.
        loaded = await loadPipelineText(data.pipeline.file, data.pipeline.text, path.dirname(data.pipeline.file));
      } catch (err) {
        if (!isUserError(err)) throw err;
        prefix(`not run: the pipeline does not validate on worker ${this.o.id}:\n${userErrorText(err)}`);
        return await failed('invalid', (err as Error).message);
      }
      if (loaded.raw.sha256 !== data.pipeline.sha256) return await failed('invalid', `the job's pipeline text does not match its sha256`);
      if (loaded.pipeline.overlap === 'queue') {
        queued = loaded;
        const q = await this.queueBehind(job, token, loaded, false);
        if (q === 'wait') wait();
        if (q) return await skipped(q.skip);
      }
      // A job retried after its worker stopped (not one put back to wait by overlap: queue): that worker's lease ends by itself within its time to live.
      const retried = job.attemptsStarted > 1 + (data.queued ?? 0) || job.stalledCounter > 0;
      let result: RunResult | undefined;
      let again: AlreadyRanError | undefined;
      const body = async (note: AuditNote): Promise<number> => {
        note(runAuditFields(loaded));
        try {
          result = await lockedRun(loaded, {
            stateDir: this.o.stateDir,
            signal: controller.signal,
            by: `dbflow worker ${this.o.id}`,
            lockWaitMs: loaded.pipeline.lockWaitMs + (retried ? 2 * this.o.leaseMs : 0),
            notice: prefix,
            fleet: {
              redis: this.o.redis,
              ttlMs: this.o.leaseMs,
              facts: { worker: this.o.id, due_at: data.due_at },
              onLease: (t) => (fencingToken = t),
              job: entry.job_id,
              admit: async () => {
                await ran();
                if (queued) await this.freeQueued(queued, job);
              },
              settled: async (r) => {
                const record: FleetJobResult = { run_id: r.runId, status: r.status, worker: this.o.id };
                await this.o.redis.set(jobKey, JSON.stringify(record), 'EX', DONE_KEEP_S, 'NX');
              },
            },
            onEvent: (e) => {
              if (e.type === 'run:start') {
                runStart = Date.parse(e.time);
                Object.assign(entry, { run_id: e.runId });
                note({ run_id: e.runId });
              }
              reporter.event(e);
              render(e);
            },
          });
        } catch (err) {
          if (!(err instanceof AlreadyRanError)) throw err;
          // Another delivery ran it: nothing was done here (recorded as refused, like a run that found the lock held).
          again = err;
          return ExitCode.locked;
        }
        return runExitCode(result.status);
      };
      await (this.o.audit ? this.o.audit(data.pipeline.file, body) : body(() => undefined));
      if (again) throw again;
      const r = result!;
      prefix(`run ${r.runId} ${r.status} in ${formatDuration(r.durationMs)}${r.error ? `: ${r.error}` : ''}`);
      const started = runStart ?? Date.now() - r.durationMs;
      await reporter.result({
        ...base,
        run_id: r.runId,
        status: r.status,
        started_at: new Date(started).toISOString(),
        finished_at: new Date(started + r.durationMs).toISOString(),
        duration_ms: r.durationMs,
        start_delay_ms: started - Date.parse(data.due_at),
        ...(fencingToken !== undefined && { fencing_token: fencingToken }),
        ...(r.summary.manifest && { manifest: r.summary.manifest }),
        ...(r.error && { error: r.error }),
        artifacts: r.summary.artifacts.map((a) => ({ database: a.database })),
        verifications: r.summary.verifications.map(({ database, check, ok, duration_ms }) => ({
          database,
          check,
          ok,
          ...(duration_ms !== undefined && { duration_ms }),
        })),
      });
      return { run_id: r.runId, status: r.status, worker: this.o.id };
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      if (err instanceof AlreadyRanError) {
        prefix(`job ${entry.job_id} delivered again: ${err.message}; not run again`);
        return err.result as FleetJobResult;
      }
      if (err instanceof LockedError) {
        // The lease was taken between the look and the run: an overlap: queue job waits again.
        const q = queued ? await this.queueBehind(job, token, queued, true) : undefined;
        if (q === 'wait') wait();
        return await skipped(q?.skip ?? err.message);
      }
      throw err;
    } finally {
      // A queued job that ran, or ended before its run took the lease, leaves the queued place to the next.
      if (queued && !putBack) await this.freeQueued(queued, job).catch(() => undefined);
      this.running.delete(entry.job_id);
      this.release();
    }
  }
}
