// Engine events as JSON lines (`dbflow run --json`), with snake_case keys like every JSON dbflow prints.
import type { EngineEvent } from '../engine/events.js';

/** `bytesPerSecond` → `bytes_per_second`. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * One event as one line of JSON. Only the event's own keys are renamed: what it carries inside is already
 * snake_case (`summary`, `steps`) or belongs to a plugin (`outputs`, as the step returned them).
 */
export function jsonEventLine(e: EngineEvent): string {
  return JSON.stringify(Object.fromEntries(Object.entries(e).map(([k, v]) => [snakeCase(k), v as unknown])));
}

/** A listener that writes each event as a line, and nothing after `run:end` (later events stay in the run record). */
export function jsonRenderer(write: (line: string) => void): (e: EngineEvent) => void {
  let ended = false;
  return (e) => {
    if (ended) return;
    ended = e.type === 'run:end';
    write(jsonEventLine(e));
  };
}
