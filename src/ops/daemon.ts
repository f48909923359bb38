// The scheduler behind `dbflow daemon`: every pipeline of a folder on its cron schedule, reloaded on save.
import path from 'node:path';
import { Cron } from 'croner';
import { Counter, Gauge, Registry } from 'prom-client';
import { loadPipeline, type LoadedPipeline, type LoadOptions } from '../engine/load.js';
import { DbflowError, LockedError, runExitCode, userErrorText } from '../errors.js';
import { formatDuration } from '../ui/format.js';
import { plainRenderer } from '../ui/plain.js';
import { ArchiveKeeper } from './archive-keeper.js';
import { MarkKeeper } from './mark-keeper.js';
import type { AuditNote } from './audit.js';
import { lockedRun, runAuditFields } from './locked-run.js';
import { indexedFinishedRuns } from './run-index.js';

export interface DaemonOptions {
  stateDir: string;
  verbose?: boolean;
  /** One line of the daemon's log (its own lines and the runs' step lines). */
  log: (line: string) => void;
  /** Wraps each run so that it leaves its audit record, like `dbflow run` does; `body` returns the run's exit code. */
  audit?: (file: string, body: (note: AuditNote) => Promise<number>) => Promise<number>;
  /**
   * With a queue: each due time is handed to this (which enqueues it) instead of run here; workers run it.
   * Archives and marks are then not kept by the daemon.
   */
  dispatch?: (loaded: LoadedPipeline, dueAt: Date) => Promise<void>;
  /** How pipeline files are validated (a scheduler for a queue validates without the workers' environment). */
  loadOptions?: LoadOptions;
  /** The past runs of a pipeline, for catching up a missed due time (default: the run records under `stateDir`). */
  history?: (pipeline: string) => Promise<PastRun[]>;
}

/** A past run of a pipeline: when it was due (or, without a due time, started), and how it ended. */
export interface PastRun {
  at: number;
  status: string;
}

// A run that ended so did not do its work (or, in a fleet, a due time skipped while the previous run still held
// the lease): its due time still counts as missed.
const DID_NOT_RUN = new Set(['killed', 'cancelled', 'skipped']);

interface Running {
  controller: AbortController;
  done: Promise<void>;
  runId?: string;
}

interface Entry {
  file: string;
  /** The last version that validated: what runs, even after a broken edit. */
  loaded?: LoadedPipeline;
  loadedAt?: Date;
  job?: Cron;
  /** The due time the schedule fires for next: every daemon computes the same from the cron expression. */
  expected?: Date;
  running?: Running;
  queued: boolean;
}

/** Schedules, reloads and runs pipelines; `stop()` cancels running runs and waits for them. */
export class Daemon {
  readonly metrics = new Registry();
  private readonly entries = new Map<string, Entry>();
  private stopping = false;
  private readonly dispatching = new Set<Promise<void>>();
  private readonly scheduled = new Counter({
    name: 'dbflow_daemon_runs_started_total',
    help: 'Scheduled runs the daemon started.',
    labelNames: ['pipeline'],
    registers: [this.metrics],
  });
  private readonly skipped = new Counter({
    name: 'dbflow_daemon_runs_skipped_total',
    help: 'Scheduled runs not started: reason="overlap" (the previous run still ran, overlap: skip, or a run was already queued) or "locked" (another process ran the pipeline).',
    labelNames: ['pipeline', 'reason'],
    registers: [this.metrics],
  });
  private readonly caughtUp = new Counter({
    name: 'dbflow_daemon_runs_caught_up_total',
    help: 'Due times missed while no daemon ran, run (or enqueued) when the daemon started (catch_up).',
    labelNames: ['pipeline'],
    registers: [this.metrics],
  });
  private readonly reloadErrors = new Counter({
    name: 'dbflow_daemon_reload_errors_total',
    help: 'Edits of a pipeline file that did not validate (the previous version stays scheduled).',
    labelNames: ['file'],
    registers: [this.metrics],
  });
  private readonly valid = new Gauge({
    name: 'dbflow_daemon_pipeline_valid',
    help: '1 when the current content of the pipeline file validates, 0 when the daemon keeps running an earlier version (or none).',
    labelNames: ['file'],
    registers: [this.metrics],
  });
  private readonly nextRun = new Gauge({
    name: 'dbflow_daemon_next_run_timestamp_seconds',
    help: 'When the pipeline is next due.',
    labelNames: ['pipeline'],
    registers: [this.metrics],
  });

  private readonly archives: ArchiveKeeper;
  private readonly marks: MarkKeeper;

