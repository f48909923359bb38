// The fleet's commands: `dbflow worker`, `dbflow workers`, and `runs`/`status` with --queue.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { connect, parseQueueUrl } from '../ops/fleet/connection.js';
import { queueUrl, QUEUE_ENV } from '../ops/fleet/queue-url.js';
import { DEFAULT_LEASE_MS } from '../ops/fleet/lease.js';
import { formatLabels, parseLabels } from '../ops/fleet/labels.js';
import { fleetFinishedRuns, liveWorkers, readResults, type FleetResult } from '../ops/fleet/streams.js';
import { FleetWorker } from '../ops/fleet/worker.js';
import { warmUp } from '../ops/locked-run.js';
import { formatDuration } from '../ui/format.js';
import { interruptible, parseCount, parseDurationFlag, shortTime, table } from './command-support.js';
import { audited, auditRepositoryFromEnv } from './audited.js';
import type { Io } from './io.js';
import { pipelineFiles, pipelineStatuses, statusCommand, statusExitCode } from './status-command.js';

export interface WorkerCommandOptions {
  queue?: string;
  labels?: string;
  concurrency?: string;
  lease?: string;
  id?: string;
  stateDir: string;
  verbose?: boolean;
}

/** The queue URL a fleet command needs: --queue, else DBFLOW_QUEUE, else a usage error. */
function requiredQueue(flag: string | undefined, command: string): string {
  const url = queueUrl(flag);
  if (url === undefined)
    throw new UsageError(`dbflow ${command} needs the fleet's Redis: --queue redis://host:6379 (or set ${QUEUE_ENV}).`);
  return url;
}

/** `dbflow worker`: runs jobs from the queue until SIGTERM, then lets the running runs end. */
export async function workerCommand(o: WorkerCommandOptions, io: Io): Promise<number> {
  const target = parseQueueUrl(requiredQueue(o.queue, 'worker'));
  const labels = parseLabels(o.labels);
  const concurrency = o.concurrency !== undefined ? parseCount(o.concurrency, '--concurrency') : 1;
  if (concurrency < 1) throw new UsageError('--concurrency must be at least 1.');
  const leaseMs = o.lease !== undefined ? parseDurationFlag(o.lease, '--lease') : DEFAULT_LEASE_MS;
  if (leaseMs < 1000) throw new UsageError('--lease must be at least 1s.');
  const id = o.id ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new UsageError(`--id "${id}": letters, digits, ".", "_" and "-" only.`);
  const log = (line: string): void => io.err(`${new Date().toISOString()} ${line}`);
  const redis = connect(target, log, `dbflow-worker-${id}`);
  await warmUp();
  const worker = new FleetWorker({
    target,
    redis,
    id,
    labels,
    concurrency,
    leaseMs,
    stateDir: path.resolve(o.stateDir),
    log,
    audit: (file, body) =>
      audited(io, { command: 'run', target: file, stateDir: path.resolve(o.stateDir), toRepository: auditRepositoryFromEnv() }, body),
    ...(o.verbose !== undefined && { verbose: o.verbose }),
  });
  try {
    await interruptible(io, 'the worker', async (signal) => {
      await worker.start();
      log(`connected to ${target.shown}; SIGTERM or Ctrl-C stops taking jobs and waits for the running runs`);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await worker.stop();
    });
  } finally {
    redis.disconnect();
  }
  log('stopped');
  return ExitCode.ok;
}

/** `dbflow workers`: the live workers, their labels and what they run. */
export async function workersCommand(o: { queue?: string; json?: boolean }, io: Io): Promise<number> {
  const target = parseQueueUrl(requiredQueue(o.queue, 'workers'));
  const redis = connect(target, (line) => io.err(`dbflow: ${line}`), 'dbflow-cli');
  try {
    const workers = await liveWorkers(redis);
    if (o.json) io.out(JSON.stringify(workers, null, 2));
    else if (!workers.length) io.out(`no live workers on ${target.shown}: start one with \`dbflow worker --queue …\``);
    else
      for (const line of table([
        ['WORKER', 'HOST', 'LABELS', 'RUNNING', 'SEEN'],
        ...workers.map((w) => [
          w.id,
          w.host,
          formatLabels(w.labels) || '-',
          `${w.running.length}/${w.concurrency}${w.running.length ? ` ${w.running.map((r) => r.pipeline).join(',')}` : ''}`,
          shortTime(w.seen_at),
        ]),
      ]))
        io.out(line);
    return ExitCode.ok;
  } finally {
    redis.disconnect();
  }
}

