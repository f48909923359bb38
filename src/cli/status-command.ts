// `dbflow status`: is each pipeline's newest verified backup within its RPO? A check for Nagios, Icinga or a probe.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadPipeline } from '../engine/load.js';
import { ExitCode, SpecError, UsageError, userErrorText } from '../errors.js';
import { readArchiveStates } from '../ops/archive-state.js';
import { indexedFinishedRuns } from '../ops/run-index.js';
import { isVerifiedBackup, newestWhere, restoreTimes, type FinishedRun } from '../ops/run-results.js';
import type { Pipeline } from '../spec/pipeline.js';
import { formatDuration } from '../ui/format.js';
import { defaultStateDir } from './audited.js';
import { table } from './command-support.js';
import type { Io } from './io.js';

/** How a pipeline stands against its RPO. */
export type FreshnessState = 'ok' | 'stale' | 'never' | 'no_rpo' | 'invalid';

/** One line of `dbflow status --json`. */
export interface PipelineStatus {
  pipeline: string | null;
  file: string;
  rpo_ms: number | null;
  last_verified_at: string | null;
  age_ms: number | null;
  state: FreshnessState;
  error?: string;
  /** Each archived database's log (`archive:`): how far the stored log lags behind now. */
  archive?: ArchiveStatus[];
  /** The recovery time objective (`rto:`), and how long each database's restore-test of the last verified backup took. */
  rto_ms?: number | null;
  restores?: { database: string; duration_ms: number }[];
  /** ok, slow (a restore took longer than rto), unmeasured (no restore time recorded), no_rto. */
  rto_state?: 'ok' | 'slow' | 'unmeasured' | 'no_rto';
}

/** One archived database in `dbflow status --json`. */
export interface ArchiveStatus {
  database: string;
  /** The last time everything the archiver had received was stored; null when it never ran. */
  synced_at: string | null;
  lag_ms: number | null;
  newest_file: string | null;
  position: string | null;
  state: 'ok' | 'stale' | 'never' | 'no_rpo';
}

const LABEL: Record<FreshnessState, string> = { ok: 'ok', stale: 'STALE', never: 'never', no_rpo: 'no rpo', invalid: 'INVALID' };

/**
 * `dbflow status`: prints how each pipeline stands and returns the exit code. The runs are those of `stateDir` unless
 * given (`runs`: a fleet's, from Redis), and `where` names where they were looked for in the messages.
 */
