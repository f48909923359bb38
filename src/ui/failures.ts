// Each failure shown once: the step where a stream chain failed says why; the other members of its chain point at it.
import type { EngineEvent } from '../engine/events.js';

/** What to show for failed steps, from the events of one run. */
export class FailureLines {
  private readonly unitOf = new Map<string, string>();
  private readonly firstFailed = new Map<string, string>();

  /** Learns which steps share a stream chain (from `run:start`). */
  start(e: Extract<EngineEvent, { type: 'run:start' }>): void {
    for (const s of e.steps) this.unitOf.set(s.id, s.unit);
  }

  /** The error of a failed step: its own when it is the first of its chain to fail, else a pointer to that step. */
  error(e: Extract<EngineEvent, { type: 'step:end' }>): string {
    const unit = this.unitOf.get(e.id) ?? e.id;
    const first = this.firstFailed.get(unit);
    if (first !== undefined && first !== e.id) return `its stream chain failed at "${first}"`;
    this.firstFailed.set(unit, e.id);
    return e.error ?? 'failed';
  }
}
