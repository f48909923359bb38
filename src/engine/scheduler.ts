// Starts the units of a plan as their dependencies settle, at most `concurrency` at once.
import type { Unit } from '../plan/plan.js';

export interface SchedulerHooks {
  /** Most units running at once. */
  concurrency: number;
  /** The step has ended (or will not run). */
  settled: (key: string) => boolean;
  /** Whether a unit whose dependencies have settled runs (its `if`, how its dependencies ended). */
  decide: (unit: Unit) => { run: boolean; reason?: string };
  /** Runs a unit to its end; never throws for a step's failure. */
  run: (unit: Unit) => Promise<void>;
  /** A unit that does not run: its members end now, skipped or cancelled, for `reason`. */
  notRun: (unit: Unit, reason: string) => void;
  /** After each unit ends: release what is no longer needed (leases whose dependents have all settled). */
  afterEach: () => Promise<void>;
}

/** Runs `units` in dependency order until none can start any more. */
export async function schedule(units: readonly Unit[], h: SchedulerHooks): Promise<void> {
  const pending = new Set(units);
  const running = new Set<Promise<void>>();
  const ready = (unit: Unit): boolean => unit.deps.every(h.settled);
  while (pending.size || running.size) {
    for (const unit of [...pending]) {
      if (running.size >= h.concurrency) break;
      if (!ready(unit)) continue;
      pending.delete(unit);
      const verdict = h.decide(unit);
      if (!verdict.run) {
        h.notRun(unit, verdict.reason ?? '');
        continue;
      }
      const p: Promise<void> = h.run(unit).finally(() => running.delete(p));
      running.add(p);
    }
    if (running.size) await Promise.race(running);
    await h.afterEach();
    if (!running.size && pending.size && ![...pending].some(ready)) break;
  }
}
