// The finished runs under a state folder, read from each run record's result.json.
import { readRunJson, runIds } from '../engine/run-record.js';

/** What result.json says about a finished run (the parts the operations commands read). */
export interface FinishedRun {
  runId: string;
  pipeline: string;
  status: string;
  startedAt: number;
  finishedAt: number;
  durationMs: number;
  steps: Record<string, { status: string }>;
  artifacts: { database: string; bytes?: number; raw_bytes?: number }[];
  /** The checks of the run; a restore's with how long it took (`duration_ms`). */
  verifications: { database: string; check: string; ok: boolean; duration_ms?: number }[];
  coordination: { step: string; blocked_ms?: number }[];
  manifest?: string;
}

/** Every finished run under `stateDir`, oldest first; records without a readable result.json (running, crashed) are skipped. */
export function readFinishedRuns(stateDir: string): FinishedRun[] {
  const runs: FinishedRun[] = [];
  for (const id of runIds(stateDir)) {
    const run = readResult(readRunJson(stateDir, id, 'result.json'), id);
    if (run) runs.push(run);
  }
  return runs.sort((a, b) => a.finishedAt - b.finishedAt || a.runId.localeCompare(b.runId));
}

/** How long each database's restore-test took in `run` (the measured recovery time), by database. */
export function restoreTimes(run: FinishedRun): Map<string, number> {
  const times = new Map<string, number>();
  for (const v of run.verifications)
    if (v.check === 'restore' && v.ok && typeof v.duration_ms === 'number')
      times.set(v.database, Math.max(times.get(v.database) ?? 0, v.duration_ms));
  return times;
}

/** The newest run of each pipeline for which `pick` holds. */
export function newestWhere(runs: FinishedRun[], pick: (r: FinishedRun) => boolean): Map<string, FinishedRun> {
  const out = new Map<string, FinishedRun>();
  for (const r of runs) if (pick(r)) out.set(r.pipeline, r); // oldest first: the last one set wins
  return out;
}

/** A backup that was published and restored: a manifest, and a passing restore check for every artifact's database. */
export function isVerifiedBackup(r: FinishedRun): boolean {
  return (
    r.status === 'success' &&
    r.manifest !== undefined &&
    r.artifacts.length > 0 &&
    r.artifacts.every((a) => r.verifications.some((v) => v.database === a.database && v.check === 'restore' && v.ok))
  );
}

/** What a result.json holds, or undefined when it is not a finished run's result. */
export function readResult(data: Record<string, unknown> | undefined, id: string): FinishedRun | undefined {
  if (!data || typeof data.pipeline !== 'string' || typeof data.status !== 'string') return undefined;
  const finishedAt = Date.parse(String(data.finished_at));
  if (Number.isNaN(finishedAt)) return undefined;
  const startedAt = Date.parse(String(data.started_at));
  const summary = isObject(data.summary) ? data.summary : {};
  const steps: FinishedRun['steps'] = {};
  if (isObject(data.steps))
    for (const [k, v] of Object.entries(data.steps)) if (isObject(v) && typeof v.status === 'string') steps[k] = { status: v.status };
  return {
    runId: typeof data.run_id === 'string' ? data.run_id : id,
    pipeline: data.pipeline,
    status: data.status,
    startedAt: Number.isNaN(startedAt) ? finishedAt : startedAt,
    finishedAt,
    durationMs: typeof data.duration_ms === 'number' ? data.duration_ms : 0,
    steps,
    artifacts: listOf(summary.artifacts).filter((a) => typeof a.database === 'string') as FinishedRun['artifacts'],
    verifications: listOf(summary.verifications).filter(
      (v) => typeof v.database === 'string' && typeof v.check === 'string',
    ) as FinishedRun['verifications'],
    coordination: listOf(summary.coordination).filter((c) => typeof c.step === 'string') as FinishedRun['coordination'],
    ...(typeof summary.manifest === 'string' && { manifest: summary.manifest }),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listOf(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}