export async function statusCommand(
  targets: string[],
  opts: { json?: boolean; stateDir?: string; runs?: FinishedRun[]; where?: string },
  io: Io,
): Promise<number> {
  const files = pipelineFiles(targets.length ? targets : ['pipelines']);
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());
  const where = opts.where ?? stateDir;
  const statuses = (
    await pipelineStatuses(files, stateDir, opts.runs ?? indexedFinishedRuns(stateDir), Date.now(), (err) => {
      if (!opts.json) io.err(userErrorText(err));
    })
  ).map((e) => e.status);
  if (opts.json) io.out(JSON.stringify(statuses, null, 2));
  else {
    // The restore time against the RTO when a pipeline declares one.
    const rtoColumns = statuses.some((s) => s.rto_ms != null);
    const rows = statuses.map((s) => [
      s.pipeline ?? s.file,
      s.rpo_ms !== null ? formatAge(s.rpo_ms) : '-',
      s.last_verified_at?.replace(/\.\d+Z$/, 'Z') ?? (s.state === 'invalid' ? '-' : 'never'),
      s.age_ms !== null ? formatAge(s.age_ms) : '-',
      LABEL[s.state],
      ...(rtoColumns
        ? [
            s.restores?.length ? formatAge(Math.max(...s.restores.map((r) => r.duration_ms))) : '-',
            s.rto_ms != null ? formatAge(s.rto_ms) : '-',
            s.rto_state === 'slow' ? 'SLOW' : s.rto_state === 'ok' ? 'ok' : s.rto_state === 'unmeasured' ? 'unmeasured' : '-',
          ]
        : []),
    ]);
    const head = ['PIPELINE', 'RPO', 'LAST VERIFIED', 'AGE', 'STATE', ...(rtoColumns ? ['RESTORE', 'RTO', 'RTO STATE'] : [])];
    for (const line of table([head, ...rows])) io.out(line);
    const logs = statuses.flatMap((s) =>
      (s.archive ?? []).map((a) => [
        `${s.pipeline ?? s.file}/${a.database}`,
        a.lag_ms !== null ? formatAge(a.lag_ms) : '-',
        a.newest_file ?? '-',
        a.position ?? '-',
        a.state === 'no_rpo' ? 'no rpo' : a.state === 'stale' ? 'STALE' : a.state,
      ]),
    );
    if (logs.length) for (const line of table([['LOG ARCHIVE', 'LAG', 'NEWEST', 'POSITION', 'STATE'], ...logs])) io.out(line);
  }
  for (const s of statuses)
    for (const a of s.archive ?? []) {
      if (a.state === 'stale')
        io.err(
          `dbflow: the log archive of database "${a.database}" of pipeline "${s.pipeline}" is STALE: nothing was stored for ${formatAge(a.lag_ms!)}, over its RPO of ${formatAge(s.rpo_ms!)}; is \`dbflow archive ${s.file}\` running?`,
        );
      if (a.state === 'never' && s.rpo_ms !== null)
        io.err(
          `dbflow: the log of database "${a.database}" of pipeline "${s.pipeline}" was never archived in ${stateDir}; run \`dbflow archive ${s.file}\`.`,
        );
    }
  for (const s of statuses) {
    if (s.state === 'stale') {
      io.err(
        `dbflow: pipeline "${s.pipeline}" is STALE: its last verified backup is ${formatAge(s.age_ms!)} old, ${formatAge(s.age_ms! - s.rpo_ms!)} over its RPO of ${formatAge(s.rpo_ms!)} (${s.file}).`,
      );
    }
    if (s.state === 'never')
      io.err(`dbflow: pipeline "${s.pipeline}" has no verified backup in ${where}; its RPO is ${formatAge(s.rpo_ms!)} (${s.file}).`);
  }
  for (const s of statuses)
    for (const r of s.restores ?? [])
      if (s.rto_ms != null && r.duration_ms > s.rto_ms)
        io.err(
          `dbflow: pipeline "${s.pipeline}" is SLOW to restore: the restore-test of database "${r.database}" took ${formatAge(r.duration_ms)}, over its RTO of ${formatAge(s.rto_ms)} (${s.file}).`,
        );
  return statusExitCode(statuses);
}

/** 1 when a pipeline is stale, never verified, slow to restore or its log archive is late; 2 when a file is invalid; else 0. */
export function statusExitCode(statuses: readonly PipelineStatus[]): number {
  const slow = statuses.some((s) => s.rto_state === 'slow');
  const archiveLate = statuses.some((s) => s.rpo_ms !== null && (s.archive ?? []).some((a) => a.state === 'stale' || a.state === 'never'));
  if (slow || archiveLate || statuses.some((s) => s.state === 'stale' || s.state === 'never')) return ExitCode.stepFailed;
  return statuses.some((s) => s.state === 'invalid') ? ExitCode.usage : ExitCode.ok;
}

/** A pipeline file's status, with the pipeline when it loaded. */
export interface StatusEntry {
  status: PipelineStatus;
  pipeline?: Pipeline;
}

