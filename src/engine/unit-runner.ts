// Runs one unit of a plan (a task, or a whole stream chain) to its end: attempts, retries with backoff, the
// timeout, cleanup of what started, and how each member ended.
import { CancelledError, ChainFailure, isUserError, TimeoutError } from '../errors.js';
import type { PlannedStep, Unit } from '../plan/plan.js';
import type { StepContext } from '../plugins/types.js';
import { runMembers } from './chain.js';
import { backoff } from './conditions.js';
import { createContext, type RunScope, type StreamWiring } from './context.js';
import type { EngineEvent } from './events.js';
import type { LeaseTable } from './leases.js';
import { sleepOn, type Clock } from './long-timer.js';
import type { RunRecord } from './run-record.js';
import type { Redactor } from './secrets.js';
import type { StepStates } from './step-states.js';

/** Where a step's temporary folders are recorded (removed when its lease ends). */
export interface StepTmp {
  created: (dir: string) => void;
}

export interface UnitRunnerDeps {
  states: StepStates;
  clock: Clock;
  /** Aborted when the run is cancelled or its timeout passes. */
  runSignal: AbortSignal;
  /** The run was cancelled (now, not when the unit started). */
  cancelled: () => boolean;
  holds: LeaseTable;
  scope: RunScope;
  /** The step's outputs are hashed into the run's outputs (a stream's sha256). */
  hashed: (step: PlannedStep) => boolean;
  /** The context a step runs with: its `with` rendered now, from what ran before it. */
  stepContext: (step: PlannedStep, signal: AbortSignal, wiring: StreamWiring, tmp: StepTmp) => StepContext;
  emit: (e: EngineEvent) => void;
  /** Into the step's log file and to the listeners. */
  log: (step: string, level: 'debug' | 'info' | 'warn', message: string) => void;
  /** Into the step's log file only. */
  logFile: (step: string, level: 'debug' | 'info' | 'warn', message: string) => void;
  record: RunRecord;
  redactor: Redactor;
}

interface Started {
  step: PlannedStep;
  ctx: StepContext;
  wiring: StreamWiring;
  tmp: StepTmp;
}

/** How long a step's cleanup may take. */
const CLEANUP_TIMEOUT_MS = 60_000;

export class UnitRunner {
  constructor(private readonly d: UnitRunnerDeps) {}

