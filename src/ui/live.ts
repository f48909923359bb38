// The TTY view: listr2 shows every step with its state and, for streams, bytes and throughput.
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { EngineEvent } from '../engine/events.js';
import { formatBytes } from './format.js';

type Task = ListrTaskWrapper<unknown, never, never>;

/** A listener that drives a listr2 task list; `done` resolves when the list has finished drawing. */
export function liveRenderer(): { onEvent: (e: EngineEvent) => void; done: () => Promise<void> } {
  const waiting = new Map<string, { task?: Task; settle?: (err?: Error) => void; early?: EngineEvent; started?: boolean }>();
  let list: Promise<unknown> = Promise.resolve();
  const slot = (id: string) => {
    let s = waiting.get(id);
    if (!s) waiting.set(id, (s = {}));
    return s;
  };
  const end = (e: Extract<EngineEvent, { type: 'step:end' }>): void => {
    const s = slot(e.id);
    if (!s.task || !s.settle) {
      s.early = e;
      return;
    }
    if (e.status === 'skipped' || e.status === 'cancelled') {
      s.task.skip(`${e.id}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`);
      s.settle();
    } else if (e.status === 'failed') s.settle(new Error(`${e.id}: ${e.error ?? 'failed'}`));
    else {
      if (e.bytes !== undefined) s.task.title = `${s.task.title} — ${formatBytes(e.bytes)}`;
      s.settle();
    }
  };
  return {
    onEvent(e) {
      if (e.type === 'run:start') {
        const tasks = new Listr(
          e.steps.map((st) => ({
            title: `${st.id} (${st.uses})`,
            task: (_ctx: unknown, task: Task) =>
              new Promise<void>((resolve, reject) => {
                const s = slot(st.id);
                s.task = task;
                if (!s.started) task.output = 'waiting';
                s.settle = (err) => (err ? reject(err) : resolve());
                if (s.early) end(s.early as Extract<EngineEvent, { type: 'step:end' }>);
              }),
          })),
          { concurrent: true, exitOnError: false },
        );
        list = tasks.run().catch(() => undefined);
      } else if (e.type === 'step:start') {
        const s = slot(e.id);
        s.started = true;
        if (s.task) s.task.output = e.attempt > 1 ? `attempt ${e.attempt}` : 'running';
      } else if (e.type === 'step:progress') {
        const t = waiting.get(e.id)?.task;
        if (t) t.output = `${formatBytes(e.bytes)} at ${formatBytes(e.bytesPerSecond)}/s`;
      } else if (e.type === 'step:end') end(e);
    },
    done: () => list.then(() => undefined),
  };
}
