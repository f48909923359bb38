// Executes a plan: scheduling, conditions, retries, timeouts, leases, cancel, run record, manifest.
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import path from 'node:path';
import { CancelledError, DbflowError, IntegrityError, TimeoutError } from '../errors.js';
import { hashedOutputs, type PlannedStep, type Unit } from '../plan/plan.js';
import type { DatabaseConfig, StepContext } from '../plugins/types.js';
import { ManifestBuilder } from '../repo/manifest.js';
import { publishBackup, type FinishedRun } from '../repo/publish-backup.js';
import { RunLeases } from '../repo/run-lease.js';
import { RunStorage } from '../repo/run-storage.js';
import { compile } from '../schema/validator.js';
import { renderValue } from '../spec/templates.js';
import { sleepOn, systemClock, type Clock } from './long-timer.js';
import { defaultStateDir } from './state-dir.js';
import { anchorUrls } from '../spec/paths.js';
import { decideUnit } from './conditions.js';
import { LeaseTable } from './leases.js';
import { createContext, loadExec, type RunScope, type StreamWiring } from './context.js';
import type { EngineEvent, EventListener, RunStatus, RunSummary, StepStatus } from './events.js';
import type { LoadedPipeline } from './load.js';
import { newRunId, RunRecord } from './run-record.js';
import { resolveRunValues } from './run-values.js';
import { schedule } from './scheduler.js';
import { Redactor } from './secrets.js';
import { StepStates, type StepState } from './step-states.js';
import { runSummary, shownSummary } from './summary.js';
import { UnitRunner, type StepTmp } from './unit-runner.js';
import { withoutCredentials } from './url-credentials.js';

export type { StepState } from './step-states.js';

export interface RunOptions {
  /** Most units (tasks or whole stream chains) running at once; default 4. */
  concurrency?: number;
  env?: Record<string, string | undefined>;
  /** Where run records go; default defaultStateDir(). */
  stateDir?: string;
  /** Aborting it cancels the run (what SIGINT/SIGTERM do). */
  signal?: AbortSignal;
  onEvent?: EventListener;
  runId?: string;
  /** The repository whose run lock this run holds: recorded with the process in the run record, so a later holder knows this run died. */
  repository?: string;
  /** Called once the databases are resolved, before the first step (reaping what dead runs left); what it throws is not the run's failure. */
  beforeSteps?: (run: { databases: Record<string, DatabaseConfig>; signal: AbortSignal }) => Promise<void>;
  /** What retries, timeouts and cleanup deadlines wait on; default the system clock (tests pass one they control). */
  clock?: Clock;
  /**
   * What a run whose steps all succeeded ends with, before its result is written: by default the backup layer
   * publishes the manifest in each repository of the backup (publishBackup); the URL it returns (or the first of
   * those) is the summary's `manifest`, and several are its `manifests`. What it throws fails the run.
   */
  finish?: (run: FinishedRun) => Promise<string | string[] | undefined>;
}

export interface RunResult {
  runId: string;
  status: RunStatus;
  dir: string;
  durationMs: number;
  steps: Map<string, StepState>;
  summary: RunSummary;
  error?: string;
}

