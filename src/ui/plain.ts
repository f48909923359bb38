// Plain timestamped lines for logs and CI (no TTY).
import type { EngineEvent } from '../engine/events.js';
import { formatBytes, formatDuration } from './format.js';

/** A listener that writes one line per meaningful event. */
export function plainRenderer(write: (line: string) => void, verbose = false): (e: EngineEvent) => void {
  const lastProgress = new Map<string, number>();
  return (e) => {
    const at = e.time.slice(11, 19);
    switch (e.type) {
      case 'run:start':
        return write(`${at} run ${e.runId}: ${e.pipeline}, ${e.steps.length} steps`);
      case 'step:start':
        return write(`${at} ${e.id}: started${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
      case 'step:retry':
        return write(`${at} ${e.id}: attempt ${e.attempt} failed (${e.error}); retrying in ${formatDuration(e.delayMs)}`);
      case 'step:progress': {
        const prev = lastProgress.get(e.id) ?? 0;
        if (Date.parse(e.time) - prev < 5000) return;
        lastProgress.set(e.id, Date.parse(e.time));
        return write(`${at} ${e.id}: ${formatBytes(e.bytes)} (${formatBytes(e.bytesPerSecond)}/s)`);
      }
      case 'step:log':
        if (e.level === 'debug' && !verbose) return;
        return write(`${at} ${e.id}: ${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
      case 'step:end': {
        const bytes = e.bytes !== undefined ? `, ${formatBytes(e.bytes)}` : '';
        if (e.status === 'success') return write(`${at} ${e.id}: done in ${formatDuration(e.durationMs)}${bytes}`);
        if (e.status === 'failed') return write(`${at} ${e.id}: FAILED: ${e.error ?? ''}`);
        return write(`${at} ${e.id}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`);
      }
      case 'run:end':
        return;
    }
  };
}
