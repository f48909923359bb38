// One consistent cut across several databases: every barrier held at once while every snapshot is taken.
import {
  DbflowError,
  holdEveryBarrier,
  prepareEvery,
  type CoordinationRecord,
  type DriverContext,
  type DriverSnapshot,
  type SnapshotParticipant,
} from '../../src/plugin-api.js';

/** The guarantee of a coordinated snapshot, as the manifest states it. */
export const GUARANTEE =
  'Every snapshot was taken while the commit barriers on all participants were held at the same time: ' +
  'if a write on one participant is in the backup, every write that committed before it on any participant is in it too.';

export interface CoordinateOptions {
  /** How long to keep trying to hold every barrier at once. */
  totalMs: number;
  /** How long one try waits for a lock before it releases every barrier and tries again. */
  attemptMs: number;
}

type Part = readonly [name: string, participant: SnapshotParticipant];

/**
 * Prepares every participant, then tries until `totalMs` to block commits on all of them at once
 * (in parallel, each waiting at most `attemptMs`); with all barriers held it takes every snapshot,
 * then releases every barrier and opens the snapshots. On any failure every barrier is released at once.
 */
export async function coordinatedSnapshot(
  ctx: DriverContext,
  names: readonly string[],
  o: CoordinateOptions,
): Promise<{ held: Map<string, DriverSnapshot>; record: CoordinationRecord }> {
  const parts = await prepare(ctx, names);
  const abortAll = (): Promise<unknown> => Promise.allSettled(parts.map(([, p]) => p.abort()));
  try {
    const {
      attempts: attempt,
      acquired,
      allHeld,
    } = await holdEveryBarrier(ctx, parts, {
      ...o,
      what: 'snapshot',
      settings: 'barrier_timeout, lock_timeout',
    });
    // Every barrier is held: nothing commits on any participant until they are released.
    const took = new Map<string, number>();
    await Promise.all(
      parts.map(async ([name, p]) => {
        await p.take(ctx.run.id);
        took.set(name, performance.now());
      }),
    );
    const released = new Map<string, number>();
    await Promise.all(
      parts.map(async ([name, p]) => {
        await p.release();
        released.set(name, performance.now());
      }),
    );
    ctx.log.debug(
      `one cut, per participant: ${parts
        .map(
          ([n]) =>
            `${n} held ${ms(allHeld - acquired.get(n)!)} ms before all were, took the snapshot in ${ms(took.get(n)! - allHeld)} ms, released after ${ms(released.get(n)! - took.get(n)!)} ms`,
        )
        .join('; ')}`,
    );
    const held = new Map<string, DriverSnapshot>();
    for (const [name, p] of parts) held.set(name, await p.open());
    return { held, record: record(ctx, parts, attempt, acquired, released) };
  } catch (err) {
    await abortAll();
    throw err;
  }
}

// Every participant prepared in parallel (connections, scope, tools); none blocks anything yet.
async function prepare(ctx: DriverContext, names: readonly string[]): Promise<Part[]> {
  return prepareEvery(names, async (name) => {
    const { config, driver } = ctx.database(name);
    if (!driver.participate) {
      throw new DbflowError(
        `database "${name}" (driver "${driver.name}") cannot take part in a coordinated snapshot; set "coordinated: false" or snapshot it in a step of its own.`,
      );
    }
    return driver.participate(ctx, { db: config });
  });
}

const at = (t: number): string => new Date(performance.timeOrigin + t).toISOString();
const ms = (t: number): number => Math.round(t * 100) / 100;

function record(
  ctx: DriverContext,
  parts: readonly Part[],
  attempts: number,
  acquired: Map<string, number>,
  released: Map<string, number>,
): CoordinationRecord {
  const barriers: NonNullable<CoordinationRecord['barriers']> = {};
  for (const [name, p] of parts) {
    const a = acquired.get(name)!;
    const r = released.get(name)!;
    barriers[name] = { method: p.method, acquired_at: at(a), released_at: at(r), held_ms: ms(r - a) };
  }
  const blockedMs = Math.max(...Object.values(barriers).map((b) => b.held_ms));
  const notCovered = parts.flatMap(([, p]) => p.notCovered);
  ctx.log.info(
    `one cut over ${parts.map(([n]) => n).join(', ')}: commits blocked for at most ${blockedMs} ms (${Object.entries(barriers)
      .map(([n, b]) => `${n} ${b.held_ms} ms`)
      .join(', ')})${attempts > 1 ? ` after ${attempts} tries` : ''}`,
  );
  if (notCovered.length) ctx.log.warn(`the barrier does not hold still: ${notCovered.join('; ')}`);
  return {
    step: ctx.stepId,
    coordinated: true,
    participants: parts.map(([n]) => n),
    guarantee: GUARANTEE,
    blocked_ms: blockedMs,
    attempts,
    barriers,
    ...(notCovered.length && { not_covered: notCovered }),
  };
}
