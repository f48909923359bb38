// Executes a plan: scheduling, conditions, retries, timeouts, leases, cancel, run record, manifest.
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import path from 'node:path';
import { CancelledError, ChainFailure, DbflowError, IntegrityError, isUserError, TimeoutError } from '../errors.js';
import { hashedOutputs, type PlannedStep, type Unit } from '../plan/plan.js';
import type { DatabaseConfig, StepContext } from '../plugins/types.js';
import { ManifestBuilder, publishManifest } from '../repo/manifest.js';
import { RunLeases } from '../repo/run-lease.js';
import { RunStorage } from '../repo/run-storage.js';
import { compile } from '../schema/validator.js';
import { renderValue } from '../spec/templates.js';
import { sleepOn, systemClock, type Clock } from './long-timer.js';
import { defaultStateDir } from './state-dir.js';
import { anchorUrls } from '../spec/paths.js';
import { runMembers } from './chain.js';
import { backoff, decideUnit } from './conditions.js';
import { LeaseTable } from './leases.js';
import { createContext, loadExec, type RunScope, type StreamWiring } from './context.js';
import type { EngineEvent, EventListener, RunStatus, RunSummary, StepStatus } from './events.js';
import type { LoadedPipeline } from './load.js';
import { newRunId, RunRecord } from './run-record.js';
import { resolveRunValues } from './run-values.js';
import { Redactor } from './secrets.js';
import { withoutCredentials } from './url-credentials.js';
import { pluginRecords, toolVersions } from './versions.js';

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
}

export interface StepState {
  status: StepStatus | 'pending' | 'running';
  outputs?: Record<string, unknown>;
  error?: string;
  /** A member of a stream chain that failed because another member did: that member's key. */
  failedWith?: string;
  startedAt?: number;
  durationMs?: number;
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

interface Started {
  step: PlannedStep;
  ctx: StepContext;
  wiring: StreamWiring;
  tmp: { dir?: string; created: (dir: string) => void };
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
  const report = new ManifestBuilder();
  const hashedIds = hashedOutputs(pipeline);
  const states = new Map<string, StepState>([...plan.steps.keys()].map((k) => [k, { status: 'pending' }]));
  const runController = new AbortController();
  setMaxListeners(0, runController.signal); // one listener per running unit
  let cancelled = false;
  let runError: string | undefined;

  const emit = (e: EngineEvent): void => {
    record.event(e);
    options.onEvent?.(e);
  };
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
    steps: plan.units.flatMap((u) => u.members.map((m) => ({ id: m.key, uses: m.def.uses, kind: m.def.kind, unit: u.key }))),
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

  const settled = (key: string): boolean => {
    const s = states.get(key)!.status;
    return s !== 'pending' && s !== 'running';
  };
  const releaseDue = (): Promise<void> => holds.releaseWhere((key) => settled(key) && (plan.dependents.get(key) ?? []).every(settled));

  // The steps that failed the run so far, and the error line naming where the failure started and why.
  const failureSoFar = (): { failed: string[]; error?: string } => {
    const failed = [...states].filter(([k, s]) => s.status === 'failed' && !plan.steps.get(k)!.spec.continueOnError).map(([k]) => k);
    if (!failed.length) return { failed };
    const origin = failed.find((k) => !states.get(k)!.failedWith) ?? failed[0]!;
    const reason = states.get(origin)!.error;
    return {
      failed,
      error: `${failed.map((f) => `"${f}"`).join(', ')} failed${reason ? ` — "${origin}": ${reason}` : ''}`,
    };
  };
  // What `run.status`, `run.failed_steps` and `run.error` say to a step as it starts (finally, on_failure).
  const runSoFar = (): Record<string, unknown> => {
    const { failed, error } = failureSoFar();
    const status = runError || failed.length ? 'failed' : cancelled ? 'cancelled' : 'success';
    return { ...(context.run as object), status, failed_steps: failed, error: runError ?? error ?? (cancelled ? 'interrupted' : '') };
  };

  const tmpOf = (key: string) => ({ created: (dir: string) => holds.tmpdir(key, dir) });
  const stepContext = (step: PlannedStep, signal: AbortSignal, wiring: StreamWiring, tmp: ReturnType<typeof tmpOf>): StepContext => {
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
      status: (key) => states.get(key)!.status,
      tolerated: (key) => plan.steps.get(key)!.spec.continueOnError,
      failedUpstream,
      anyFailed: [...states.entries()].some(([k, st]) => st.status === 'failed' && !plan.steps.get(k)!.spec.continueOnError),
      cancelled,
    });

