// The normalized pipeline: what the planner and engine work from, never raw YAML.
import type { PipelineDocument, StepDocument } from '../schema/pipeline-schema.js';
import type { DataAssertion } from '../plugins/types.js';
import { parseDuration } from './duration.js';
import type { DocPath } from './source.js';

// The value types come from the document's schema; the shapes below are written by hand, as they differ from
// the document: camelCase keys, durations in milliseconds, defaults filled in, finally steps marked.

/** Where a secret's value comes from. */
export type SecretSource = NonNullable<PipelineDocument['secrets']>[string];

/** When a step runs, given how its dependencies ended. */
export type Condition = NonNullable<StepDocument['if']>;

export interface RetryPolicy {
  maxAttempts: number;
  backoff: NonNullable<NonNullable<StepDocument['retry']>['backoff']>;
  delayMs: number;
}

/** One step as written (before matrix expansion), normalized. */
export interface StepSpec {
  id: string;
  uses: string;
  with: Record<string, unknown>;
  needs: string[];
  input?: string;
  matrix?: Record<string, unknown>;
  if: Condition;
  continueOnError: boolean;
  retry: RetryPolicy;
  timeoutMs?: number;
  /** Declared under `finally:` or `on_failure:`: runs after every other step. */
  finally: boolean;
  /** Where the step is in the file (for errors found later). */
  path: DocPath;
}

export interface DatabaseSpec {
  driver: string;
  url: string;
  password?: string;
  options: Record<string, unknown>;
  assertions?: DataAssertion[];
}

/** How long a data assertion's query may run when `timeout:` is not set. */
export const DEFAULT_ASSERT_TIMEOUT_MS = 30_000;

/** Continuous archiving of one database's log (`archive.<database>`). */
export interface ArchiveSpec {
  database: string;
  /** Storage URL prefix (may hold templates). */
  to: string;
  /** The compress step's `with`, when the log is compressed. */
  compress?: Record<string, unknown>;
  /** The encrypt step's `with`, when the log is encrypted (may hold templates). */
  encrypt?: Record<string, unknown>;
  flushMs: number;
}

/** Recovery marks (`marks:`). */
export interface MarksSpec {
  databases: string[];
  /** The repository URL (may hold templates). */
  to: string;
  /** How often the daemon takes one. */
  everyMs?: number;
  barrierTimeoutMs: number;
}

/** How long a mark tries to hold every barrier at once when `barrier_timeout:` is not set. */
export const DEFAULT_MARK_BARRIER_MS = 5000;

/** How often the open log file is stored when `flush:` is not set. */
export const DEFAULT_FLUSH_MS = 5000;

/** A validated, normalized pipeline. */
export interface Pipeline {
  file: string;
  /** The folder of the pipeline file: relative paths inside the pipeline are relative to it. */
  dir: string;
  sha256: string;
  name: string;
  description?: string;
  schedule?: string;
  timezone?: string;
  overlap: NonNullable<PipelineDocument['overlap']>;
  /** `catch_up:` a due time missed while no daemon ran is run once when the daemon starts; `withinMs`: only while at most this late. */
  catchUp: false | { withinMs?: number };
  lockWaitMs: number;
  /** `runs_on.labels`: the labels a `dbflow worker` needs to run it (none: any worker). */
  runsOn: Record<string, string>;
  rpoMs?: number;
  rtoMs?: number;
  timeoutMs?: number;
  concurrency?: number;
  plugins: string[];
  secrets: Record<string, SecretSource>;
  vars: Record<string, unknown>;
  databases: Record<string, DatabaseSpec>;
  /** Each storage's settings, by URL scheme (`storage:`). */
  storage: Record<string, Record<string, unknown>>;
  /** Continuous log archiving, by database name (`archive:`). */
  archive: Record<string, ArchiveSpec>;
  /** Recovery marks (`marks:`), when declared. */
  marks?: MarksSpec;
  /** Main steps, then `finally` and `on_failure` steps. */
  steps: StepSpec[];
}

