// A fleet job: one due time of one pipeline, as the daemon validated it, and how it is enqueued exactly once.
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { LoadedPipeline } from '../../engine/load.js';
import { DbflowError } from '../../errors.js';
import { passwordsOf } from '../../engine/secrets.js';
import { keys, KEY_PREFIX } from './keys.js';
import { formatLabels, queueName, type Labels } from './labels.js';

/** What a job carries. Never a secret: the pipeline names its secrets (env, file), the worker reads them. */
export interface FleetJobData {
  format: 'dbflow-job';
  version: 1;
  pipeline: {
    name: string;
    /** The file's absolute path where the daemon read it: relative paths in the pipeline are resolved from its folder. */
    file: string;
    /** The file's content, as validated by the daemon. */
    text: string;
    sha256: string;
  };
  /** The scheduled time this job is for (ISO 8601). */
  due_at: string;
  runs_on: Labels;
  enqueued_by: string;
  /** How often a worker put the job back to wait behind its pipeline's running run (`overlap: queue`). */
  queued?: number;
}

/** What a job returns: how its run ended (a failed run is a completed job; only a worker lost mid-run makes BullMQ retry it). */
export interface FleetJobResult {
  run_id: string;
  status: string;
  worker: string;
}

/** The job id of a pipeline's due time: every daemon computes the same one, and BullMQ keeps one job per id. */
export function jobId(pipeline: string, dueAt: Date): string {
  return `${pipeline}@${dueAt.getTime()}`;
}

/** How long finished jobs are kept: their ids stop a late daemon from enqueueing the same due time again. */
const KEEP_FINISHED_S = 3600;

/**
 * Refuses a pipeline that writes a password into itself (a database URL or `password:` that is not a template):
 * its text would pass through Redis. Secrets belong under `secrets:` (env or file), read on the worker.
 */
export function assertNoInlineSecret(loaded: LoadedPipeline): void {
  for (const [name, db] of Object.entries(loaded.pipeline.databases)) {
    const literal = passwordsOf({ url: db.url, ...(db.password !== undefined && { password: db.password }) }).filter(
      (p) => !/\{\{.*\}\}/.test(p) && !/^%7B%7B/i.test(p),
    );
    if (literal.length)
      throw new DbflowError(
        `database "${name}" of pipeline "${loaded.pipeline.name}" has its password written in the pipeline; with --queue the pipeline passes through Redis, so read it on the worker instead: secrets: { ${name}_password: { env: … } } and "{{ secrets.${name}_password }}".`,
      );
  }
}

/** Enqueues due times into the queue of each label set; one BullMQ Queue per set. */
export class Enqueuer {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly redis: Redis,
    private readonly by = `${hostname()}:${process.pid}`,
  ) {}

  /** Adds the job of `loaded` due at `dueAt`; false when another daemon already added it (the same id). */
  async enqueue(loaded: LoadedPipeline, dueAt: Date): Promise<{ added: boolean; id: string; queue: string }> {
    const labels = loaded.pipeline.runsOn;
    const name = queueName(labels);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.redis, prefix: KEY_PREFIX });
      this.queues.set(name, queue);
      // Workers listen on the queues of the label sets listed here.
      await this.redis.sadd(keys.labelSets, formatLabels(labels));
    }
    const data: FleetJobData = {
      format: 'dbflow-job',
      version: 1,
      pipeline: { name: loaded.pipeline.name, file: loaded.pipeline.file, text: loaded.raw.text, sha256: loaded.raw.sha256 },
      due_at: dueAt.toISOString(),
      runs_on: labels,
      enqueued_by: this.by,
    };
    const id = jobId(loaded.pipeline.name, dueAt);
    await queue.add(loaded.pipeline.name, data, {
      jobId: id,
      attempts: 1,
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: 24 * KEEP_FINISHED_S },
    });
    // BullMQ keeps the first job of an id and ignores later adds: whose it is says whether this daemon added it.
    const stored = await queue.getJob(id);
    const added = (stored?.data as FleetJobData | undefined)?.enqueued_by === this.by;
    return { added, id, queue: name };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
