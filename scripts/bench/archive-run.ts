// What the archive sections share: a test context for the throwaway-server helpers, `dbflow archive -v` with its
// "stored" lines read as they come, waiting for a condition, and percentiles.
import { spawn } from 'node:child_process';
import { BenchError, CLI } from './util.js';

/** A `t` for the test helpers: a skip is a bench error; `cleanup()` runs what they registered, last first. */
export function benchContext(): {
  t: { skip: (m?: string) => never; after: (fn: () => unknown) => void };
  defer: (fn: () => unknown) => void;
  cleanup: () => Promise<void>;
} {
  const cleanups: (() => unknown)[] = [];
  const defer = (fn: () => unknown): void => void cleanups.push(fn);
  return {
    t: {
      skip: (m?: string) => {
        throw new BenchError(m ?? 'skipped');
      },
      after: defer,
    },
    defer,
    cleanup: async () => {
      for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
    },
  };
}

/** `dbflow archive -v <pipeline>` in `dir`; `onLine` hears each line of its log as it is written. */
export function archiveVerbose(
  setup: { pipeline: string; dir: string; env: Record<string, string> },
  onLine: (line: string) => void,
): { stop: () => Promise<void> } {
  const child = spawn(process.execPath, [CLI, 'archive', setup.pipeline, '-v'], {
    cwd: setup.dir,
    env: { ...process.env, ...setup.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let rest = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    const lines = (rest + text).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Waits until `check()` holds, or fails naming `what`. */
export async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new BenchError(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The p-th percentile of `xs`. */
export const percentile = (xs: number[], p: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
