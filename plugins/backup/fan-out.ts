// One stream to several destinations at once: each chunk goes to every branch still writing, and the next chunk
// is read only once each of them has taken the last one — the slowest destination sets the pace, memory stays flat.
import { PassThrough, type Readable } from 'node:stream';

/** What a branch holds before it tells the source to wait: a few of a dump's 1 MiB chunks. */
const BRANCH_BUFFER = 1 << 20;

/** The branches of one stream, one per destination. */
export interface FanOut {
  /** The stream of each destination, in order: every byte of the source, or destroyed with the error that ended it. */
  readonly branches: readonly PassThrough[];
  /** Stops writing to branch `i` (its destination failed) and destroys it; the others go on. */
  drop(i: number, err: Error): void;
  /** Stops reading and destroys every branch with `err`. */
  abort(err: Error): void;
  /**
   * Settles once the source has ended and every branch still writing was ended (resolves), or the source failed
   * (rejects with its error, every branch destroyed with it). Reading stops early, without an error, when every
   * branch was dropped or the fan-out was aborted (which destroys the source).
   */
  readonly done: Promise<void>;
}

/** Splits `source` into `count` branches, read together with back-pressure. */
export function fanOut(source: Readable, count: number): FanOut {
  const branches = Array.from({ length: count }, () => {
    const branch = new PassThrough({ highWaterMark: BRANCH_BUFFER });
    // A destination that gave up no longer listens; the error it ended with is its own put's.
    branch.on('error', () => undefined);
    // A destination may destroy its stream itself (a put that failed or was aborted): it is written to no more.
    branch.on('close', () => live.delete(branch));
    return branch;
  });
  const live = new Set(branches);
  let stopped = false;
  const end = (branch: PassThrough, err: Error): void => {
    if (live.delete(branch)) branch.destroy(err);
  };

  const pump = async (): Promise<void> => {
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (stopped || !live.size) return; // leaving the loop destroys the source: nobody takes its bytes
        const full = [...live].filter((b) => !b.destroyed && !b.write(chunk));
        if (full.length) await Promise.all(full.map((b) => drained(b, live)));
        if (stopped || !live.size) return;
      }
    } catch (err) {
      if (stopped) return; // aborted: the source was destroyed on purpose
      for (const b of [...live]) end(b, err as Error);
      throw err;
    }
    for (const b of live) b.end();
  };

  return {
    branches,
    drop: (i, err) => end(branches[i]!, err),
    abort(err) {
      stopped = true;
      for (const b of [...live]) end(b, err);
      source.destroy(); // a source that stalls must not hold the step
    },
    done: pump(),
  };
}

// Resolves once `branch` has room again, or is no longer written to.
function drained(branch: PassThrough, live: ReadonlySet<PassThrough>): Promise<void> {
  if (!live.has(branch) || branch.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      branch.off('drain', done).off('close', done);
      resolve();
    };
    branch.on('drain', done).on('close', done);
  });
}
