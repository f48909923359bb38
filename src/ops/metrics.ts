// Prometheus metrics built from the run records: for `dbflow daemon`'s /metrics and node_exporter's textfile collector.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Counter, Gauge, Registry } from 'prom-client';
import { readArchiveStates, type ArchiveState } from './archive-state.js';
import { indexedFinishedRuns } from './run-index.js';
import { isVerifiedBackup, newestWhere, restoreTimes, type FinishedRun } from './run-results.js';

/** Every metric dbflow exports: name, labels and meaning (the HELP text); docs/monitoring.md lists the same. */
export const METRICS = {
  lastRunTimestamp: {
    name: 'dbflow_last_run_timestamp_seconds',
    labels: ['pipeline'],
    help: 'When the newest finished run of the pipeline ended (Unix time, seconds).',
  },
  lastRunSuccess: {
    name: 'dbflow_last_run_success',
    labels: ['pipeline'],
    help: 'Whether the newest finished run of the pipeline succeeded: 1 yes, 0 no (failed or cancelled).',
  },
  lastRunDuration: {
    name: 'dbflow_last_run_duration_seconds',
    labels: ['pipeline'],
    help: 'How long the newest finished run of the pipeline took, in seconds.',
  },
  lastSuccessTimestamp: {
    name: 'dbflow_last_success_timestamp_seconds',
    labels: ['pipeline'],
    help: 'When the newest successful run of the pipeline ended (Unix time, seconds).',
  },
  lastVerifiedRestore: {
    name: 'dbflow_last_verified_restore_timestamp_seconds',
    labels: ['pipeline', 'database'],
    help: 'When the newest successful run whose restore test of the database passed ended (Unix time, seconds): alert on its age.',
  },
  lastRestoreDuration: {
    name: 'dbflow_last_restore_duration_seconds',
    labels: ['pipeline', 'database'],
    help: "How long the restore-test of the database took in the newest verified backup (download, decode, restore, counts): the measured recovery time, in seconds; compare with the pipeline's rto.",
  },
  rawBytes: {
    name: 'dbflow_backup_raw_bytes',
    labels: ['pipeline', 'database'],
    help: "Size of the database's dump before compression and encryption, in the newest successful run, in bytes.",
  },
  storedBytes: {
    name: 'dbflow_backup_stored_bytes',
    labels: ['pipeline', 'database'],
    help: "Size of the database's artifacts as stored (compressed, encrypted), in the newest successful run, in bytes.",
  },
  blocked: {
    name: 'dbflow_snapshot_commit_blocked_seconds',
    labels: ['pipeline', 'step'],
    help: 'How long the snapshot step blocked writes/commits on its databases to take a consistent cut, in the newest successful run, in seconds.',
  },
  runs: {
    name: 'dbflow_runs_total',
    labels: ['pipeline', 'status'],
    help: 'Finished runs by status, counted over the run records kept in the state folder (removing run records lowers it, which Prometheus reads as a counter reset).',
  },
  stepFailures: {
    name: 'dbflow_step_failures_total',
    labels: ['pipeline', 'step'],
    help: 'Failed steps (matrix cells count separately), counted over the run records kept in the state folder (removing run records lowers it, which Prometheus reads as a counter reset).',
  },
  archiveLag: {
    name: 'dbflow_archive_lag_seconds',
    labels: ['pipeline', 'database'],
    help: 'How far the stored log (WAL) of the database lags behind: now minus the last time `dbflow archive` had stored everything it received, in seconds.',
  },
  archiveNewest: {
    name: 'dbflow_archive_newest_stored_timestamp_seconds',
    labels: ['pipeline', 'database'],
    help: 'When `dbflow archive` last stored a log file (segment or open segment) of the database (Unix time, seconds).',
  },
} as const;

/**
 * The metrics of the runs under `stateDir` in the Prometheus text format, with the metrics of `extra` (the daemon's)
 * added; `runs`: its finished runs when the caller holds them already (an open run index).
 */
export async function metricsText(
  stateDir: string,
  extra?: Registry,
  runs?: FinishedRun[],
): Promise<{ contentType: string; text: string }> {
  const registry = buildRegistry(runs ?? indexedFinishedRuns(stateDir));
  addArchiveMetrics(registry, readArchiveStates(path.resolve(stateDir)), Date.now());
  const out = extra ? Registry.merge([registry, extra]) : registry;
  return { contentType: out.contentType, text: await out.metrics() };
}

