// The `timeout` every notify step takes, and the signal that ends one delivery at it or at a cancel.
import { DURATION_PATTERN, parseDuration, timeoutSignal, type JsonSchema } from '../../src/plugin-api.js';

// The `timeout` property of a step's `with`.
export function timeoutProperty(fallback: string): JsonSchema {
  return {
    type: 'string',
    pattern: DURATION_PATTERN,
    default: fallback,
    description: `How long one delivery may take: 500ms, 10s, 1m (default ${fallback}).`,
  };
}

/** A delivery's time limit: `signal` aborts when it runs out or when the step is stopped. */
export interface Deadline {
  ms: number;
  /** As written (`10s`), for messages. */
  text: string;
  signal: AbortSignal;
  /** True when the limit ran out (not a cancel or the step's own `timeout:`). */
  expired(): boolean;
}

// A deadline of `text` (a duration) that also ends with `outer` (the step's signal).
export function deadline(outer: AbortSignal, text: string): Deadline {
  const ms = parseDuration(text);
  const timer = timeoutSignal(ms);
  return { ms, text, signal: AbortSignal.any([outer, timer]), expired: () => timer.aborted && !outer.aborted };
}
