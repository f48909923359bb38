// Runs one unit's members: a task alone, or a stream chain source → transforms → sink as one pipeline.
import { pipeline, type Readable } from 'node:stream';
import { ChainFailure, DbflowError } from '../errors.js';
import type { PlannedStep } from '../plan/plan.js';
import { programOutputOf, type ProgramOutput } from '../plugins/process-stream.js';
import type { ChainStage, EdgeStats, InputPipe, StepContext, StepResult } from '../plugins/types.js';
import type { StreamWiring } from './context.js';
import { Meter } from './meter.js';

/** What running a unit's members needs from the engine. */
export interface MemberRunner {
  /** Creates the context of a member (renders and checks its `with`). */
  context(step: PlannedStep, wiring: StreamWiring): StepContext;
  started(step: PlannedStep, ctx: StepContext): void;
  progress(step: PlannedStep, bytes: number): void;
  /** Whether a template reads the sha256 of this step's stream. */
  hashed(step: PlannedStep): boolean;
  /** A member's run() that the chain stopped waiting for (cancelled or timed out) while it still runs. */
  abandoned?(step: PlannedStep, running: Promise<unknown>): void;
}

/** How long a stream closed by its reader waits for that reader's own error before it is reported itself. */
const BLAME_WAIT_MS = 30_000;

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
      const running = m.def.run(ctx);
      running.catch(() => undefined);
      const res = await untilAborted(running, ctx.signal).catch((err: unknown) => {
        runner.abandoned?.(m, running);
        throw err;
      });
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

  // When each member's part of the chain has settled (its stream ended or failed; the sink's run returned or threw).
  const settled = new Map(members.map((m) => [m.key, deferred()]));
  // (A member that closed its input and then neither ends nor fails is given up on after BLAME_WAIT_MS: no chain hangs on it.)
  const settledOf = (key: string | undefined): Promise<void> => {
    if (!key) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, BLAME_WAIT_MS)));
    return Promise.race([settled.get(key)!.promise, failed.catch(() => undefined), waited]).finally(() => clearTimeout(timer));
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
    const finals = new Map<string, Promise<Record<string, unknown>>>();
    const chain: ChainStage[] = [];
    const edges: Edge[] = [];
    let edge: Edge | undefined;
    let sinkDone: Promise<StepResult> | undefined;

    // The stream of `m` to the next member: read through a Meter once that member reads `input`, or,
    // when it is a program's unread stdout, handed to that member's program as its stdin.
    const openEdge = (
      m: PlannedStep,
      output: Readable,
      hashed: boolean,
      program: ProgramOutput | undefined,
      consumer: string | undefined,
    ): Edge => {
      const meter = new Meter((bytes) => runner.progress(m, bytes), hashed);
      streams.push(output, meter);
      let resolveCounted!: (s: EdgeStats) => void;
      const counted = new Promise<EdgeStats>((resolve) => (resolveCounted = resolve));
      const e: Edge = {
        key: m.key,
        state: 'open',
        stats: Promise.race([meter.stats, counted]),
        connect() {
          if (e.state !== 'open') return meter;
          e.state = 'connected';
          // A stream that fails only because the member reading it closed it early (a write that failed, a step that
          // gave up) is not where the chain failed: that member's own error, once it has settled, names the cause.
          let failedItself = false;
          output.once('error', () => (failedItself ||= !meter.destroyed));
          done.push(
            new Promise<void>((resolve) => {
              pipeline(output, meter, (err) => {
                const blame = err && !failedItself ? settledOf(consumer) : Promise.resolve();
                void blame.then(() => {
                  if (err) fail(m.key, err);
                  settled.get(m.key)!.resolve();
                  resolve();
                });
              });
            }),
          );
          return meter;
        },
        pipe() {
          if (e.state !== 'open' || !program) return undefined;
          const taken = program.take();
          if (!taken) return undefined;
          e.state = 'handed';
          output.on('error', () => undefined); // its program's exit status is what counts, through `exited`
          done.push(
            program.exited.then(
              () => settled.get(m.key)!.resolve(),
              (err: unknown) => {
                // Its reader's own failure (it died, so the writer got EPIPE) names the cause first.
                void settledOf(consumer).then(() => {
                  fail(m.key, err);
                  settled.get(m.key)!.resolve();
                });
              },
            ),
          );
          return {
            fd: taken.fd,
            given: taken.release,
            counted: (bytes: number) => {
              e.counted = bytes;
              resolveCounted({ bytes });
            },
          };
        },
      };
      edges.push(e);
      return e;
    };
    // (`input` stays a getter: reading it is what connects the edge.)
    const wiring = (from: Edge | undefined): StreamWiring =>
      from
        ? {
            get input() {
              return from.connect();
            },
            takePipe: () => from.pipe(),
            inputStats: from.stats,
            chain: [...chain],
          }
        : { chain: [...chain] };

    for (const m of members) {
      if (failure) break;
      const from = edge;
      const ctx = runner.context(m, wiring(from));
      runner.started(m, ctx);
      if (m.def.kind === 'sink') {
        sinkDone = m.def.run(ctx);
        sinkDone.catch((err: unknown) => fail(m.key, err)).finally(settled.get(m.key)!.resolve);
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
      from?.connect(); // a member that neither read its input nor took its pipe: the bytes still flow (and are checked)
      if (failure) {
        res.output?.destroy(); // the chain failed while this step started: its stream must not run
        break;
      }
      if (!res.output) {
        fail(m.key, new DbflowError(`step "${m.key}" (${m.def.uses}) is a ${m.def.kind} step but returned no output stream.`));
        break;
      }
      // The hash costs CPU on every byte: what the sink stores and what a template reads are always hashed;
      // the source's output is hashed when it passes through here (its program may hand it to the next one instead).
      const index = members.indexOf(m);
      const needsHash = members[index + 1]?.def.kind === 'sink' || runner.hashed(m);
      edge = openEdge(
        m,
        res.output,
        index === 0 || needsHash,
        needsHash ? undefined : programOutputOf(res.output),
        members[index + 1]?.key,
      );
      if (res.final) finals.set(m.key, res.final);
      outputs.set(m.key, { ...(res.outputs ?? {}) });
      chain.push({ id: m.key, uses: m.def.uses, outputs: { ...(res.outputs ?? {}) }, stats: edge.stats });
    }
    if (failure) {
      await Promise.allSettled(done);
      throw failure;
    }
    const sink = members.at(-1)!;
    try {
      const res = await Promise.race([sinkDone!, failed]);
      const input = edge;
      if (input?.state === 'open') input.connect(); // a sink that never touched its input: reported just below
      await Promise.race([Promise.all(done), failed]);
      if (input?.state === 'connected' && !input.connect().readableEnded)
        throw new ChainFailure(sink.key, new DbflowError(`step "${sink.key}" finished without reading all of its input.`));
      const uncounted = edges.find((e) => e.state === 'handed' && e.counted === undefined);
      if (uncounted) {
        const reader = members[members.findIndex((x) => x.key === uncounted.key) + 1]!.key;
        throw new ChainFailure(
          reader,
          new DbflowError(`step "${reader}" took its input's pipe but did not report how many bytes it read.`),
        );
      }
      outputs.set(sink.key, { ...(res?.outputs ?? {}) });
    } catch (err) {
      fail(sink.key, err);
      await Promise.allSettled(done);
      throw failure ?? err;
    }
    for (const e of edges) {
      const key = e.key;
      const s = await e.stats;
      let late: Record<string, unknown>;
      try {
        late = (await finals.get(key)) ?? {};
      } catch (err) {
        throw new ChainFailure(key, err);
      }
      outputs.set(key, { ...outputs.get(key), ...late, bytes: s.bytes, ...(s.sha256 !== undefined && { sha256: s.sha256 }) });
    }
    return outputs;
  }
}

/** A stream edge between two members of a chain. */
interface Edge {
  key: string;
  /** open: nobody has read it yet; connected: read through the Meter; handed: a program of the next member reads it. */
  state: 'open' | 'connected' | 'handed';
  stats: Promise<EdgeStats>;
  /** Bytes the program that took the pipe reported. */
  counted?: number;
  connect(): Meter;
  pipe(): InputPipe | undefined;
}

// A promise with its resolve function at hand.
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
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