  // Steps that failed, or were skipped because something before them failed: what failure() sees.
  const failedUpstream = new Set<string>();
  const finish = (
    step: PlannedStep,
    status: StepStatus,
    extra: { error?: string; reason?: string; outputs?: Record<string, unknown>; failedWith?: string } = {},
  ): void => {
    const st = states.get(step.key)!;
    if ((status === 'failed' && !step.spec.continueOnError) || (status === 'skipped' && step.deps.some((d) => failedUpstream.has(d)))) {
      failedUpstream.add(step.key);
    }
    st.status = status;
    if (extra.outputs) st.outputs = extra.outputs;
    if (extra.error) st.error = extra.error;
    if (extra.failedWith) st.failedWith = extra.failedWith;
    st.durationMs = st.startedAt ? Date.now() - st.startedAt : 0;
    emit({
      type: 'step:end',
      time: now(),
      id: step.key,
      status,
      durationMs: st.durationMs,
      ...(extra.error && { error: extra.error }),
      ...(extra.reason && { reason: extra.reason }),
      ...(extra.outputs && { outputs: redactor.redactValue(extra.outputs) }),
      ...(typeof extra.outputs?.bytes === 'number' && { bytes: extra.outputs.bytes }),
    });
  };

  const runUnit = async (unit: Unit): Promise<void> => {
    const maxAttempts = Math.max(...unit.members.map((m) => m.spec.retry.maxAttempts));
    const policy = unit.members.at(-1)!.spec.retry;
    const timeouts = unit.members.map((m) => m.spec.timeoutMs).filter((t): t is number => t !== undefined);
    const timeoutMs = timeouts.length ? Math.min(...timeouts) : undefined;
    // A unit that starts after the cancel runs because its `if` asks for it (always(), cancelled(),
    // finally): the cancel must not abort it at once.
    const startedAfterCancel = cancelled;
    for (let attempt = 1; ; attempt++) {
      const controller = new AbortController();
      const onRunAbort = (): void => controller.abort(runController.signal.reason);
      if (!startedAfterCancel) {
        runController.signal.addEventListener('abort', onRunAbort);
        if (runController.signal.aborted) onRunAbort();
      }
      const timer =
        timeoutMs !== undefined
          ? clock.timer(() => controller.abort(new TimeoutError(`step "${unit.key}"`, timeoutMs)), timeoutMs)
          : undefined;
      const startedCtx: Started[] = [];
      const wired = new Map<string, { wiring: StreamWiring; tmp: ReturnType<typeof tmpOf> }>();
      try {
        const outputs = await runMembers(
          unit.members,
          {
            context: (step, wiring) => {
              const tmp = tmpOf(step.key);
              wired.set(step.key, { wiring, tmp });
              return stepContext(step, controller.signal, wiring, tmp);
            },
            started: (step, ctx) => {
              startedCtx.push({ step, ctx, ...wired.get(step.key)! });
              states.get(step.key)!.status = 'running';
              states.get(step.key)!.startedAt = Date.now();
              emit({ type: 'step:start', time: now(), id: step.key, attempt });
            },
            progress: (step, bytes) => scope.progress(step.key, bytes),
            hashed: (step) => hashedIds.has(step.spec.id),
            abandoned: (step, p) => holds.straggler(step.key, p),
          },
          controller.signal,
          (reason) => controller.abort(reason),
        );
        for (const m of unit.members) finish(m, 'success', { outputs: outputs.get(m.key) ?? {} });
        return;
      } catch (err) {
        const failure = err instanceof ChainFailure ? err : new ChainFailure(unit.key, err);
        const reason = controller.signal.aborted ? (controller.signal.reason as unknown) : undefined;
        const cause = reason instanceof TimeoutError ? reason : failure.error;
        const message = redactor.redact(cause instanceof Error ? cause.message : String(cause));
        let wasCancelled = cancelled && !startedAfterCancel && !(reason instanceof TimeoutError);
        await cleanup(startedCtx);
        for (const m of unit.members) if (holds.resourceOf(m.key)) await holds.release(m.key);
        if (!wasCancelled && attempt < maxAttempts && !(cause instanceof CancelledError)) {
          const delayMs = backoff(policy.backoff, policy.delayMs, attempt);
          emit({ type: 'step:retry', time: now(), id: unit.key, attempt, delayMs, error: message });
          logFile(failure.at, 'warn', `attempt ${attempt} of ${maxAttempts} failed: ${message}; retrying in ${delayMs}ms`);
          await sleepOn(clock, delayMs, runController.signal);
          if (!cancelled) continue;
          wasCancelled = !startedAfterCancel;
        }
        // The member where the chain failed ends first, so listeners hear of the failure before its echoes.
        for (const m of [...unit.members].sort((a, b) => Number(b.key === failure.at) - Number(a.key === failure.at))) {
          if (wasCancelled) finish(m, 'cancelled', { error: 'cancelled' });
          else if (m.key === failure.at || unit.members.length === 1) finish(m, 'failed', { error: message });
          else finish(m, 'failed', { error: `stream chain failed at "${failure.at}": ${message}`, failedWith: failure.at });
        }
        if (!wasCancelled) logFile(failure.at, 'warn', `failed: ${message}`);
        // A plugin's DbflowError may come from another copy of dbflow: known by its brand, not instanceof.
        if (!isUserError(cause) && cause instanceof Error && cause.stack) record.log(failure.at, redactor.redact(cause.stack));
        return;
      } finally {
        timer?.clear();
        runController.signal.removeEventListener('abort', onRunAbort);
      }
    }
  };

