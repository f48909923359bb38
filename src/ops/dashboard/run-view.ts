// One run as its page shows it: step states from events.jsonl, the DAG's stages, logs, manifest, stock restore commands.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileSafe, readRunJson } from '../../engine/run-record.js';
import { formatBytes, formatDuration } from '../../ui/format.js';

/** A step (or matrix cell) of a run and where it stands. */
export interface StepView {
  key: string;
  uses: string;
  status: string;
  bytes?: number;
  durationMs?: number;
  after: string[];
}

/** What the events of a run say so far. */
export interface RunState {
  pipeline: string;
  status: string;
  startedAt?: string;
  steps: StepView[];
  done: boolean;
}

/** Reads events.jsonl as it is now; a line being written (no newline yet) is left for the next read. */
export function runState(stateDir: string, runId: string): RunState | undefined {
  const dir = path.join(stateDir, 'runs', runId);
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'events.jsonl'), 'utf8');
  } catch {
    const meta = readRunJson(stateDir, runId, 'pipeline.json');
    return meta ? { pipeline: String(meta.name), status: 'running', steps: [], done: false } : undefined;
  }
  const steps = new Map<string, StepView>();
  let pipeline = '?';
  let status = 'running';
  let startedAt: string | undefined;
  let done = false;
  // The plan's edges, as the run recorded them; records written before runs recorded them get edges derived here.
  let plannedEdges = true;
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  for (const line of complete.split('\n')) {
    if (!line) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const id = typeof e.id === 'string' ? e.id : '';
    if (e.type === 'run:start') {
      pipeline = String(e.pipeline);
      startedAt = String(e.time);
      for (const s of (e.steps as { id: string; uses: string; deps?: unknown }[] | undefined) ?? []) {
        const planned = Array.isArray(s.deps) ? s.deps.filter((d): d is string => typeof d === 'string') : undefined;
        if (!planned) plannedEdges = false;
        steps.set(s.id, { key: s.id, uses: s.uses, status: 'pending', after: planned ?? [] });
      }
    } else if (e.type === 'step:start') {
      const s = steps.get(id) ?? { key: id, uses: '', status: 'pending', after: [] };
      s.status = 'running';
      steps.set(id, s);
    } else if (e.type === 'step:end') {
      const s = steps.get(id) ?? { key: id, uses: '', status: 'pending', after: [] };
      s.status = String(e.status);
      if (typeof e.bytes === 'number') s.bytes = e.bytes;
      if (typeof e.durationMs === 'number') s.durationMs = e.durationMs;
      steps.set(id, s);
    } else if (e.type === 'run:end') {
      status = String(e.status);
      done = true;
    }
  }
  const result = readRunJson(stateDir, runId, 'result.json');
  if (result && typeof result.status === 'string') {
    status = result.status;
    done = true;
  }
  if (!plannedEdges || !steps.size) addEdges(stateDir, runId, steps);
  return { pipeline, status, ...(startedAt !== undefined && { startedAt }), steps: [...steps.values()], done };
}

// The DAG's edges of a run recorded before runs recorded the plan's: from the pipeline's steps in pipeline.json (needs,
// input, and `with` values naming another step).
function addEdges(stateDir: string, runId: string, steps: Map<string, StepView>): void {
  const meta = readRunJson(stateDir, runId, 'pipeline.json');
  const specs = ((meta?.pipeline as { steps?: unknown[] } | undefined)?.steps ?? []) as {
    id: string;
    needs?: string[];
    input?: string;
    with?: Record<string, unknown>;
  }[];
  const ids = new Set(specs.map((s) => s.id));
  const baseOf = (key: string): string => key.replace(/\[.*$/, '');
  for (const view of steps.values()) {
    const spec = specs.find((s) => s.id === baseOf(view.key));
    if (!spec) continue;
    const deps = new Set<string>([...(spec.needs ?? []), ...(spec.input ? [spec.input] : [])]);
    const text = JSON.stringify(spec.with ?? {});
    for (const id of ids) if (id !== spec.id && (text.includes(`"${id}"`) || text.includes(`steps.${id}.`))) deps.add(id);
    view.after = [...deps];
  }
}

/**
 * The steps in stages: each after the stages of everything it waits for — step instances as the plan names them, or
 * (in older records) step ids, whose every cell it then waits for.
 */
export function stages(steps: StepView[]): StepView[][] {
  const depth = new Map<string, number>();
  const base = (key: string): string => key.replace(/\[.*$/, '');
  const byKey = new Map(steps.map((s) => [s.key, s]));
  const byBase = new Map<string, StepView[]>();
  for (const s of steps) byBase.set(base(s.key), [...(byBase.get(base(s.key)) ?? []), s]);
  const targets = (dep: string): StepView[] => {
    const exact = byKey.get(dep);
    return exact ? [exact] : (byBase.get(dep) ?? []);
  };
  const visit = (s: StepView, seen: Set<string>): number => {
    const known = depth.get(s.key);
    if (known !== undefined) return known;
    if (seen.has(s.key)) return 0;
    seen.add(s.key);
    let d = 0;
    for (const dep of s.after) for (const t of targets(dep)) d = Math.max(d, visit(t, seen) + 1);
    depth.set(s.key, d);
    return d;
  };
  const out: StepView[][] = [];
  for (const s of steps) (out[visit(s, new Set())] ??= []).push(s);
  return out.filter(Boolean);
}

/** Bytes, throughput and time of a step, for people. */
export function stepText(s: StepView): { bytes: string; rate: string; duration: string } {
  const rate = s.bytes !== undefined && s.durationMs ? `${formatBytes((s.bytes * 1000) / s.durationMs)}/s` : '';
  return {
    bytes: s.bytes !== undefined ? formatBytes(s.bytes) : '',
    rate,
    duration: s.durationMs !== undefined ? formatDuration(s.durationMs) : '',
  };
}

/** The logs of a run's steps, each cut to its last lines. */
export function stepLogs(stateDir: string, runId: string, keys: string[], lastLines = 200): { key: string; lines: number; text: string }[] {
  const out = [];
  for (const key of keys) {
    let text: string;
    try {
      text = readFileSync(path.join(stateDir, 'runs', runId, 'logs', `${fileSafe(key)}.log`), 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n').filter(Boolean);
    out.push({ key, lines: lines.length, text: lines.slice(-lastLines).join('\n') });
  }
  return out;
}