/** How each pipeline file stands against its RPO, judged from `runs` (finished runs, oldest first) and the archivers' state. */
export async function pipelineStatuses(
  files: string[],
  stateDir: string,
  runs: FinishedRun[],
  now: number,
  invalid?: (err: SpecError | UsageError) => void,
  load: (file: string) => Promise<{ pipeline: Pipeline }> = (file) => loadPipeline(file, { checkEnvironment: false }),
): Promise<StatusEntry[]> {
  const verified = newestWhere(runs, isVerifiedBackup);
  const archiveStates = readArchiveStates(stateDir);
  const entries: StatusEntry[] = [];
  for (const file of files) {
    let pipeline;
    try {
      // The environment of the runs is not needed to judge them: unset variables are not a problem here.
      ({ pipeline } = await load(file));
    } catch (err) {
      if (!(err instanceof SpecError) && !(err instanceof UsageError)) throw err;
      entries.push({
        status: { pipeline: null, file, rpo_ms: null, last_verified_at: null, age_ms: null, state: 'invalid', error: err.message },
      });
      invalid?.(err);
      continue;
    }
    const archive = Object.keys(pipeline.archive).map((database): ArchiveStatus => {
      const st = archiveStates.find((a) => a.pipeline === pipeline.name && a.database === database);
      const lag = st ? Math.max(0, now - Date.parse(st.synced_at)) : null;
      const rpo = pipeline.rpoMs;
      return {
        database,
        synced_at: st?.synced_at ?? null,
        lag_ms: lag,
        newest_file: st?.newest_file ?? null,
        position: st?.position ?? null,
        state: lag === null ? 'never' : rpo === undefined ? 'no_rpo' : lag > rpo ? 'stale' : 'ok',
      };
    });
    const last = verified.get(pipeline.name);
    const age = last ? Math.max(0, now - last.finishedAt) : null;
    const rpo = pipeline.rpoMs ?? null;
    const state: FreshnessState = rpo === null ? 'no_rpo' : age === null ? 'never' : age > rpo ? 'stale' : 'ok';
    const restores = last ? [...restoreTimes(last)].map(([database, ms]) => ({ database, duration_ms: ms })) : [];
    const rto = pipeline.rtoMs ?? null;
    const slowest = Math.max(0, ...restores.map((r) => r.duration_ms));
    entries.push({
      pipeline,
      status: {
        pipeline: pipeline.name,
        file,
        rpo_ms: rpo,
        last_verified_at: last ? new Date(last.finishedAt).toISOString() : null,
        age_ms: age,
        state,
        ...(archive.length && { archive }),
        rto_ms: rto,
        restores,
        rto_state: rto === null ? 'no_rto' : !restores.length ? 'unmeasured' : slowest > rto ? 'slow' : 'ok',
      },
    });
  }
  return entries;
}

/** A duration for people, in its two largest units: "850ms", "1.5s", "12m 5s", "3h 12m", "1h", "2d 4h". */
export function formatAge(ms: number): string {
  if (ms < 60_000) return ms < 1000 ? formatDuration(Math.round(ms)) : `${Math.floor(ms / 100) / 10}s`;
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const first = units.findIndex(([, size]) => ms >= size);
  const [[u1, s1], [u2, s2]] = [units[first]!, units[first + 1]!];
  const major = Math.floor(ms / s1);
  const minor = Math.floor((ms % s1) / s2);
  return minor ? `${major}${u1} ${minor}${u2}` : `${major}${u1}`;
}

/** Pipeline files: each target is a file, or a folder whose *.yaml and *.yml files are taken (not its subfolders). */
export function pipelineFiles(targets: string[]): string[] {
  const files: string[] = [];
  for (const t of targets) {
    if (existsSync(t) && statSync(t).isDirectory()) {
      const found = readdirSync(t)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => path.join(t, f));
      if (!found.length) throw new UsageError(`no pipeline files (*.yaml, *.yml) in "${t}".`);
      files.push(...found);
    } else if (!existsSync(t) && targets.length === 1 && t === 'pipelines') {
      throw new UsageError('no "pipelines" folder here: give pipeline files or folders, e.g. `dbflow status pipelines/nightly.yaml`.');
    } else files.push(t); // a missing file is reported by loadPipeline, with the others
  }
  return files;
}
