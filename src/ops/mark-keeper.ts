// The daemon's part in recovery marks: `dbflow mark <file>` every `marks.every` for each pipeline with one, never two at
// once; a failed mark is recorded and counted, and the next one is taken on time.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the state folder keeps of a pipeline's marks: the last one taken, the last failures. */
export interface MarkState {
  pipeline: string;
  last_ok?: { name: string; time: string; blocked_ms: number };
  failures: { at: string; error: string }[];
}

interface Kept {
  file: string;
  pipeline: string;
  everyMs: number;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  state: MarkState;
}

const KEEP_FAILURES = 20;

/** Takes each pipeline's marks on its interval; `stop()` stops the timers and waits for a mark in progress. */
export class MarkKeeper {
  private readonly kept = new Map<string, Kept>();
  private readonly taken: Counter;
  private readonly blocked: Gauge;
  private readonly lastOk: Gauge;

  constructor(private readonly o: { stateDir: string; log: (line: string) => void; metrics: Registry; command?: readonly string[] }) {
    this.taken = new Counter({
      name: 'dbflow_marks_total',
      help: 'Recovery marks the daemon tried: result="ok" (recorded) or "failed" (every barrier released, nothing recorded).',
      labelNames: ['pipeline', 'result'],
      registers: [o.metrics],
    });
    this.blocked = new Gauge({
      name: 'dbflow_mark_blocked_milliseconds',
      help: 'How long the last recorded mark blocked commits (the longest of its participants).',
      labelNames: ['pipeline'],
      registers: [o.metrics],
    });
    this.lastOk = new Gauge({
      name: 'dbflow_mark_last_success_timestamp_seconds',
      help: 'When the last mark was recorded.',
      labelNames: ['pipeline'],
      registers: [o.metrics],
    });
  }

  /** Marks `file` (pipeline `pipeline`) every `everyMs`; undefined stops it. A new interval restarts the timer. */
  keep(file: string, pipeline: string, everyMs: number | undefined): void {
    const k = this.kept.get(file);
    if (k && k.everyMs === everyMs && k.pipeline === pipeline) return;
    if (k) clearInterval(k.timer);
    this.kept.delete(file);
    if (everyMs === undefined) return;
    const entry: Kept = { file, pipeline, everyMs, state: this.load(pipeline) };
    entry.timer = setInterval(() => this.due(entry), everyMs);
    this.kept.set(file, entry);
    this.o.log(`[marks ${pipeline}] a mark every ${everyMs / 1000} s`);
  }

  async stop(): Promise<void> {
    const all = [...this.kept.values()];
    this.kept.clear();
    for (const k of all) clearInterval(k.timer);
    await Promise.all(all.map(async (k) => k.running));
  }

  private due(k: Kept): void {
    if (k.running) {
      this.o.log(`[marks ${k.pipeline}] skipped: the previous mark is still being taken`);
      return;
    }
    k.running = this.take(k).finally(() => (k.running = undefined));
  }

  private async take(k: Kept): Promise<void> {
    const command = this.o.command ?? [...process.execArgv, process.argv[1]!];
    const child = spawn(process.execPath, [...command, 'mark', k.file, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const at = new Date().toISOString();
    try {
      if (code !== 0) throw new Error(err.trim().replace(/^dbflow: /, '') || `dbflow mark exited with ${code}`);
      const record = JSON.parse(out) as { name: string; time: string; blocked_ms: number };
      k.state.last_ok = { name: record.name, time: record.time, blocked_ms: record.blocked_ms };
      this.taken.inc({ pipeline: k.pipeline, result: 'ok' });
      this.blocked.set({ pipeline: k.pipeline }, record.blocked_ms);
      this.lastOk.set({ pipeline: k.pipeline }, Date.parse(record.time) / 1000);
      this.o.log(`[marks ${k.pipeline}] ${record.name}: commits blocked for at most ${record.blocked_ms} ms`);
    } catch (e) {
      const error = (e as Error).message;
      k.state.failures = [...k.state.failures, { at, error }].slice(-KEEP_FAILURES);
      this.taken.inc({ pipeline: k.pipeline, result: 'failed' });
      this.o.log(`[marks ${k.pipeline}] mark failed (the next one is due in ${k.everyMs / 1000} s): ${error}`);
    }
    this.save(k.state);
  }

  // What an earlier daemon recorded, or a fresh state.
  private load(pipeline: string): MarkState {
    try {
      const state = JSON.parse(readFileSync(this.stateFile(pipeline), 'utf8')) as MarkState;
      if (state.pipeline === pipeline && Array.isArray(state.failures)) return state;
    } catch {
      // none yet, or unreadable: start over
    }
    return { pipeline, failures: [] };
  }

  private stateFile(pipeline: string): string {
    return path.join(this.o.stateDir, 'marks', `${pipeline}.json`);
  }

  // <state>/marks/<pipeline>.json, replaced whole.
  private save(state: MarkState): void {
    const file = this.stateFile(state.pipeline);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}
