// A recovery mark: every participant's commit barrier held at once, only long enough to record the same point in each
// one's log; then the record is stored in the repository.
import { DbflowError } from '../errors.js';
import { holdEveryBarrier, prepareEvery } from '../plugins/barrier-loop.js';
import type { DatabaseConfig, DatabaseDriver, DriverContext, Storage } from '../plugins/types.js';
import { markName, writeMark, type MarkedDatabase, type MarkRecord } from '../repo/marks.js';

/** One database to mark: its entry and driver. */
export interface MarkTarget {
  name: string;
  config: DatabaseConfig;
  driver: DatabaseDriver;
}

export interface MarkOptions {
  pipeline: string;
  /** The repository the record goes to, and its storage. */
  repo: string;
  storage: Storage;
  /** How long to keep trying to hold every barrier at once. */
  barrierTimeoutMs: number;
}

/**
 * Prepares every participant (connections, scope: nothing blocked), holds every barrier at once, records the point
 * in each log side by side, releases every barrier at once, and stores the record. Any failure releases every barrier
 * and ends every connection before it is thrown; nothing is stored then.
 */
export async function takeMark(
  ctx: DriverContext,
  targets: readonly MarkTarget[],
  o: MarkOptions,
): Promise<{ record: MarkRecord; url: string }> {
  const parts = await prepareEvery(
    targets.map((t) => t.name),
    async (name) => {
      const t = targets.find((x) => x.name === name)!;
      if (!t.driver.markParticipant)
        throw new DbflowError(`database "${name}" (driver "${t.driver.name}") cannot record a mark in its log.`);
      return t.driver.markParticipant(ctx, { db: t.config });
    },
  );
  try {
    const held = await holdEveryBarrier(ctx, parts, {
      totalMs: o.barrierTimeoutMs,
      attemptMs: Math.round(Math.max(100, Math.min(1000, o.barrierTimeoutMs / 3))),
      what: 'mark',
      settings: 'marks.barrier_timeout',
    });
    // Every barrier is held: nothing commits on any participant until they are released.
    const name = markName(new Date(performance.timeOrigin + held.allHeld));
    const positions = await Promise.all(parts.map(([, p]) => p.mark(name)));
    const released = new Map<string, number>();
    await Promise.all(
      parts.map(async ([n, p]) => {
        await p.release();
        released.set(n, performance.now());
      }),
    );
    const participants: Record<string, MarkedDatabase> = {};
    parts.forEach(([n, p], i) => {
      participants[n] = {
        driver: targets[i]!.driver.name,
        method: p.method,
        position: positions[i]!,
        held_ms: round(released.get(n)! - held.acquired.get(n)!),
      };
    });
    const record: MarkRecord = {
      format: 1,
      name,
      pipeline: o.pipeline,
      time: new Date(performance.timeOrigin + held.allHeld).toISOString(),
      participants,
      blocked_ms: Math.max(...Object.values(participants).map((p) => p.held_ms)),
      attempts: held.attempts,
    };
    const url = await writeMark(o.storage, o.repo, record, ctx.signal);
    return { record, url };
  } finally {
    await Promise.allSettled(parts.map(([, p]) => p.abort()));
  }
}

const round = (ms: number): number => Math.round(ms * 100) / 100;