  constructor(private readonly o: DaemonOptions) {
    this.archives = new ArchiveKeeper({ stateDir: o.stateDir, log: o.log });
    this.marks = new MarkKeeper({ stateDir: o.stateDir, log: o.log, metrics: this.metrics });
  }

  /** Loads (or reloads) a pipeline file; a file that does not validate keeps its previous version scheduled. */
  async load(file: string): Promise<void> {
    const key = path.resolve(file);
    const entry = this.entries.get(key) ?? { file: key, queued: false };
    this.entries.set(key, entry);
    const label = path.basename(key);
    let loaded: LoadedPipeline;
    try {
      loaded = await loadPipeline(key, this.o.loadOptions);
    } catch (err) {
      if (!(err instanceof DbflowError)) throw err;
      this.reloadErrors.inc({ file: label });
      this.valid.set({ file: label }, 0);
      const text = userErrorText(err);
      const keep = entry.loaded
        ? `keeping the version loaded at ${entry.loadedAt!.toISOString()} (pipeline "${entry.loaded.pipeline.name}")`
        : 'not scheduled';
      this.o.log(`${label}: this version does not validate; ${keep}:\n${text}`);
      return;
    }
    this.valid.set({ file: label }, 1);
    const replaced = entry.loaded !== undefined;
    entry.loaded = loaded;
    entry.loadedAt = new Date();
    this.schedule(entry, replaced);
    if (!replaced)
      void this.catchUp(entry).catch((err: unknown) =>
        this.o.log(`[${loaded.pipeline.name}] a due time missed while no daemon ran is not caught up: ${(err as Error).message}`),
      );
    if (!this.stopping && !this.o.dispatch) {
      this.archives.keep(key, loaded.pipeline.sha256, Object.keys(loaded.pipeline.archive).length > 0);
      this.marks.keep(key, loaded.pipeline.name, loaded.pipeline.marks?.everyMs);
    }
  }

  /** A file was deleted: its pipeline is no longer scheduled (a run in progress finishes). */
  remove(file: string): void {
    const entry = this.entries.get(path.resolve(file));
    if (!entry) return;
    entry.job?.stop();
    entry.queued = false;
    this.entries.delete(entry.file);
    void this.archives.release(entry.file);
    this.marks.keep(entry.file, entry.loaded?.pipeline.name ?? '', undefined);
    if (entry.loaded) this.nextRun.remove({ pipeline: entry.loaded.pipeline.name });
    this.o.log(`${path.basename(entry.file)}: removed; no longer scheduled`);
  }