/** Run a loaded pipeline to the end; never throws for a step failure (see `status`). */
export async function runPipeline(loaded: LoadedPipeline, options: RunOptions = {}): Promise<RunResult> {
  const { pipeline, plan, registry } = loaded;
  await loadExec();
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  const started = new Date();
  const runId = options.runId ?? newRunId(started);
  const record = new RunRecord(path.resolve(options.stateDir ?? defaultStateDir()), runId);
  const baseDir = pipeline.dir;
  const redactor = new Redactor();
  const report = new ManifestBuilder((text) => redactor.redact(text));
  const hashedIds = hashedOutputs(pipeline);
  const runController = new AbortController();
  setMaxListeners(0, runController.signal); // one listener per running unit
  let cancelled = false;
  let runError: string | undefined;

  const emit = (e: EngineEvent): void => {
    record.event(e);
    options.onEvent?.(e);
  };
  const steps = new StepStates(plan, emit, redactor);
  const states: Map<string, StepState> = steps.all;
  const now = (): string => new Date().toISOString();
  // Into the step's log file only: for what an event already tells every listener (a retry, a failure).
  const logFile = (step: string, level: 'debug' | 'info' | 'warn', message: string): void =>
    record.log(step, `${now()} ${level.toUpperCase()} ${message}`);
  const log = (step: string, level: 'debug' | 'info' | 'warn', message: string): void => {
    logFile(step, level, message);
    emit({ type: 'step:log', time: now(), id: step, level, message });
  };
  const holds = new LeaseTable(log);
  // A lease object beside the run's objects in the repository: prune leaves a live run's objects alone.
  const runLeases = new RunLeases({ runId, pipeline: pipeline.name, startedAt: started }, (m) => record.log('run', `${now()} WARN ${m}`));
  const runStorage = new RunStorage((url) => registry.storageFor(url), runLeases);

  // The record of what runs and who runs it, written first (a run killed at any point is found by it); without a
  // password written into the file. Written again once the secrets are known, with their values masked.
  const owner = { pid: process.pid, host: hostname(), ...(options.repository !== undefined && { repository: options.repository }) };
  const writeMeta = (): void =>
    record.writeJson('pipeline.json', {
      name: pipeline.name,
      file: pipeline.file,
      sha256: pipeline.sha256,
      started_at: started.toISOString(),
      owner,
      pipeline: redactor.redactValue(withoutPasswords(pipeline)),
    });
  writeMeta();
  const runInfo = { id: runId, startedAt: started, pipeline: pipeline.name, dir: record.dir, pipelineDir: baseDir };
  emit({
    type: 'run:start',
    time: now(),
    runId,
    pipeline: pipeline.name,
    dir: record.dir,
    steps: plan.units.flatMap((u) => u.members.map((m) => ({ id: m.key, uses: m.def.uses, kind: m.def.kind, unit: u.key, deps: m.deps }))),
  });

  // Secrets and the template context; a failure here fails the run before any step.
  let context: Record<string, unknown> = {};
  let databases: Record<string, DatabaseConfig> = {};
  try {
    const run = { id: runId, started_at: started.toISOString(), dir: record.dir };
    ({ context, databases } = resolveRunValues(pipeline, env, baseDir, run, (s) => redactor.add(s)));
  } catch (err) {
    runError = redactor.redact((err as Error).message);
  }

  writeMeta();

  const progressAt = new Map<string, { t: number; start: number }>();
  const scope: RunScope = {
    run: runInfo,
    registry,
    redactor,
    report,
    databases,
    env,
    log,
    progress(step, bytes) {
      const p = progressAt.get(step) ?? { t: 0, start: Date.now() };
      const t = Date.now();
      if (t - p.t < 250) return;
      progressAt.set(step, { ...p, t });
      const secs = Math.max(0.001, (t - p.start) / 1000);
      emit({ type: 'step:progress', time: now(), id: step, bytes, bytesPerSecond: Math.round(bytes / secs) });
    },
    outputsOf: (key) => states.get(key)?.outputs,
    resourceOf: (key) => holds.resourceOf(key),
    lease(key, resource, release) {
      holds.lease(key, resource, release);
    },
    storage: (url) => runStorage.storage(url),
  };

  const settled = (key: string): boolean => steps.settled(key);
  const releaseDue = (): Promise<void> => holds.releaseWhere((key) => settled(key) && (plan.dependents.get(key) ?? []).every(settled));

  // What `run.status`, `run.failed_steps` and `run.error` say to a step as it starts (finally, on_failure).
  const runSoFar = (): Record<string, unknown> => {
    const { failed, error } = steps.failureSoFar();
    const status = runError || failed.length ? 'failed' : cancelled ? 'cancelled' : 'success';
    return { ...(context.run as object), status, failed_steps: failed, error: runError ?? error ?? (cancelled ? 'interrupted' : '') };
  };

  const stepContext = (step: PlannedStep, signal: AbortSignal, wiring: StreamWiring, tmp: StepTmp): StepContext => {
    const steps: Record<string, { outputs: Record<string, unknown> }> = {};
    for (const [id, keys] of Object.entries(step.refs)) {
      const outs = keys.map((k) => states.get(k)?.outputs ?? {});
      steps[id] = { outputs: outs.length === 1 ? outs[0]! : mergeCells(outs) };
    }
    let withValue: Record<string, unknown>;
    try {
      withValue = anchorUrls(renderValue(step.spec.with, { ...context, run: runSoFar(), matrix: step.cell, steps }), baseDir) as Record<
        string,
        unknown
      >;
    } catch (err) {
      throw new DbflowError(`step "${step.key}": ${(err as Error).message}`);
    }
    const validate = compile(step.def.with);
    if (!validate(withValue)) {
      const msg = (validate.errors ?? []).map((e) => `${e.instancePath || 'with'} ${e.message ?? ''}`).join('; ');
      throw new DbflowError(`step "${step.key}": "with" is invalid after templates were filled in: ${redactor.redact(msg)}`);
    }
    return createContext(scope, step, withValue, signal, wiring, tmp);
  };

  // Conditions: should a unit run, given how its dependencies ended?
  const decide = (unit: Unit) =>
    decideUnit(unit, {
      status: (key) => steps.get(key).status,
      tolerated: (key) => plan.steps.get(key)!.spec.continueOnError,
      failedUpstream: steps.failedUpstream,
      anyFailed: steps.anyFailed(),
      cancelled,
    });

  const units = new UnitRunner({
    states: steps,
    clock,
    runSignal: runController.signal,
    cancelled: () => cancelled,
    holds,
    scope,
    hashed: (step) => hashedIds.has(step.spec.id),
    stepContext,
    emit,
    log,
    logFile,
    record,
    redactor,
  });

  // The scheduler.
  const concurrency = Math.max(1, options.concurrency ?? pipeline.concurrency ?? 4);
  const onCancel = (): void => {
    if (cancelled) return;
    cancelled = true;
    runController.abort(new CancelledError());
  };
  options.signal?.addEventListener('abort', onCancel);
  if (options.signal?.aborted) onCancel();
  const pipelineTimer = pipeline.timeoutMs
    ? clock.timer(() => {
        runError = new TimeoutError('pipeline', pipeline.timeoutMs!).message;
        cancelled = true;
        runController.abort(new TimeoutError('pipeline', pipeline.timeoutMs!));
      }, pipeline.timeoutMs)
    : undefined;

  // What runs before the first step (reaping what dead runs left) never fails the run; a failure of it is a warning in the run's log.
  if (!runError && options.beforeSteps) {
    await options
      .beforeSteps({ databases, signal: runController.signal })
      .catch((err: unknown) => logFile('run', 'warn', `before the first step: ${redactor.redact((err as Error).message)}`));
  }
  if (runError) {
    for (const u of plan.units) for (const m of u.members) steps.finish(m, 'skipped', { reason: runError });
  } else {
    await schedule(plan.units, {
      concurrency,
      settled,
      decide,
      run: (unit) => units.run(unit),
      notRun: (unit, reason) => {
        for (const m of unit.members) steps.finish(m, cancelled ? 'cancelled' : 'skipped', { reason });
      },
      afterEach: releaseDue,
    });
  }
  pipelineTimer?.clear();
  options.signal?.removeEventListener('abort', onCancel);
  await holds.releaseWhere();
  // A step abandoned by a cancel or a timeout may still be ending (a restore closing its files): what it makes meanwhile goes too.
  await holds.settleStragglers(2000);

  const { failed, error: failedError } = steps.failureSoFar();
  let status: RunStatus =
    runError && !cancelled ? 'failed' : cancelled && !runError ? 'cancelled' : failed.length || runError ? 'failed' : 'success';
  const summary = runSummary(Object.fromEntries([...states].map(([k, s]) => [k, s.status as StepStatus])), report);
  const finished = new Date();
  if (status === 'success') {
    try {
      const manifest = await (options.finish ?? publishBackup)({
        pipeline: { name: pipeline.name, sha256: pipeline.sha256, file: pipeline.file },
        run: { id: runId, startedAt: started, finishedAt: finished },
        registry,
        report,
        storage: runStorage,
        intent: record,
      });
      const urls = manifest === undefined ? [] : typeof manifest === 'string' ? [manifest] : manifest;
      if (urls.length) summary.manifest = urls[0]!;
      if (urls.length > 1) summary.manifests = urls;
    } catch (err) {
      status = 'failed';
      const message = redactor.redact((err as Error).message);
      runError = err instanceof IntegrityError ? message : `writing the manifest failed: ${message}`;
    }
  }
  const shown = shownSummary(summary, redactor);
  await runLeases.close();
  if (!runError && failedError) runError = failedError;
  if (!runError && status === 'cancelled') runError = 'interrupted';
  const durationMs = finished.getTime() - started.getTime();
  record.writeJson('result.json', {
    run_id: runId,
    pipeline: pipeline.name,
    status,
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_ms: durationMs,
    ...(runError && { error: runError }),
    steps: Object.fromEntries(
      [...states].map(([k, s]) => [k, { status: s.status, duration_ms: s.durationMs ?? 0, ...(s.error && { error: s.error }) }]),
    ),
    summary: shown,
  });
  emit({ type: 'run:end', time: now(), runId, status, durationMs, ...(runError && { error: runError }), summary: shown });
  for (const s of states.values()) if (s.outputs) s.outputs = redactor.redactValue(s.outputs);
  return { runId, status, dir: record.dir, durationMs, steps: states, summary: shown, ...(runError && { error: runError }) };
}

/** The pipeline with every database password written into it (in its URL or as `password:`) replaced. */
function withoutPasswords(pipeline: LoadedPipeline['pipeline']): LoadedPipeline['pipeline'] {
  const databases = Object.fromEntries(
    Object.entries(pipeline.databases).map(([name, db]) => [
      name,
      {
        ...db,
        url: withoutCredentials(db.url),
        ...(db.password !== undefined && !/^\{\{[^}]*\}\}$/.test(db.password.trim()) && { password: '***' }),
      },
    ]),
  );
  return { ...pipeline, databases };
}

function mergeCells(outs: Record<string, unknown>[]): Record<string, unknown> {
  const keys = new Set(outs.flatMap((o) => Object.keys(o)));
  return Object.fromEntries([...keys].map((k) => [k, outs.map((o) => o[k])]));
}

/** Waits `ms`, or less when `signal` aborts (it resolves either way). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return sleepOn(systemClock, ms, signal);
}
