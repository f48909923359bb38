// The TTY view: listr2 shows the run's elapsed time and every step with its state, elapsed time and, for streams, bytes and current throughput.
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { EngineEvent } from '../engine/events.js';
import { FailureLines } from './failures.js';
import { formatBytes, formatDuration } from './format.js';
import { RateWindow } from './rate.js';

type Task = ListrTaskWrapper<unknown, never, never>;
type StepEnd = Extract<EngineEvent, { type: 'step:end' }>;

interface Slot {
  title: string;
  task?: Task;
  settle?: (err?: Error) => void;
  /** An end that came before listr2 handed over the task. */
  early?: StepEnd | 'not started';
  startedAt?: number;
  attempt?: number;
  rate?: RateWindow;
  done?: boolean;
  /** What its failure shows (see FailureLines). */
  failure?: string;
}

/** How often running steps and the run's elapsed time are redrawn (ms). */
const TICK_MS = 1000;

/** A listener that drives a listr2 task list; `done` resolves when the list has finished drawing. */
export function liveRenderer(): { onEvent: (e: EngineEvent) => void; done: () => Promise<void> } {
  const slots = new Map<string, Slot>();
  const failures = new FailureLines();
  // The header line: the run's elapsed time, then how it ended (✔, ✖ failed, ↓ cancelled).
  const run: { task?: Task; finish?: () => void; startedAt: number; title: string; status?: string; ended?: boolean } = {
    startedAt: Date.now(),
    title: '',
  };
  let list: Promise<unknown> = Promise.resolve();
  let ticker: NodeJS.Timeout | undefined;
  const slot = (id: string): Slot => {
    let s = slots.get(id);
    if (!s) slots.set(id, (s = { title: id }));
    return s;
  };

  // What a running step shows: how long it has run and, once bytes flow, how many and how fast right now.
  const draw = (s: Slot): void => {
    if (!s.task || s.done || s.startedAt === undefined) return;
    const now = Date.now();
    const parts = [`${s.attempt && s.attempt > 1 ? `attempt ${s.attempt}, ` : ''}running ${formatDuration(now - s.startedAt)}`];
    if (s.rate && s.rate.bytes > 0) parts.push(`${formatBytes(s.rate.bytes)} at ${formatBytes(Math.round(s.rate.rate(now)))}/s`);
    s.task.output = parts.join(' · ');
  };
  const tick = (): void => {
    for (const s of slots.values()) draw(s);
    if (run.task && !run.ended) run.task.output = `elapsed ${formatDuration(Date.now() - run.startedAt)}`;
  };

  const end = (id: string, e: StepEnd | 'not started'): void => {
    const s = slot(id);
    if (s.done) return;
    if (!s.task || !s.settle) {
      s.early = e;
      return;
    }
    s.done = true;
    if (e === 'not started') s.task.skip(`${id}: not started`);
    else if (e.status === 'failed' && s.startedAt === undefined) s.task.skip(`${id}: not started (${s.failure})`);
    else if (e.status === 'skipped' || e.status === 'cancelled') {
      s.task.skip(
        `${id}: ${s.startedAt === undefined ? `not started (${e.status}${e.reason ? `: ${e.reason}` : ''})` : `${e.status} after ${formatDuration(e.durationMs)}`}`,
      );
    } else if (e.status === 'failed') {
      s.settle(new Error(`${id}: failed after ${formatDuration(e.durationMs)}: ${s.failure}`));
      return;
    } else
      s.task.title = `${s.title} — ${e.bytes !== undefined ? `${formatBytes(e.bytes)} in ` : 'done in '}${formatDuration(e.durationMs)}`;
    s.settle();
  };

  return {
    onEvent(e) {
      if (run.ended) return; // late lines stay in the run record, not under the summary
      if (e.type === 'run:start') {
        failures.start(e);
        run.startedAt = Date.parse(e.time) || Date.now();
        run.title = `${e.pipeline}: run ${e.runId}`;
        const header = {
          title: run.title,
          task: (_ctx: unknown, task: Task) =>
            new Promise<void>((resolve, reject) => {
              run.task = task;
              run.finish = () => {
                if (run.status === 'failed') return reject(new Error(run.title));
                if (run.status === 'cancelled') task.skip(run.title);
                else task.title = run.title;
                resolve();
              };
              if (run.ended) run.finish();
              else tick();
            }),
        };
        const steps = e.steps.map((st) => {
          slot(st.id).title = `${st.id} (${st.uses})`;
          return {
            title: slot(st.id).title,
            task: (_ctx: unknown, task: Task) =>
              new Promise<void>((resolve, reject) => {
                const s = slot(st.id);
                s.task = task;
                s.settle = (err) => (err ? reject(err) : resolve());
                if (s.startedAt === undefined) task.output = 'waiting';
                draw(s);
                if (s.early) end(st.id, s.early);
              }),
          };
        });
        const tasks = new Listr([header, ...steps], {
          concurrent: true,
          exitOnError: false,
          // listr2's own SIGINT handler exits at once (127): dbflow's handler cancels the run and cleans up instead.
          registerSignalListeners: false,
        });
        list = tasks.run().catch(() => undefined);
        ticker = setInterval(tick, TICK_MS).unref();
      } else if (e.type === 'step:start') {
        const s = slot(e.id);
        s.startedAt = Date.now();
        s.attempt = e.attempt;
        s.rate = new RateWindow();
        s.rate.add(s.startedAt, 0);
        draw(s);
      } else if (e.type === 'step:progress') {
        const s = slot(e.id);
        (s.rate ??= new RateWindow()).add(Date.now(), e.bytes);
        draw(s);
      } else if (e.type === 'step:end') {
        // Which failure is a chain's first is decided in the order the engine reports them, not the order tasks settle.
        if (e.status === 'failed') slot(e.id).failure = failures.error(e);
        end(e.id, e);
      } else if (e.type === 'run:end') {
        run.ended = true;
        clearInterval(ticker);
        for (const [id, s] of slots) if (!s.done && !s.early) end(id, 'not started');
        run.title = `${run.title} — ${e.status} in ${formatDuration(e.durationMs)}`;
        run.status = e.status;
        run.finish?.();
      }
    },
    done: () => list.then(() => clearInterval(ticker)),
  };
}