  const cleanup = async (started: Started[]): Promise<void> => {
    for (const { step, ctx, wiring, tmp } of started.reverse()) {
      if (!step.def.cleanup) continue;
      const cleanupController = new AbortController();
      const t = clock.timer(() => cleanupController.abort(new TimeoutError(`cleanup of "${step.key}"`, 60_000)), 60_000);
      try {
        // A fresh context: the step's own signal is aborted, and programs it runs to clean up must not be.
        await step.def.cleanup(createContext(scope, step, ctx.with, cleanupController.signal, wiring, tmp));
        log(step.key, 'info', 'cleaned up');
      } catch (err) {
        log(step.key, 'warn', `cleanup failed: ${redactor.redact((err as Error).message)}`);
      } finally {
        t.clear();
      }
    }
  };

  // The scheduler.
  const concurrency = Math.max(1, options.concurrency ?? pipeline.concurrency ?? 4);
  const pending = new Set(plan.units);
  const running = new Set<Promise<void>>();
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
    for (const u of plan.units) for (const m of u.members) finish(m, 'skipped', { reason: runError });
    pending.clear();
  }
  while (pending.size || running.size) {
    for (const unit of [...pending]) {
      if (running.size >= concurrency) break;
      if (!unit.deps.every(settled)) continue;
      pending.delete(unit);
      const verdict = decide(unit);
      if (!verdict.run) {
        for (const m of unit.members) finish(m, cancelled ? 'cancelled' : 'skipped', { reason: verdict.reason ?? '' });
        continue;
      }
      const p: Promise<void> = runUnit(unit).finally(() => running.delete(p));
      running.add(p);
    }
    if (running.size) await Promise.race(running);
    await releaseDue();
    if (!running.size && pending.size && ![...pending].some((u) => u.deps.every(settled))) break;
  }
  pipelineTimer?.clear();
  options.signal?.removeEventListener('abort', onCancel);
  await holds.releaseWhere();
  // A step abandoned by a cancel or a timeout may still be ending (a restore closing its files): what it makes meanwhile goes too.
  await holds.settleStragglers(2000);

  const { failed, error: failedError } = failureSoFar();
  let status: RunStatus =
    runError && !cancelled ? 'failed' : cancelled && !runError ? 'cancelled' : failed.length || runError ? 'failed' : 'success';
  const summary: RunSummary = {
    steps: Object.fromEntries([...states].map(([k, s]) => [k, s.status as StepStatus])),
    artifacts: report.artifacts.map((a) => ({
      database: a.database,
      url: a.url,
      bytes: a.bytes,
      ...(a.raw && { raw_bytes: a.raw.bytes }),
      sha256: a.sha256,
      format: a.format,
      layers: a.layers,
    })),
    verifications: report.verifications.map((v) => ({
      database: v.database,
      check: v.check,
      ok: v.ok,
      ...(v.detail && { detail: v.detail }),
    })),
    ...(report.coordinations.length && {
      coordination: report.coordinations.map((c) => ({
        step: c.step,
        coordinated: c.coordinated,
        participants: c.participants,
        ...(c.blocked_ms !== undefined && { blocked_ms: c.blocked_ms }),
      })),
    }),
  };
  const finished = new Date();
  if (status === 'success' && report.artifacts.length) {
    try {
      const manifest = report.build({
        pipeline: { name: pipeline.name, sha256: pipeline.sha256, file: path.basename(pipeline.file) },
        run: { id: runId, started_at: started.toISOString(), finished_at: finished.toISOString() },
        tools: await toolVersions(registry),
        plugins: pluginRecords(registry),
      });
      await runStorage.checkStored(report.artifacts);
      summary.manifest = await publishManifest(manifest, report.location(), registry.storages);
    } catch (err) {
      status = 'failed';
      const message = redactor.redact((err as Error).message);
      runError = err instanceof IntegrityError ? message : `writing the manifest failed: ${message}`;
    }
  }
  // What people see of the summary: the text in it (URLs, details) masked; names, counts and sizes as they are.
  const shown: RunSummary = {
    ...summary,
    artifacts: summary.artifacts.map((a) => ({ ...a, url: redactor.redact(a.url) })),
    verifications: summary.verifications.map((v) => ({ ...v, ...(v.detail && { detail: redactor.redact(v.detail) }) })),
    ...(summary.manifest && { manifest: redactor.redact(summary.manifest) }),
  };
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
