// `dbflow daemon <dir>`: the scheduler in the foreground, its metrics on HTTP, a clean stop on SIGTERM.
import { createServer, type Server } from 'node:http';
import { statSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { warmUp } from '../ops/locked-run.js';
import { Daemon, type DaemonOptions } from '../ops/daemon.js';
import { connect, parseQueueUrl } from '../ops/fleet/connection.js';
import { queueUrl } from '../ops/fleet/queue-url.js';
import { FleetMetrics } from '../ops/fleet/fleet-metrics.js';
import { assertNoInlineSecret, Enqueuer } from '../ops/fleet/jobs.js';
import { STREAM_MAX } from '../ops/fleet/keys.js';
import { readResults, type FleetResult } from '../ops/fleet/streams.js';
import { metricsText } from '../ops/metrics.js';
import { audited, auditRepositoryFromEnv } from './audited.js';
import { interruptible } from './command-support.js';
import type { Io } from './io.js';
import { watchPipelines } from './pipeline-watch.js';

export interface DaemonCommandOptions {
  stateDir: string;
  /** `host:port` of the metrics endpoint, or false (`--no-metrics`). */
  listen: string | false;
  metrics?: boolean;
  verbose?: boolean;
  /** The fleet's Redis (or DBFLOW_QUEUE): enqueue due runs for `dbflow worker`s instead of running them. */
  queue?: string;
}

export async function daemonCommand(dir: string, o: DaemonCommandOptions, io: Io): Promise<number> {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`${dir}: not a folder; dbflow daemon runs the pipelines in a folder.`);
  const stateDir = path.resolve(o.stateDir);
  const log = (line: string): void => io.err(`${new Date().toISOString()} ${line}`);
  const fleet = fleetOptions(o.queue, log);
  const daemon = new Daemon({
    stateDir,
    log,
    ...fleet?.options,
    ...(o.verbose !== undefined && { verbose: o.verbose }),
    audit: (file, body) => audited(io, { command: 'run', target: file, stateDir, toRepository: auditRepositoryFromEnv() }, body),
  });
  // What a run loads lazily is loaded now, so that the first run of each pipeline starts on time too.
  await warmUp();
  const fleetMetrics = fleet && new FleetMetrics(fleet.redis, daemon.metrics, log);
  const server = o.metrics === false || o.listen === false ? undefined : await serveMetrics(o.listen, stateDir, daemon, log);
  // Loads run one at a time, in the order files were seen, so a quick second save never overtakes the first.
  let loading = Promise.resolve();
  const queue = (job: () => Promise<void> | void): void => {
    loading = loading
      .then(job)
      .catch((err: unknown) => log(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
  };
  const watcher = await watchPipelines(
    dir,
    {
      changed: (file) => queue(() => daemon.load(file)),
      removed: (file) => queue(() => daemon.remove(file)),
      ready: () => log(`watching ${dir} for pipelines; SIGTERM or Ctrl-C stops the daemon`),
    },
    false,
  );
  // Runs until SIGINT/SIGTERM; a second signal exits at once.
  await interruptible(io, 'the daemon', async (signal) => {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await watcher.close();
    await loading;
    await daemon.stop();
    await fleetMetrics?.stop();
    await fleet?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });
  log('stopped; every run has ended and released its lock');
  return ExitCode.ok;
}

/** With a queue: the daemon validates without the workers' environment and enqueues each due time (exactly once across daemons). */
function fleetOptions(
  flag: string | undefined,
  log: (line: string) => void,
):
  | { options: Pick<DaemonOptions, 'dispatch' | 'loadOptions' | 'history'>; redis: ReturnType<typeof connect>; close: () => Promise<void> }
  | undefined {
  const url = queueUrl(flag);
  if (url === undefined) return undefined;
  const target = parseQueueUrl(url);
  const redis = connect(target, log, 'dbflow-daemon');
  const enqueuer = new Enqueuer(redis);
  log(`scheduling into the queue on ${target.shown}; dbflow workers run the pipelines`);
  // The fleet's results for the pipelines' catch-up: read once for the files loaded together at start, again for a
  // file added later (the stream is bounded; a failed read is not kept).
  let results: { read: Promise<FleetResult[]>; at: number } | undefined;
  const recentResults = (): Promise<FleetResult[]> => {
    if (!results || Date.now() - results.at > 10_000) {
      const read = readResults(redis, STREAM_MAX);
      results = { read, at: Date.now() };
      read.catch(() => {
        if (results?.read === read) results = undefined;
      });
    }
    return results.read;
  };
  return {
    redis,
    options: {
      loadOptions: { checkEnvironment: false },
      history: async (pipeline) =>
        (await recentResults())
          .filter((r) => r.pipeline === pipeline)
          .map((r) => ({ at: Date.parse(r.due_at ?? r.started_at), status: r.status })),
      dispatch: async (loaded, dueAt) => {
        assertNoInlineSecret(loaded);
        const r = await enqueuer.enqueue(loaded, dueAt);
        log(
          `[${loaded.pipeline.name}] ${r.added ? 'enqueued' : 'already enqueued by another daemon:'} ${r.id} (due ${dueAt.toISOString()}) on ${r.queue}`,
        );
      },
    },
    close: async () => {
      await enqueuer.close();
      redis.disconnect();
    },
  };
}

async function serveMetrics(listen: string, stateDir: string, daemon: Daemon, log: (line: string) => void): Promise<Server> {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen must be host:port, e.g. 127.0.0.1:9464, not "${listen}".`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('dbflow daemon: metrics are at /metrics\n');
      return;
    }
    metricsText(stateDir, daemon.metrics).then(
      (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new UsageError(
          `cannot serve metrics on ${listen}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.message}; pick another with --listen, or --no-metrics.`,
        ),
      ),
    );
    server.listen(Number(m[2]), host, resolve);
  });
  const address = server.address();
  log(
    `metrics on http://${typeof address === 'object' && address ? `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}` : listen}/metrics`,
  );
  return server;
}
