// Runs one unit's members: a task alone, or a stream chain source → transforms → sink as one pipeline.
import { pipeline, type Readable } from 'node:stream';
import { ChainFailure, DbflowError } from '../errors.js';
import type { PlannedStep } from '../plan/plan.js';
import type { ChainStage, EdgeStats, StepContext, StepResult } from '../plugins/types.js';
import type { StreamWiring } from './context.js';
import { Meter } from './meter.js';

/** What running a unit's members needs from the engine. */
export interface MemberRunner {
  /** Creates the context of a member (renders and checks its `with`). */
  context(step: PlannedStep, wiring: StreamWiring): StepContext;
  started(step: PlannedStep, ctx: StepContext): void;
  progress(step: PlannedStep, bytes: number): void;
}

/** Outputs per member key, with bytes/sha256 of each produced stream. */
export type MemberOutputs = Map<string, Record<string, unknown>>;

/** Run the members of a unit; throws ChainFailure naming the member that failed first. */
export async function runMembers(
  members: PlannedStep[],
  runner: MemberRunner,
  signal: AbortSignal,
  abort: (reason: unknown) => void,
): Promise<MemberOutputs> {
  const outputs: MemberOutputs = new Map();
  if (members.length === 1 && members[0]!.def.kind === 'task') {
    const m = members[0]!;
    const ctx = runner.context(m, { chain: [] });
    runner.started(m, ctx);
    try {
      const res = await untilAborted(m.def.run(ctx), ctx.signal);
      if (res?.output) res.output.destroy();
      outputs.set(m.key, { ...(res?.outputs ?? {}) });
      return outputs;
    } catch (err) {
      throw new ChainFailure(m.key, err);
    }
  }

  let failure: ChainFailure | undefined;
  let rejectFailed!: (f: ChainFailure) => void;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => undefined);
  const streams: Readable[] = [];
  const fail = (at: string, err: unknown): void => {
    if (failure) return;
    failure = err instanceof ChainFailure ? err : new ChainFailure(at, err);
    abort(failure.error);
    for (const s of streams) s.destroy();
    rejectFailed(failure);
  };

  // A cancel or timeout fails the chain: every stream is destroyed, none may end as if complete.
  const onAbort = (): void => fail(members[0]!.key, signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  try {
    return await runChain();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }

  async function runChain(): Promise<MemberOutputs> {
    const done: Promise<void>[] = [];
    const stats = new Map<string, Promise<EdgeStats>>();
    const finals = new Map<string, Promise<Record<string, unknown>>>();
    const chain: ChainStage[] = [];
    let input: Readable | undefined;
    let inputStats: Promise<EdgeStats> | undefined;
    let sinkDone: Promise<StepResult> | undefined;
    for (const m of members) {
      if (failure) break;
      const ctx = runner.context(m, { ...(input && { input }), ...(inputStats && { inputStats }), chain: [...chain] });
      runner.started(m, ctx);
      if (m.def.kind === 'sink') {
        sinkDone = m.def.run(ctx);
        sinkDone.catch((err: unknown) => fail(m.key, err));
        break;
      }
      let res: StepResult;
      const running = m.def.run(ctx);
      // A step that finishes after the chain failed: its stream must not run, its late outputs are moot.
      running.then(
        (late) => {
          late.final?.catch(() => undefined);
          if (failure) late.output?.destroy();
        },
        () => undefined,
      );
      try {
        res = await Promise.race([running, failed]);
      } catch (err) {
        fail(m.key, err);
        break;
      }
      if (failure) {
        res.output?.destroy(); // the chain failed while this step started: its stream must not run
        break;
      }
      if (!res.output) {
        fail(m.key, new DbflowError(`step "${m.key}" (${m.def.uses}) is a ${m.def.kind} step but returned no output stream.`));
        break;
      }
      const meter = new Meter((bytes) => runner.progress(m, bytes));
      streams.push(res.output, meter);
      done.push(
        new Promise<void>((resolve) => {
          pipeline(res.output!, meter, (err) => {
            if (err) fail(m.key, err);
            resolve();
          });
        }),
      );
      stats.set(m.key, meter.stats);
      if (res.final) finals.set(m.key, res.final);
      outputs.set(m.key, { ...(res.outputs ?? {}) });
      chain.push({ id: m.key, uses: m.def.uses, outputs: { ...(res.outputs ?? {}) }, stats: meter.stats });
      input = meter;
      inputStats = meter.stats;
    }
    if (failure) {
      await Promise.allSettled(done);
      throw failure;
    }
    const sink = members.at(-1)!;
    try {
      const res = await Promise.race([sinkDone!, failed]);
      await Promise.race([Promise.all(done), failed]);
      if (input && !input.readableEnded)
        throw new ChainFailure(sink.key, new DbflowError(`step "${sink.key}" finished without reading all of its input.`));
      outputs.set(sink.key, { ...(res?.outputs ?? {}) });
    } catch (err) {
      fail(sink.key, err);
      await Promise.allSettled(done);
      throw failure ?? err;
    }
    for (const [key, p] of stats) {
      const s = await p;
      let late: Record<string, unknown>;
      try {
        late = (await finals.get(key)) ?? {};
      } catch (err) {
        throw new ChainFailure(key, err);
      }
      outputs.set(key, { ...outputs.get(key), ...late, bytes: s.bytes, sha256: s.sha256 });
    }
    return outputs;
  }
}

/** `p`, or a rejection with the signal's reason once it aborts: a step that ignores its signal cannot hold up a timeout or a cancel. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    void p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