/** `dbflow runs --queue`: the newest runs of every worker, from the results stream. */
export async function fleetRunsCommand(o: { queue: string; json?: boolean; limit?: string }, io: Io): Promise<number> {
  const target = parseQueueUrl(o.queue);
  const redis = connect(target, (line) => io.err(`dbflow: ${line}`), 'dbflow-cli');
  try {
    const results = await readResults(redis, o.limit ? parseCount(o.limit, '--limit') : 20);
    if (o.json) io.out(JSON.stringify(results, null, 2));
    else if (!results.length) io.out(`no runs in the fleet on ${target.shown} yet`);
    else
      for (const line of table([
        ['RUN', 'PIPELINE', 'STATUS', 'WORKER', 'DUE', 'DELAY', 'DURATION'],
        ...results.map((r) => [
          r.run_id || '-',
          r.pipeline,
          r.status,
          r.worker,
          r.due_at ? shortTime(r.due_at) : '-',
          r.start_delay_ms !== undefined ? formatDuration(Math.max(0, r.start_delay_ms)) : '-',
          formatDuration(r.duration_ms),
        ]),
      ]))
        io.out(line);
    return ExitCode.ok;
  } finally {
    redis.disconnect();
  }
}

/**
 * `dbflow status --queue`: per pipeline, its last run and last success on any worker (exit 1 when a last run failed),
 * and, for the pipeline files of `targets`, how fresh each one's last verified backup is against its rpo (and its
 * restore time against rto), judged from the fleet's results as `dbflow status` judges a machine's runs (exit 1 when
 * one is stale). Without `targets` and with no `pipelines` folder here, the runs only.
 */
export async function fleetStatusCommand(
  o: { queue: string; json?: boolean; targets: string[]; stateDir: string },
  io: Io,
): Promise<number> {
  const target = parseQueueUrl(o.queue);
  const judged = !(o.targets.length === 1 && o.targets[0] === 'pipelines' && !existsSync('pipelines'));
  const files = judged ? pipelineFiles(o.targets) : [];
  const redis = connect(target, (line) => io.err(`dbflow: ${line}`), 'dbflow-cli');
  try {
    const [results, workers] = await Promise.all([readResults(redis, 10_000), liveWorkers(redis)]);
    const runs = fleetFinishedRuns([...results].reverse());
    const last = new Map<string, FleetResult>();
    const lastOk = new Map<string, FleetResult>();
    for (const r of results) {
      if (!last.has(r.pipeline)) last.set(r.pipeline, r);
      if (r.status === 'success' && !lastOk.has(r.pipeline)) lastOk.set(r.pipeline, r);
    }
    const running = workers.flatMap((w) => w.running.map((r) => ({ ...r, worker: w.id })));
    const pipelines = [...new Set([...last.keys(), ...running.map((r) => r.pipeline)])].sort();
    const bad = pipelines.filter((p) => last.get(p)?.status === 'failed' || last.get(p)?.status === 'invalid');
    const failedCode = bad.length ? ExitCode.stepFailed : ExitCode.ok;
    if (o.json) {
      const freshness = (await pipelineStatuses(files, o.stateDir, runs, Date.now())).map((e) => e.status);
      io.out(
        JSON.stringify(
          {
            workers: workers.length,
            pipelines: pipelines.map((p) => ({
              pipeline: p,
              last: last.get(p) ?? null,
              last_success: lastOk.get(p) ?? null,
              running: running.filter((r) => r.pipeline === p),
            })),
            ...(judged && { freshness }),
          },
          null,
          2,
        ),
      );
      return statusExitCode(freshness) || failedCode;
    }
    io.out(`fleet on ${target.shown}: ${workers.length} live ${workers.length === 1 ? 'worker' : 'workers'}, ${running.length} running`);
    if (pipelines.length)
      for (const line of table([
        ['PIPELINE', 'LAST RUN', 'ON', 'LAST SUCCESS', 'RUNNING'],
        ...pipelines.map((p) => {
          const l = last.get(p);
          const ok = lastOk.get(p);
          const now = running.filter((r) => r.pipeline === p).map((r) => r.worker);
          return [
            p,
            l ? `${l.status} ${shortTime(l.finished_at)}` : '-',
            l?.worker ?? '-',
            ok ? shortTime(ok.finished_at) : 'never',
            now.join(',') || '-',
          ];
        }),
      ]))
        io.out(line);
    if (!judged) {
      io.out('(give the pipeline files, or run it beside a "pipelines" folder, to judge each one against its rpo)');
      return failedCode;
    }
    io.out('');
    return (await statusCommand(o.targets, { stateDir: o.stateDir, runs, where: `the fleet on ${target.shown}` }, io)) || failedCode;
  } finally {
    redis.disconnect();
  }
}
