// The CLI commands; each returns an exit code and lets errors reach the one catch in main.
import path from 'node:path';
import { loadPipeline } from '../engine/load.js';
import { listRuns } from '../engine/run-record.js';
import { defaultStateDir } from '../engine/state-dir.js';
import { errorLine, ExitCode, runExitCode, SpecError, UsageError, userErrorText } from '../errors.js';
import type { AuditNote } from '../ops/audit.js';
import { queueUrl } from '../ops/fleet/queue-url.js';
import { lockedRun, runAuditFields } from '../ops/locked-run.js';
import { builtinRegistry } from '../plugins/loader.js';
import { urlScheme } from '../plugins/registry.js';
import { manifestSchema } from '../repo/manifest-schema.js';
import { publishedPipelineSchema } from '../schema/pipeline-schema.js';
import { formatDuration } from '../ui/format.js';
import { jsonRenderer } from '../ui/json-lines.js';
import { plainRenderer } from '../ui/plain.js';
import { renderSummary, type StockRead, type StockRestore } from '../ui/summary.js';
import { commandRegistry } from './command-registry.js';
import { parseDurationFlag } from './command-support.js';
import type { Io } from './io.js';
import { preflight, preflightLines } from './preflight.js';
import { renderGraph, renderPlan } from './graph.js';
import { watchPipelines } from './pipeline-watch.js';

export type { Io } from './io.js';

export interface RunCommandOptions {
  concurrency?: string;
  json?: boolean;
  stateDir?: string;
  verbose?: boolean;
  lockWait?: string;
  metricsFile?: string;
  /** Only failures (cron): no view, no step lines, no summary after a success. */
  quiet?: boolean;
  /** The fleet's Redis (else DBFLOW_QUEUE): the run takes the fleet's lease and reports to its streams. */
  queue?: string;
}

