// Whether a unit runs, given its `if:` and how the steps before it ended.
import type { Unit } from '../plan/plan.js';
import type { StepStatus } from './events.js';

/** What a condition can see of the run. */
export interface ConditionScope {
  status(key: string): StepStatus | 'pending' | 'running';
  /** A failure of this step does not count (`continue_on_error`). */
  tolerated(key: string): boolean;
  /** Steps that failed, or were skipped because something before them failed. */
  failedUpstream: ReadonlySet<string>;
  /** Some step of the run failed (what a `finally` step's failure() sees). */
  anyFailed: boolean;
  cancelled: boolean;
}

/** `{ run: true }`, or why the unit is skipped. */
export function decideUnit(unit: Unit, scope: ConditionScope): { run: boolean; reason?: string } {
  const head = unit.members[0]!;
  const cond = head.spec.if;
  const bad = unit.deps.find((d) => scope.status(d) !== 'success' && !(scope.status(d) === 'failed' && scope.tolerated(d)));
  const anyFailed = head.spec.finally ? scope.anyFailed : unit.deps.some((d) => scope.failedUpstream.has(d));
  if (cond === 'always()') return { run: true };
  if (cond === 'cancelled()') return scope.cancelled ? { run: true } : { run: false, reason: 'the run was not cancelled' };
  if (scope.cancelled) return { run: false, reason: 'the run was cancelled' };
  if (cond === 'failure()') return anyFailed ? { run: true } : { run: false, reason: 'nothing failed' };
  if (head.spec.finally) return anyFailed ? { run: false, reason: 'a step failed' } : { run: true };
  if (bad === undefined) return { run: true };
  const status = scope.status(bad);
  return { run: false, reason: `"${bad}" ${status === 'failed' ? 'failed' : `was ${status}`}` };
}

/** Delay before retry `attempt + 1`. */
export function backoff(kind: 'constant' | 'linear' | 'exponential', delayMs: number, attempt: number): number {
  if (kind === 'constant') return delayMs;
  if (kind === 'linear') return delayMs * attempt;
  return delayMs * 2 ** (attempt - 1);
}
