// The daemon's part in log archiving: one `dbflow archive <file>` process per pipeline with `archive:`, started again with backoff.
import { spawn, type ChildProcess } from 'node:child_process';

interface Kept {
  file: string;
  sha256: string;
  child?: ChildProcess;
  exited?: Promise<void>;
  timer?: NodeJS.Timeout;
  backoffMs: number;
  stopped: boolean;
}

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
/** A run this long counts as healthy: the next failure starts the backoff over. */
const HEALTHY_MS = 60_000;

/** Keeps `dbflow archive` running for each pipeline file given to `keep`; `stop()` stops them (SIGTERM: they store what they received). */
export class ArchiveKeeper {
  private readonly kept = new Map<string, Kept>();

  constructor(private readonly o: { stateDir: string; log: (line: string) => void; command?: readonly string[] }) {}

  /** Archives `file` (its pipeline version `sha256`); a new version restarts the archiver, `archives: false` stops it. */
  keep(file: string, sha256: string, archives: boolean): void {
    const k = this.kept.get(file);
    if (k && k.sha256 === sha256 && archives) return;
    // The previous archiver of the file stops (storing what it received) before the new one takes its spool.
    const previous = k && this.release(file);
    if (!archives) return;
    const entry: Kept = { file, sha256, backoffMs: MIN_BACKOFF_MS, stopped: false };
    this.kept.set(file, entry);
    void Promise.resolve(previous).then(() => {
      if (!entry.stopped) this.start(entry);
    });
  }

  /** Stops the archiver of `file`, if any. */
  async release(file: string): Promise<void> {
    const k = this.kept.get(file);
    if (!k) return;
    this.kept.delete(file);
    await this.halt(k);
  }

  /** Stops every archiver and waits for each to have stored what it received. */
  async stop(): Promise<void> {
    const all = [...this.kept.values()];
    this.kept.clear();
    await Promise.all(all.map((k) => this.halt(k)));
  }

  private async halt(k: Kept): Promise<void> {
    k.stopped = true;
    clearTimeout(k.timer);
    k.child?.kill('SIGTERM');
    await k.exited;
  }

  private start(k: Kept): void {
    const command = this.o.command ?? [...process.execArgv, process.argv[1]!];
    const started = Date.now();
    const child = spawn(process.execPath, [...command, 'archive', k.file, '--state-dir', this.o.stateDir], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    k.child = child;
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n')) if (line.trim()) this.o.log(`[archive ${k.file}] ${line.replace(/^\S+Z /, '')}`);
    });
    k.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        resolve();
        if (k.stopped) return;
        if (Date.now() - started > HEALTHY_MS) k.backoffMs = MIN_BACKOFF_MS;
        this.o.log(`[archive ${k.file}] exited (${signal ?? `code ${code}`}); starting it again in ${k.backoffMs / 1000} s`);
        k.timer = setTimeout(() => this.start(k), k.backoffMs);
        k.backoffMs = Math.min(k.backoffMs * 2, MAX_BACKOFF_MS);
      }),
    );
    this.o.log(`[archive ${k.file}] started (pid ${child.pid ?? '?'})`);
  }
}