/** The lists of steps in a pipeline, in the order they run. */
export const STEP_LISTS = ['steps', 'finally', 'on_failure'] as const;
const DEFAULT_CONDITION: Record<(typeof STEP_LISTS)[number], Condition> = {
  steps: 'success()',
  finally: 'always()',
  on_failure: 'failure()',
};

/** Turn a schema-valid document into a Pipeline. */
export function normalize(data: PipelineDocument, file: string, sha256: string, dir: string): Pipeline {
  const step = (s: StepDocument, path: DocPath, list: (typeof STEP_LISTS)[number]): StepSpec => ({
    id: s.id,
    uses: s.uses,
    with: s.with ?? {},
    needs: s.needs === undefined ? [] : Array.isArray(s.needs) ? s.needs : [s.needs],
    ...(s.input !== undefined && { input: s.input }),
    ...(s.matrix !== undefined && { matrix: s.matrix }),
    if: s.if ?? DEFAULT_CONDITION[list],
    continueOnError: s.continue_on_error === true,
    retry: {
      maxAttempts: s.retry?.max_attempts ?? 1,
      backoff: s.retry?.backoff ?? 'exponential',
      delayMs: s.retry?.delay ? parseDuration(s.retry.delay) : 1000,
    },
    ...(s.timeout !== undefined && { timeoutMs: parseDuration(s.timeout) }),
    finally: list !== 'steps',
    path,
  });
  const databases: Record<string, DatabaseSpec> = {};
  for (const [name, db] of Object.entries(data.databases ?? {})) {
    databases[name] = {
      driver: db.driver,
      url: db.url,
      ...(db.password !== undefined && { password: db.password }),
      options: db.options ?? {},
      ...(db.assert && {
        assertions: db.assert.map((a) => ({
          name: a.name ?? a.query,
          query: a.query,
          expect: a.expect ?? 'equal',
          timeoutMs: a.timeout !== undefined ? parseDuration(a.timeout) : DEFAULT_ASSERT_TIMEOUT_MS,
        })),
      }),
    };
  }
  return {
    file,
    dir,
    sha256,
    name: data.name,
    ...(data.description !== undefined && { description: data.description }),
    ...(data.schedule !== undefined && { schedule: data.schedule }),
    ...(data.timezone !== undefined && { timezone: data.timezone }),
    overlap: data.overlap ?? 'skip',
    catchUp: data.catch_up === false ? false : typeof data.catch_up === 'string' ? { withinMs: parseDuration(data.catch_up) } : {},
    lockWaitMs: data.lock_wait !== undefined ? parseDuration(data.lock_wait) : 0,
    runsOn: data.runs_on?.labels ?? {},
    ...(data.rpo !== undefined && { rpoMs: parseDuration(data.rpo) }),
    ...(data.rto !== undefined && { rtoMs: parseDuration(data.rto) }),
    ...(data.timeout !== undefined && { timeoutMs: parseDuration(data.timeout) }),
    ...(data.concurrency !== undefined && { concurrency: data.concurrency }),
    plugins: data.plugins ?? [],
    secrets: data.secrets ?? {},
    vars: data.vars ?? {},
    databases,
    storage: data.storage ?? {},
    archive: Object.fromEntries(
      Object.entries(data.archive ?? {}).map(([database, a]) => [
        database,
        {
          database,
          to: a.to,
          ...(a.compress !== undefined && { compress: a.compress }),
          ...(a.encrypt !== undefined && { encrypt: a.encrypt }),
          flushMs: a.flush !== undefined ? parseDuration(a.flush) : DEFAULT_FLUSH_MS,
        },
      ]),
    ),
    ...(data.marks !== undefined && {
      marks: {
        databases: [...data.marks.databases],
        to: data.marks.to,
        ...(data.marks.every !== undefined && { everyMs: parseDuration(data.marks.every) }),
        barrierTimeoutMs: data.marks.barrier_timeout !== undefined ? parseDuration(data.marks.barrier_timeout) : DEFAULT_MARK_BARRIER_MS,
      },
    }),
    steps: STEP_LISTS.flatMap((list) => (data[list] ?? []).map((s, i) => step(s, [list, i], list))),
  };
}