  /** Runs `unit` until it succeeds, fails for good, or is cancelled; never throws for a step's failure. */
  async run(unit: Unit): Promise<void> {
    const { d } = this;
    const maxAttempts = Math.max(...unit.members.map((m) => m.spec.retry.maxAttempts));
    const policy = unit.members.at(-1)!.spec.retry;
    const timeouts = unit.members.map((m) => m.spec.timeoutMs).filter((t): t is number => t !== undefined);
    const timeoutMs = timeouts.length ? Math.min(...timeouts) : undefined;
    // A unit that starts after the cancel runs because its `if` asks for it (always(), cancelled(),
    // finally): the cancel must not abort it at once.
    const startedAfterCancel = d.cancelled();
    for (let attempt = 1; ; attempt++) {
      const controller = new AbortController();
      const onRunAbort = (): void => controller.abort(d.runSignal.reason);
      if (!startedAfterCancel) {
        d.runSignal.addEventListener('abort', onRunAbort);
        if (d.runSignal.aborted) onRunAbort();
      }
      const timer =
        timeoutMs !== undefined
          ? d.clock.timer(() => controller.abort(new TimeoutError(`step "${unit.key}"`, timeoutMs)), timeoutMs)
          : undefined;
      const started: Started[] = [];
      const wired = new Map<string, { wiring: StreamWiring; tmp: StepTmp }>();
      try {
        const outputs = await runMembers(
          unit.members,
          {
            context: (step, wiring) => {
              const tmp = this.tmpOf(step.key);
              wired.set(step.key, { wiring, tmp });
              return d.stepContext(step, controller.signal, wiring, tmp);
            },
            started: (step, ctx) => {
              started.push({ step, ctx, ...wired.get(step.key)! });
              d.states.start(step.key, attempt);
            },
            progress: (step, bytes) => d.scope.progress(step.key, bytes),
            hashed: d.hashed,
            abandoned: (step, p) => d.holds.straggler(step.key, p),
          },
          controller.signal,
          (reason) => controller.abort(reason),
        );
        for (const m of unit.members) d.states.finish(m, 'success', { outputs: outputs.get(m.key) ?? {} });
        return;
      } catch (err) {
        const failure = err instanceof ChainFailure ? err : new ChainFailure(unit.key, err);
        const reason = controller.signal.aborted ? (controller.signal.reason as unknown) : undefined;
        const cause = reason instanceof TimeoutError ? reason : failure.error;
        const message = d.redactor.redact(cause instanceof Error ? cause.message : String(cause));
        let wasCancelled = d.cancelled() && !startedAfterCancel && !(reason instanceof TimeoutError);
        await this.cleanup(started);
        for (const m of unit.members) if (d.holds.resourceOf(m.key)) await d.holds.release(m.key);
        if (!wasCancelled && attempt < maxAttempts && !(cause instanceof CancelledError)) {
          const delayMs = backoff(policy.backoff, policy.delayMs, attempt);
          d.emit({ type: 'step:retry', time: new Date().toISOString(), id: unit.key, attempt, delayMs, error: message });
          d.logFile(failure.at, 'warn', `attempt ${attempt} of ${maxAttempts} failed: ${message}; retrying in ${delayMs}ms`);
          await sleepOn(d.clock, delayMs, d.runSignal);
          if (!d.cancelled()) continue;
          wasCancelled = !startedAfterCancel;
        }
        // The member where the chain failed ends first, so listeners hear of the failure before its echoes.
        for (const m of [...unit.members].sort((a, b) => Number(b.key === failure.at) - Number(a.key === failure.at))) {
          if (wasCancelled) d.states.finish(m, 'cancelled', { error: 'cancelled' });
          else if (m.key === failure.at || unit.members.length === 1) d.states.finish(m, 'failed', { error: message });
          else d.states.finish(m, 'failed', { error: `stream chain failed at "${failure.at}": ${message}`, failedWith: failure.at });
        }
        if (!wasCancelled) d.logFile(failure.at, 'warn', `failed: ${message}`);
        // A plugin's DbflowError may come from another copy of dbflow: known by its brand, not instanceof.
        if (!isUserError(cause) && cause instanceof Error && cause.stack) d.record.log(failure.at, d.redactor.redact(cause.stack));
        return;
      } finally {
        timer?.clear();
        d.runSignal.removeEventListener('abort', onRunAbort);
      }
    }
  }

  private tmpOf(key: string): StepTmp {
    return { created: (dir) => this.d.holds.tmpdir(key, dir) };
  }

  // The cleanup of each member that started, last first, each within its own deadline.
  private async cleanup(started: Started[]): Promise<void> {
    const { d } = this;
    for (const { step, ctx, wiring, tmp } of started.reverse()) {
      if (!step.def.cleanup) continue;
      const cleanupController = new AbortController();
      const t = d.clock.timer(
        () => cleanupController.abort(new TimeoutError(`cleanup of "${step.key}"`, CLEANUP_TIMEOUT_MS)),
        CLEANUP_TIMEOUT_MS,
      );
      try {
        // A fresh context: the step's own signal is aborted, and programs it runs to clean up must not be.
        await step.def.cleanup(createContext(d.scope, step, ctx.with, cleanupController.signal, wiring, tmp));
        d.log(step.key, 'info', 'cleaned up');
      } catch (err) {
        d.log(step.key, 'warn', `cleanup failed: ${d.redactor.redact((err as Error).message)}`);
      } finally {
        t.clear();
      }
    }
  }
}