  /** Stops scheduling, cancels running runs (their steps clean up, their locks are released) and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    const running = [...this.entries.values()].flatMap((e) => {
      e.job?.stop();
      e.queued = false;
      return e.running ? [e.running] : [];
    });
    if (running.length) this.o.log(`stopping: cancelling ${running.length} running ${running.length === 1 ? 'run' : 'runs'}…`);
    for (const r of running) r.controller.abort();
    await Promise.all([...running.map((r) => r.done), ...this.dispatching, this.archives.stop(), this.marks.stop()]);
  }

  private schedule(entry: Entry, replaced: boolean): void {
    const { pipeline } = entry.loaded!;
    const label = `${path.basename(entry.file)} (${pipeline.name})`;
    entry.job?.stop();
    entry.job = undefined;
    if (!pipeline.schedule) {
      this.o.log(`${label}: ${replaced ? 'reloaded; ' : ''}no schedule, so the daemon does not run it`);
      return;
    }
    entry.job = new Cron(
      pipeline.schedule,
      { ...(pipeline.timezone !== undefined && { timezone: pipeline.timezone }), protect: false },
      () => this.due(entry),
    );
    const next = entry.job.nextRun();
    entry.expected = next ?? undefined;
    if (next) this.nextRun.set({ pipeline: pipeline.name }, next.getTime() / 1000);
    const zone = pipeline.timezone ? ` ${pipeline.timezone}` : '';
    this.o.log(
      `${label}: ${replaced ? 'reloaded' : 'scheduled'} "${pipeline.schedule}"${zone}, overlap: ${pipeline.overlap}; next run ${next?.toISOString() ?? 'never'}`,
    );
  }

  // A pipeline's last due time before it was scheduled here (at start, or when its file appeared), missed while no
  // daemon ran it: run (or enqueue) it once now, as anacron does, unless a run of the pipeline since did its work. A
  // pipeline that never ran waits for its schedule; an edit (a reload) catches nothing up.
  private async catchUp(entry: Entry): Promise<void> {
    const loaded = entry.loaded!;
    const { name, catchUp } = loaded.pipeline;
    if (catchUp === false || this.stopping) return;
    // The last due time before now: the schedule was made just now, so it fires only later ones (a due time while the
    // daemon was still starting up is caught up too).
    const due = entry.job?.previousRuns(1, new Date())[0];
    if (!due) return;
    const runs = await (this.o.history ?? this.localHistory)(name);
    if (runs.length === 0 || runs.some((r) => r.at >= due.getTime() && !DID_NOT_RUN.has(r.status))) return;
    const late = Date.now() - due.getTime();
    const missed = `the run due at ${due.toISOString()} was missed while no daemon ran`;
    if (catchUp.withinMs !== undefined && late > catchUp.withinMs) {
      this.o.log(
        `[${name}] ${missed}; not caught up: it is ${formatDuration(late)} late, more than catch_up: ${formatDuration(catchUp.withinMs)}`,
      );
      return;
    }
    if (this.stopping || entry.loaded !== loaded || this.entries.get(entry.file) !== entry) return; // stopped, edited or removed meanwhile
    this.o.log(`[${name}] catching up: ${missed} (${formatDuration(late)} ago)`);
    this.caughtUp.inc({ pipeline: name });
    if (this.o.dispatch) this.enqueue(loaded, due);
    else if (!entry.running) this.start(entry);
  }

  private readonly localHistory = (pipeline: string): Promise<PastRun[]> =>
    Promise.resolve(
      indexedFinishedRuns(this.o.stateDir)
        .filter((r) => r.pipeline === pipeline)
        .map((r) => ({ at: r.startedAt, status: r.status })),
    );

  private due(entry: Entry): void {
    if (this.stopping || !entry.loaded) return;
    const name = entry.loaded.pipeline.name;
    const dueAt = entry.expected ?? new Date(Math.floor(Date.now() / 1000) * 1000);
    const next = entry.job?.nextRun();
    entry.expected = next ?? undefined;
    if (next) this.nextRun.set({ pipeline: name }, next.getTime() / 1000);
    if (this.o.dispatch) return this.enqueue(entry.loaded, dueAt);
    if (!entry.running) return this.start(entry);
    const previous = `the previous run${entry.running.runId ? ` (${entry.running.runId})` : ''} is still running`;
    if (entry.loaded.pipeline.overlap === 'queue' && !entry.queued) {
      entry.queued = true;
      this.o.log(`[${name}] queued: ${previous}; it starts when that one ends`);
      return;
    }
    this.skipped.inc({ pipeline: name, reason: 'overlap' });
    this.o.log(`[${name}] skipped: ${previous}${entry.queued ? ' and another is already queued' : ' (overlap: skip)'}`);
  }

  private enqueue(loaded: LoadedPipeline, dueAt: Date): void {
    const name = loaded.pipeline.name;
    this.scheduled.inc({ pipeline: name });
    const sent = this.o.dispatch!(loaded, dueAt).catch((err: unknown) =>
      this.o.log(
        `[${name}] the run due at ${dueAt.toISOString()} could not be enqueued: ${err instanceof Error ? err.message : String(err)}`,
      ),
    );
    this.dispatching.add(sent);
    void sent.finally(() => this.dispatching.delete(sent));
  }

  private start(entry: Entry): void {
    const loaded = entry.loaded!;
    const name = loaded.pipeline.name;
    const controller = new AbortController();
    const prefix = (line: string): void => this.o.log(`[${name}] ${line}`);
    const render = plainRenderer(prefix, this.o.verbose);
    const running: Running = { controller, done: Promise.resolve() };
    entry.running = running;
    this.scheduled.inc({ pipeline: name });
    const run = async (note: AuditNote): Promise<number> => {
      note(runAuditFields(loaded));
      const r = await lockedRun(loaded, {
        stateDir: this.o.stateDir,
        signal: controller.signal,
        by: 'dbflow daemon',
        notice: prefix,
        onEvent: (e) => {
          if (e.type === 'run:start') {
            running.runId = e.runId;
            note({ run_id: e.runId });
          }
          render(e);
        },
      });
      prefix(`run ${r.runId} ${r.status} in ${formatDuration(r.durationMs)}${r.error ? `: ${r.error}` : ''}`);
      return runExitCode(r.status);
    };
    running.done = (this.o.audit ? this.o.audit(entry.file, run) : run(() => undefined))
      .then(() => undefined)
      .catch((err: unknown) => {
        if (err instanceof LockedError) {
          this.skipped.inc({ pipeline: name, reason: 'locked' });
          prefix(`skipped: ${err.message}`);
        } else prefix(`run failed to start: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        entry.running = undefined;
        if (entry.queued && !this.stopping && this.entries.get(entry.file) === entry) {
          entry.queued = false;
          this.start(entry);
        }
      });
  }
}
