// The record of a run on disk: <state-dir>/runs/<run-id>/{pipeline.json,events.jsonl,logs/,result.json}, 0600 files in 0700 folders.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EngineEvent, RunStatus } from './events.js';
import { processAlive } from './process-alive.js';

/** A new sortable run id: UTC time plus 4 random hex digits. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

/** File-safe form of a step instance key: `dump[app]` → `dump_app_`. */
export function fileSafe(key: string): string {
  return key.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** A run's note of the manifests it is writing (see RunRecord.publishing). */
export const PUBLISHING_FILE = 'publishing.json';

/** Writes one run's folder as the run goes. */
export class RunRecord {
  readonly dir: string;

  constructor(
    stateDir: string,
    readonly runId: string,
  ) {
    this.dir = path.join(stateDir, 'runs', runId);
    mkdirSync(path.join(this.dir, 'logs'), { recursive: true, mode: 0o700 });
  }

  /** Whole or as it was: written beside and renamed into place, so a kill while writing leaves no truncated record (which would hide who ran it). */
  writeJson(name: string, value: unknown): void {
    const file = path.join(this.dir, name);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  /**
   * Notes the manifests the run is about to write (`publishing.json`), until `published()`: a run that dies between
   * two of them leaves the note, and the reaper withdraws the ones written (see reap.ts).
   */
  publishing(urls: readonly string[]): void {
    this.writeJson(PUBLISHING_FILE, { manifests: urls });
  }

  /** The manifests are all written, or all withdrawn again. */
  published(): void {
    rmSync(path.join(this.dir, PUBLISHING_FILE), { force: true });
  }

  event(e: EngineEvent): void {
    if (e.type === 'step:progress') return; // progress is for the live view; end events carry the totals
    appendFileSync(path.join(this.dir, 'events.jsonl'), `${JSON.stringify(e)}\n`, { mode: 0o600 });
  }

  log(stepKey: string, line: string): void {
    appendFileSync(path.join(this.dir, 'logs', `${fileSafe(stepKey)}.log`), `${line}\n`, { mode: 0o600 });
  }
}

/** A finished (or running) run, as `dbflow runs` lists it. */
export interface RunListing {
  id: string;
  pipeline: string;
  /** `killed`: its process ended without finishing it (SIGKILL, OOM, power cut); see the run's result.json once reaped. */
  status: RunStatus | 'running' | 'killed';
  startedAt: string;
  durationMs?: number;
  dir: string;
}

/** The run ids under a state folder, oldest first (run ids sort by their start time). */
export function runIds(stateDir: string): string[] {
  const root = path.join(stateDir, 'runs');
  return existsSync(root) ? readdirSync(root).sort() : [];
}

/** A JSON file of a run record (`result.json`, `pipeline.json`), or undefined while it is missing or unreadable. */
export function readRunJson(stateDir: string, id: string, name: string): Record<string, unknown> | undefined {
  try {
    const data = JSON.parse(readFileSync(path.join(stateDir, 'runs', id, name), 'utf8')) as unknown;
    return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The most recent runs under a state folder, newest first. */
export function listRuns(stateDir: string, limit = 20): RunListing[] {
  return runIds(stateDir)
    .reverse()
    .slice(0, limit)
    .map((id) => {
      const result = readRunJson(stateDir, id, 'result.json');
      const meta = readRunJson(stateDir, id, 'pipeline.json');
      return {
        id,
        pipeline: str(result?.pipeline) ?? str(meta?.name) ?? '?',
        status: (result?.status as RunStatus | 'killed' | undefined) ?? (ownerGone(meta) ? 'killed' : 'running'),
        startedAt: str(result?.started_at) ?? str(meta?.started_at) ?? '',
        ...(typeof result?.duration_ms === 'number' && { durationMs: result.duration_ms }),
        dir: path.join(stateDir, 'runs', id),
      };
    });
}

/** What pipeline.json says about the process that ran a run: pid, host and the repository whose lock it held. */
export interface RunOwner {
  pid: number;
  host: string;
  repository?: string;
}

/** The process of a run, from its pipeline.json (records written before it was kept have none). */
export function runOwner(meta: Record<string, unknown> | undefined): RunOwner | undefined {
  const o = meta?.owner as Partial<RunOwner> | undefined;
  if (typeof o?.pid !== 'number' || typeof o.host !== 'string') return undefined;
  return { pid: o.pid, host: o.host, ...(typeof o.repository === 'string' && { repository: o.repository }) };
}

// True when the run's process is known to be gone: on this machine, and no process has its pid.
function ownerGone(meta: Record<string, unknown> | undefined): boolean {
  const owner = runOwner(meta);
  return owner !== undefined && !processAlive(owner.pid, owner.host);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
