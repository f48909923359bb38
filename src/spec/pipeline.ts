// The normalized pipeline: what the planner and engine work from, never raw YAML.
import { parseDuration } from './duration.js';
import type { DocPath } from './source.js';

/** Where a secret's value comes from. */
export type SecretSource = { env: string } | { file: string };

/** When a step runs, given how its dependencies ended. */
export type Condition = 'success()' | 'failure()' | 'always()' | 'cancelled()';

export interface RetryPolicy {
  maxAttempts: number;
  backoff: 'constant' | 'linear' | 'exponential';
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
}

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
  overlap: 'skip' | 'queue';
  lockWaitMs: number;
  rpoMs?: number;
  timeoutMs?: number;
  concurrency?: number;
  plugins: string[];
  secrets: Record<string, SecretSource>;
  vars: Record<string, unknown>;
  databases: Record<string, DatabaseSpec>;
  /** Main steps, then `finally` and `on_failure` steps. */
  steps: StepSpec[];
}

type RawStep = Record<string, unknown>;

/** The lists of steps in a pipeline, in the order they run. */
export const STEP_LISTS = ['steps', 'finally', 'on_failure'] as const;
const DEFAULT_CONDITION: Record<(typeof STEP_LISTS)[number], Condition> = {
  steps: 'success()',
  finally: 'always()',
  on_failure: 'failure()',
};

/** Turn schema-valid data into a Pipeline. */
export function normalize(data: Record<string, unknown>, file: string, sha256: string, dir: string): Pipeline {
  const step = (s: RawStep, path: DocPath, list: 'steps' | 'finally' | 'on_failure'): StepSpec => {
    const isFinally = list !== 'steps';
    const retry = (s.retry ?? {}) as Record<string, unknown>;
    const needs = s.needs === undefined ? [] : Array.isArray(s.needs) ? (s.needs as string[]) : [s.needs as string];
    return {
      id: s.id as string,
      uses: s.uses as string,
      with: (s.with ?? {}) as Record<string, unknown>,
      needs,
      ...(s.input !== undefined && { input: s.input as string }),
      ...(s.matrix !== undefined && { matrix: s.matrix as Record<string, unknown> }),
      if: (s.if as Condition | undefined) ?? DEFAULT_CONDITION[list],
      continueOnError: s.continue_on_error === true,
      retry: {
        maxAttempts: (retry.max_attempts as number | undefined) ?? 1,
        backoff: (retry.backoff as RetryPolicy['backoff'] | undefined) ?? 'exponential',
        delayMs: retry.delay ? parseDuration(retry.delay as string) : 1000,
      },
      ...(s.timeout !== undefined && { timeoutMs: parseDuration(s.timeout as string) }),
      finally: isFinally,
      path,
    };
  };
  const databases: Record<string, DatabaseSpec> = {};
  for (const [name, db] of Object.entries((data.databases ?? {}) as Record<string, Record<string, unknown>>)) {
    databases[name] = {
      driver: db.driver as string,
      url: db.url as string,
      ...(typeof db.password === 'string' && { password: db.password }),
      options: (db.options ?? {}) as Record<string, unknown>,
    };
  }
  return {
    file,
    dir,
    sha256,
    name: data.name as string,
    ...(data.description !== undefined && { description: data.description as string }),
    ...(data.schedule !== undefined && { schedule: data.schedule as string }),
    ...(data.timezone !== undefined && { timezone: data.timezone as string }),
    overlap: (data.overlap as 'skip' | 'queue' | undefined) ?? 'skip',
    lockWaitMs: data.lock_wait !== undefined ? parseDuration(data.lock_wait as string) : 0,
    ...(data.rpo !== undefined && { rpoMs: parseDuration(data.rpo as string) }),
    ...(data.timeout !== undefined && { timeoutMs: parseDuration(data.timeout as string) }),
    ...(data.concurrency !== undefined && { concurrency: data.concurrency as number }),
    plugins: (data.plugins ?? []) as string[],
    secrets: (data.secrets ?? {}) as Record<string, SecretSource>,
    vars: (data.vars ?? {}) as Record<string, unknown>,
    databases,
    steps: [...STEP_LISTS.flatMap((list) => ((data[list] ?? []) as RawStep[]).map((s, i) => step(s, [list, i], list)))],
  };
}
