// Plain timestamped lines for logs and CI (no TTY).
import type { EngineEvent } from '../engine/events.js';
import { FailureLines } from './failures.js';
import { formatBytes, formatDuration } from './format.js';
import { RateWindow } from './rate.js';

/** How much a plain renderer says: `verbose` adds debug lines, `quiet` (cron) keeps only failures. */
export type PlainLevel = 'quiet' | 'normal' | 'verbose';

/** A listener that writes one line per meaningful event, each failure once, and nothing after the run's end. */
export function plainRenderer(out: (line: string) => void, level: PlainLevel | boolean = 'normal'): (e: EngineEvent) => void {
  const verbose = level === true || level === 'verbose';
  const quiet = level === 'quiet';
  // Quiet: only the lines that say a step failed.
  const write = (line: string, failure = false): void => {
    if (!quiet || failure) out(line);
  };
  const lastProgress = new Map<string, number>();
  const failures = new FailureLines();
  const started = new Set<string>();
  const rates = new Map<string, RateWindow>();
  let ended = false;
  return (e) => {
    if (ended) return; // late lines (a plugin logging after its step) stay in the run record, not after the summary
    const at = e.time.slice(11, 19);
    switch (e.type) {
      case 'run:start':
        failures.start(e);
        return write(`${at} run ${e.runId}: ${e.pipeline}, ${e.steps.length} ${e.steps.length === 1 ? 'step' : 'steps'}`);
      case 'step:start':
        started.add(e.id);
        rates.set(e.id, new RateWindow()).get(e.id)!.add(Date.parse(e.time), 0);
        return write(`${at} ${e.id}: started${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
      case 'step:retry':
        return write(`${at} ${e.id}: attempt ${e.attempt} failed (${e.error}); retrying in ${formatDuration(e.delayMs)}`);
      case 'step:progress': {
        const t = Date.parse(e.time);
        const rate = rates.get(e.id) ?? rates.set(e.id, new RateWindow()).get(e.id)!;
        rate.add(t, e.bytes);
        const prev = lastProgress.get(e.id) ?? 0;
        if (t - prev < 5000) return;
        lastProgress.set(e.id, t);
        return write(`${at} ${e.id}: ${formatBytes(e.bytes)} (${formatBytes(Math.round(rate.rate(t)))}/s)`);
      }
      case 'step:log':
        if (e.level === 'debug' && !verbose) return;
        return write(`${at} ${e.id}: ${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
      case 'step:end': {
        const bytes = e.bytes !== undefined ? `, ${formatBytes(e.bytes)}` : '';
        if (e.status === 'success') return write(`${at} ${e.id}: done in ${formatDuration(e.durationMs)}${bytes}`);
        if (!started.has(e.id))
          return write(
            `${at} ${e.id}: not started (${e.status === 'failed' ? failures.error(e) : `${e.status}${e.reason ? `: ${e.reason}` : ''}`})`,
            e.status === 'failed',
          );
        if (e.status === 'failed') return write(`${at} ${e.id}: FAILED after ${formatDuration(e.durationMs)}: ${failures.error(e)}`, true);
        return write(`${at} ${e.id}: ${e.status} after ${formatDuration(e.durationMs)}`);
      }
      case 'run:end':
        ended = true;
        return;
    }
  };
}
