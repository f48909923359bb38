// Holding a commit barrier on several databases at once: what a coordinated snapshot and a recovery mark share.
import { setTimeout as sleep } from 'node:timers/promises';
import { DbflowError } from '../errors.js';
import type { DriverContext } from './types.js';

/** A participant's barrier, as the loop drives it. */
export interface BarrierHolder {
  /** Optional: what can be done before blocking commits without blocking them (MariaDB's first backup stages). */
  ready?(timeoutMs: number): Promise<string | undefined>;
  block(timeoutMs: number): Promise<string | undefined>;
  release(): Promise<void>;
}

export interface HoldOptions {
  /** How long to keep trying to hold every barrier at once. */
  totalMs: number;
  /** How long one try waits for a lock before it releases every barrier and tries again. */
  attemptMs: number;
  /** What is being taken, for messages (`snapshot`, `mark`). */
  what: string;
  /** The settings that raise the limits, for messages. */
  settings: string;
}

/** Every barrier held: when each was acquired (performance.now()), and after how many tries. */
export interface AllHeld {
  attempts: number;
  acquired: Map<string, number>;
  /** When the last barrier was acquired: from then on nothing commits on any participant. */
  allHeld: number;
}

/**
 * Tries until `totalMs` to block commits on every participant at once (in parallel, each waiting at most
 * `attemptMs`); a try where any barrier could not be had releases every barrier at once and tries again after a
 * short random pause. Resolves with every barrier held; the caller works under them, then releases each. A
 * participant's error, or the time running out, rejects (the caller aborts every participant).
 */
export async function holdEveryBarrier(
  ctx: DriverContext,
  parts: readonly (readonly [name: string, holder: BarrierHolder])[],
  o: HoldOptions,
): Promise<AllHeld> {
  const deadline = performance.now() + o.totalMs;
  for (let attempt = 1; ; attempt++) {
    ctx.signal.throwIfAborted();
    const wait = Math.round(Math.max(100, Math.min(o.attemptMs, deadline - performance.now())));
    const acquired = new Map<string, number>();
    // Every participant made ready first, then every barrier taken at once: none holds its barrier while another
    // passes stages that do not block commits.
    const readied = await Promise.allSettled(parts.map(async ([, p]) => p.ready?.(wait)));
    const notReady = readied.some((t) => t.status === 'rejected' || t.value !== undefined);
    const tries = notReady
      ? readied
      : await Promise.allSettled(
          parts.map(async ([name, p]) => {
            const blocked = await p.block(wait);
            if (blocked === undefined) acquired.set(name, performance.now());
            return blocked;
          }),
        );
    const failed = tries.find((t) => t.status === 'rejected');
    if (failed) throw failed.reason;
    const blocked = tries.flatMap((t, i) =>
      t.status === 'fulfilled' && t.value !== undefined ? [`database "${parts[i]![0]}": ${t.value}`] : [],
    );
    if (!blocked.length) return { attempts: attempt, acquired, allHeld: performance.now() };
    await Promise.all(parts.map(([, p]) => p.release())); // nothing taken: commits go on at once
    if (performance.now() >= deadline) {
      throw new DbflowError(
        `${o.what}: could not block commits on every database at once within ${o.totalMs} ms (${attempt} ${attempt === 1 ? 'try' : 'tries'}, each waiting at most ${o.attemptMs} ms; ${o.settings}): ${blocked.join('; ')}. End that session or raise ${o.settings.split(',')[0]}, then run again.`,
      );
    }
    ctx.log.info(`one cut: try ${attempt} could not hold every barrier (${blocked.join('; ')}); released them all, trying again`);
    await sleep(50 + Math.random() * 200, undefined, { signal: ctx.signal });
  }
}

/**
 * Prepares every participant in parallel (`prepare` connects and reads; nothing is blocked yet). One that cannot be
 * prepared aborts those that were, and its error is thrown.
 */
export async function prepareEvery<T extends { abort(): Promise<void> }>(
  names: readonly string[],
  prepare: (name: string) => Promise<T>,
): Promise<[string, T][]> {
  const settled = await Promise.allSettled(names.map(async (name): Promise<[string, T]> => [name, await prepare(name)]));
  const parts = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(parts.map(([, p]) => p.abort()));
    throw failed.reason;
  }
  return parts;
}