/** Write the metrics for node_exporter's textfile collector: to a temp file beside `file`, renamed over it (never half a file). */
export async function writeMetricsTextfile(stateDir: string, file: string): Promise<void> {
  const { text } = await metricsText(stateDir);
  const target = path.resolve(file);
  mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

// The log archives' lag and newest stored file, from the state `dbflow archive` keeps.
function addArchiveMetrics(registry: Registry, states: ArchiveState[], now: number): void {
  const gauge = (m: { name: string; labels: readonly string[]; help: string }): Gauge =>
    new Gauge({ name: m.name, help: m.help, labelNames: [...m.labels], registers: [registry] });
  const lag = gauge(METRICS.archiveLag);
  const newest = gauge(METRICS.archiveNewest);
  for (const s of states) {
    const labels = { pipeline: s.pipeline, database: s.database };
    lag.set(labels, Math.max(0, now - Date.parse(s.synced_at)) / 1000);
    if (s.newest_stored_at) newest.set(labels, Date.parse(s.newest_stored_at) / 1000);
  }
}

function buildRegistry(runs: FinishedRun[]): Registry {
  const registry = new Registry();
  const gauge = (m: { name: string; labels: readonly string[]; help: string }): Gauge =>
    new Gauge({ name: m.name, help: m.help, labelNames: [...m.labels], registers: [registry] });
  const counter = (m: { name: string; labels: readonly string[]; help: string }): Counter =>
    new Counter({ name: m.name, help: m.help, labelNames: [...m.labels], registers: [registry] });
  const seconds = (ms: number): number => ms / 1000;

  const lastRunTimestamp = gauge(METRICS.lastRunTimestamp);
  const lastRunSuccess = gauge(METRICS.lastRunSuccess);
  const lastRunDuration = gauge(METRICS.lastRunDuration);
  for (const [pipeline, r] of newestWhere(runs, () => true)) {
    lastRunTimestamp.set({ pipeline }, seconds(r.finishedAt));
    lastRunSuccess.set({ pipeline }, r.status === 'success' ? 1 : 0);
    lastRunDuration.set({ pipeline }, seconds(r.durationMs));
  }

  const lastSuccessTimestamp = gauge(METRICS.lastSuccessTimestamp);
  const rawBytes = gauge(METRICS.rawBytes);
  const storedBytes = gauge(METRICS.storedBytes);
  const blocked = gauge(METRICS.blocked);
  for (const [pipeline, r] of newestWhere(runs, (r) => r.status === 'success')) {
    lastSuccessTimestamp.set({ pipeline }, seconds(r.finishedAt));
    for (const [database, sizes] of sizesByDatabase(r)) {
      storedBytes.set({ pipeline, database }, sizes.stored);
      if (sizes.raw !== undefined) rawBytes.set({ pipeline, database }, sizes.raw);
    }
    for (const c of r.coordination) if (typeof c.blocked_ms === 'number') blocked.set({ pipeline, step: c.step }, seconds(c.blocked_ms));
  }

  const lastVerifiedRestore = gauge(METRICS.lastVerifiedRestore);
  for (const r of runs) {
    if (r.status !== 'success') continue;
    // Oldest first, so the newest run with a passing restore check of a database is set last.
    for (const v of r.verifications)
      if (v.check === 'restore' && v.ok) lastVerifiedRestore.set({ pipeline: r.pipeline, database: v.database }, seconds(r.finishedAt));
  }

  const lastRestoreDuration = gauge(METRICS.lastRestoreDuration);
  for (const [pipeline, r] of newestWhere(runs, isVerifiedBackup))
    for (const [database, ms] of restoreTimes(r)) lastRestoreDuration.set({ pipeline, database }, seconds(ms));

  const runsTotal = counter(METRICS.runs);
  const stepFailures = counter(METRICS.stepFailures);
  for (const r of runs) {
    runsTotal.inc({ pipeline: r.pipeline, status: r.status });
    for (const [step, s] of Object.entries(r.steps)) if (s.status === 'failed') stepFailures.inc({ pipeline: r.pipeline, step });
  }
  return registry;
}

/** Stored and raw bytes per database of a run (a database may have several artifacts); raw only when every artifact has it. */
function sizesByDatabase(r: FinishedRun): Map<string, { stored: number; raw?: number }> {
  const out = new Map<string, { stored: number; raw?: number }>();
  const rawMissing = new Set<string>();
  for (const a of r.artifacts) {
    const s = out.get(a.database) ?? { stored: 0, raw: 0 };
    s.stored += typeof a.bytes === 'number' ? a.bytes : 0;
    if (typeof a.raw_bytes === 'number') s.raw = (s.raw ?? 0) + a.raw_bytes;
    else rawMissing.add(a.database);
    out.set(a.database, s);
  }
  for (const db of rawMissing) delete out.get(db)!.raw;
  return out;
}
