// The state of every step of a run: pending, running, how it ended, its outputs and error; what failed the run so far.
import type { Plan, PlannedStep } from '../plan/plan.js';
import type { EngineEvent, StepStatus } from './events.js';
import type { Redactor } from './secrets.js';

export interface StepState {
  status: StepStatus | 'pending' | 'running';
  outputs?: Record<string, unknown>;
  error?: string;
  /** A member of a stream chain that failed because another member did: that member's key. */
  failedWith?: string;
  startedAt?: number;
  durationMs?: number;
}

/** How a step ended, beyond its status. */
export interface StepEnd {
  error?: string;
  /** Why it did not run (skipped, cancelled before it started). */
  reason?: string;
  outputs?: Record<string, unknown>;
  failedWith?: string;
}

/** The steps of a run by key; `finish` records how one ended and tells the listeners (step:end). */
export class StepStates {
  /** Every step by key, in plan order. */
  readonly all: Map<string, StepState>;
  // Steps that failed, or were skipped because something before them failed: what failure() sees.
  readonly failedUpstream = new Set<string>();

  constructor(
    private readonly plan: Plan,
    private readonly emit: (e: EngineEvent) => void,
    private readonly redactor: Redactor,
  ) {
    this.all = new Map([...plan.steps.keys()].map((k) => [k, { status: 'pending' }]));
  }

  get(key: string): StepState {
    return this.all.get(key)!;
  }

  /** The step has ended (or will not run). */
  settled(key: string): boolean {
    const s = this.get(key).status;
    return s !== 'pending' && s !== 'running';
  }

  /** The step is running from now on (attempt `attempt`). */
  start(key: string, attempt: number): void {
    const st = this.get(key);
    st.status = 'running';
    st.startedAt = Date.now();
    this.emit({ type: 'step:start', time: new Date().toISOString(), id: key, attempt });
  }

  finish(step: PlannedStep, status: StepStatus, end: StepEnd = {}): void {
    const st = this.get(step.key);
    if (
      (status === 'failed' && !step.spec.continueOnError) ||
      (status === 'skipped' && step.deps.some((d) => this.failedUpstream.has(d)))
    ) {
      this.failedUpstream.add(step.key);
    }
    st.status = status;
    if (end.outputs) st.outputs = end.outputs;
    if (end.error) st.error = end.error;
    if (end.failedWith) st.failedWith = end.failedWith;
    st.durationMs = st.startedAt ? Date.now() - st.startedAt : 0;
    this.emit({
      type: 'step:end',
      time: new Date().toISOString(),
      id: step.key,
      status,
      durationMs: st.durationMs,
      ...(end.error && { error: end.error }),
      ...(end.reason && { reason: end.reason }),
      ...(end.outputs && { outputs: this.redactor.redactValue(end.outputs) }),
      ...(typeof end.outputs?.bytes === 'number' && { bytes: end.outputs.bytes }),
    });
  }

  /** A step failed that the pipeline does not tolerate (continue_on_error). */
  anyFailed(): boolean {
    return [...this.all].some(([k, s]) => s.status === 'failed' && !this.plan.steps.get(k)!.spec.continueOnError);
  }

  /** The steps that failed the run so far, and the error line naming where the failure started and why. */
  failureSoFar(): { failed: string[]; error?: string } {
    const failed = [...this.all].filter(([k, s]) => s.status === 'failed' && !this.plan.steps.get(k)!.spec.continueOnError).map(([k]) => k);
    if (!failed.length) return { failed };
    const origin = failed.find((k) => !this.get(k).failedWith) ?? failed[0]!;
    const reason = this.get(origin).error;
    return {
      failed,
      error: `${failed.map((f) => `"${f}"`).join(', ')} failed${reason ? ` — "${origin}": ${reason}` : ''}`,
    };
  }
}