export async function runCommand(file: string, opts: RunCommandOptions, io: Io, note: AuditNote = () => undefined): Promise<number> {
  const loaded = await loadPipeline(file);
  note(runAuditFields(loaded));
  const concurrency = opts.concurrency !== undefined ? parsePositive(opts.concurrency, '--concurrency') : undefined;
  const lockWaitMs = opts.lockWait !== undefined ? parseDurationFlag(opts.lockWait, '--lock-wait') : undefined;
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      io.err(`dbflow: ${sig} again: exiting now.`);
      process.exit(ExitCode.interrupted);
    }
    io.err(`dbflow: ${sig}: stopping, killing child processes and cleaning up (send it again to exit at once)…`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const live = !opts.json && !opts.quiet && io.isTTY && !process.env.CI ? (await import('../ui/live.js')).liveRenderer() : undefined;
  const plain = plainRenderer(io.err, opts.quiet ? 'quiet' : opts.verbose ? 'verbose' : 'normal');
  const json = opts.json ? jsonRenderer(io.out) : undefined;
  // Only a run with a queue loads the Redis client.
  const fleet =
    queueUrl(opts.queue) !== undefined
      ? (await import('../ops/fleet/run-fleet.js')).runFleet(opts.queue, (text) => io.err(`dbflow: ${text}`))
      : undefined;
  try {
    const result = await lockedRun(loaded, {
      ...(concurrency !== undefined && { concurrency }),
      ...(opts.stateDir !== undefined && { stateDir: opts.stateDir }),
      ...(lockWaitMs !== undefined && { lockWaitMs }),
      ...(opts.metricsFile !== undefined && { metricsFile: opts.metricsFile }),
      ...(fleet && { fleet: fleet.lock }),
      by: 'dbflow run',
      notice: (text) => io.err(`dbflow: ${text}`),
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'run:start') note({ run_id: e.runId });
        fleet?.event(e);
        if (json) json(e);
        else if (live) live.onEvent(e);
        else plain(e);
      },
    });
    await fleet?.result(result);
    await live?.done();
    const restore: StockRestore = (a, decoded) => {
      const driver = loaded.registry.drivers.get(loaded.pipeline.databases[a.database]?.driver ?? '');
      return driver?.stockRestore?.({ format: a.format, decoded, database: a.database, ...(a.position && { position: a.position }) });
    };
    const read: StockRead = (url) =>
      loaded.registry.storages.has(urlScheme(url) ?? '') ? loaded.registry.storageFor(url).stockRead?.(url) : undefined;
    if (!opts.json && !(opts.quiet && result.status === 'success'))
      (opts.quiet ? io.err : io.out)(renderSummary(loaded.pipeline.name, result, restore, read));
    return runExitCode(result.status);
  } finally {
    fleet?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * `dbflow run --dry-run`: validates, then connects to each database and checks the privileges a backup needs, and
 * writes and deletes a probe in each repository; runs no step. Exit 0 when a run could start, 1 when not.
 */
export async function dryRunCommand(file: string, opts: { quiet?: boolean }, io: Io): Promise<number> {
  const loaded = await loadPipeline(file);
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await preflight(loaded, { env: process.env, signal: controller.signal });
    const lines = [`✔ ${file}: valid, ${loaded.plan.steps.size} steps`, ...preflightLines(result)];
    if (!opts.quiet || !result.ok) (result.ok ? io.out : io.err)(lines.join('\n'));
    if (!opts.quiet)
      io.out(
        result.ok
          ? `dry run: nothing was run; \`dbflow run ${file}\` can start.`
          : 'dry run: nothing was run; fix the problems above first.',
      );
    return result.ok ? ExitCode.ok : ExitCode.stepFailed;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** `dbflow validate`; `env: false` (--no-env) checks everything but the environment: variables, secret files. */
export async function validateCommand(files: string[], opts: { json?: boolean; env?: boolean }, io: Io): Promise<number> {
  let code = ExitCode.ok as number;
  const results: { file: string; ok: boolean; problems?: { file: string; line: number; col: number; message: string }[] }[] = [];
  for (const file of files) {
    try {
      const { plan } = await loadPipeline(file, { checkEnvironment: opts.env !== false });
      results.push({ file, ok: true });
      if (!opts.json) io.out(`${file}: ok (${plan.steps.size} steps)`);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      code = ExitCode.usage;
      results.push({ file, ok: false, problems: err.problems.map((p) => ({ ...p.pos, message: p.message })) });
      if (!opts.json) io.err(userErrorText(err));
    }
  }
  if (opts.json) io.out(JSON.stringify(files.length === 1 ? results[0] : results, null, 2));
  return code;
}

export async function planCommand(file: string, opts: { json?: boolean }, io: Io): Promise<number> {
  const { plan } = await loadPipeline(file);
  if (opts.json) {
    io.out(
      JSON.stringify(
        {
          pipeline: plan.pipeline.name,
          units: plan.units.map((u) => ({
            key: u.key,
            steps: u.members.map((m) => ({ id: m.key, uses: m.def.uses, kind: m.def.kind, matrix: m.cell })),
            after: u.deps,
          })),
        },
        null,
        2,
      ),
    );
  } else io.out(renderPlan(plan));
  return ExitCode.ok;
}

export async function graphCommand(file: string, opts: { format: string }, io: Io): Promise<number> {
  if (opts.format !== 'mermaid' && opts.format !== 'dot')
    throw new UsageError(`--format must be "mermaid" or "dot", not "${opts.format}".`);
  const { plan } = await loadPipeline(file);
  io.out(renderGraph(plan, opts.format));
  return ExitCode.ok;
}

export async function schemaCommand(opts: { manifest?: boolean }, io: Io): Promise<number> {
  const registry = await builtinRegistry();
  io.out(JSON.stringify(opts.manifest ? manifestSchema : publishedPipelineSchema([...registry.steps.values()]), null, 2));
  return ExitCode.ok;
}

export async function pluginsCommand(opts: { json?: boolean; pipeline?: string; plugin?: string[] }, io: Io): Promise<number> {
  const registry = opts.pipeline ? (await loadPipeline(opts.pipeline)).registry : await commandRegistry(opts.plugin);
  if (opts.json) {
    io.out(
      JSON.stringify(
        registry.plugins.map(({ plugin, from }) => ({
          name: plugin.name,
          from,
          steps: (plugin.steps ?? []).map((s) => ({
            uses: s.uses,
            kind: s.kind,
            description: s.description,
            with: s.with,
            outputs: s.outputs,
          })),
          drivers: (plugin.drivers ?? []).map((d) => d.name),
          storages: (plugin.storages ?? []).map((s) => s.scheme),
          codecs: (plugin.codecs ?? []).map((c) => c.name),
        })),
        null,
        2,
      ),
    );
    return ExitCode.ok;
  }
  for (const { plugin, from } of registry.plugins) {
    io.out(`${plugin.name}${from === 'dbflow' ? '' : `  (${from})`}`);
    for (const s of plugin.steps ?? []) io.out(`  step    ${s.uses.padEnd(16)} ${s.kind.padEnd(9)} ${s.description}`);
    for (const d of plugin.drivers ?? []) io.out(`  driver  ${d.name}`);
    for (const s of plugin.storages ?? []) io.out(`  storage ${s.scheme}://`);
    for (const c of plugin.codecs ?? []) io.out(`  codec   ${c.name}`);
  }
  return ExitCode.ok;
}

export function runsCommand(opts: { json?: boolean; stateDir?: string; limit?: string }, io: Io): number {
  const runs = listRuns(path.resolve(opts.stateDir ?? defaultStateDir()), opts.limit ? parsePositive(opts.limit, '--limit') : 20);
  if (opts.json)
    io.out(
      JSON.stringify(
        runs.map((r) => ({
          run_id: r.id,
          pipeline: r.pipeline,
          status: r.status,
          started_at: r.startedAt,
          duration_ms: r.durationMs ?? null,
          dir: r.dir,
        })),
        null,
        2,
      ),
    );
  else if (!runs.length) io.out('no runs yet: start one with `dbflow run <pipeline.yaml>`');
  else {
    io.out(`${'RUN'.padEnd(24)} ${'PIPELINE'.padEnd(20)} ${'STATUS'.padEnd(10)} DURATION`);
    for (const r of runs)
      io.out(
        `${r.id.padEnd(24)} ${r.pipeline.padEnd(20)} ${r.status.padEnd(10)} ${r.durationMs !== undefined ? formatDuration(r.durationMs) : '-'}`,
      );
  }
  return ExitCode.ok;
}

export async function watchCommand(dir: string, io: Io): Promise<number> {
  const check = async (file: string): Promise<void> => {
    try {
      const { plan } = await loadPipeline(file);
      io.out(`${new Date().toISOString().slice(11, 19)} ${file}: ok (${plan.steps.size} steps)`);
    } catch (err) {
      if (!(err instanceof SpecError) && !(err instanceof UsageError)) throw err;
      io.out(`${new Date().toISOString().slice(11, 19)} ${err instanceof SpecError ? err.rendered : errorLine(err)}`);
    }
  };
  const watcher = await watchPipelines(dir, { changed: (file) => void check(file).catch((err: unknown) => io.err(String(err))) }, true);
  io.err(`watching ${dir} for pipeline changes (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const stop = (): void => void watcher.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return ExitCode.ok;
}

function parsePositive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, not "${value}".`);
  return n;
}
