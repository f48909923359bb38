// From a pipeline file to a validated plan: read, parse, load plugins, check, plan.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SpecError, UsageError, type SpecProblem } from '../errors.js';
import { planPipeline, type Plan } from '../plan/plan.js';
import { builtinRegistry, loadPlugins } from '../plugins/loader.js';
import type { Registry } from '../plugins/registry.js';
import type { Plugin } from '../plugins/types.js';
import type { PipelineDocument } from '../schema/pipeline-schema.js';
import { checkPipeline } from '../spec/check.js';
import { normalize, type Pipeline } from '../spec/pipeline.js';
import { renderProblems } from '../spec/snippet.js';
import { MAX_PIPELINE_BYTES, parseSource, type RawPipeline } from '../spec/source.js';
import { renderValue } from '../spec/templates.js';
import { secretFileState } from './secrets.js';

/** A pipeline ready to run. */
export interface LoadedPipeline {
  raw: RawPipeline;
  pipeline: Pipeline;
  plan: Plan;
  registry: Registry;
}

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  /** Name shown in error positions (defaults to the path as given). */
  displayName?: string;
  /** Plugins to add besides the first-party ones and those the pipeline lists (embedding, tests). */
  plugins?: Plugin[];
  /**
   * False: do not check what only a run needs — environment variables set, secret files readable —
   * for commands that judge a pipeline's records rather than run it (`dbflow status` as a monitoring user).
   */
  checkEnvironment?: boolean;
}

/** Read and validate a pipeline file; every problem is reported at once as a SpecError. */
export async function loadPipeline(file: string, options: LoadOptions = {}): Promise<LoadedPipeline> {
  let text: string;
  try {
    const { size } = statSync(file);
    if (size > MAX_PIPELINE_BYTES) throw tooLarge(options.displayName ?? file, size);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SpecError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `pipeline file "${file}" does not exist.` : `cannot read pipeline file "${file}": ${code}`);
  }
  return loadPipelineText(options.displayName ?? file, text, path.dirname(path.resolve(file)), options);
}

/** Validate pipeline text as if read from `file` in `baseDir`. */
export async function loadPipelineText(file: string, text: string, baseDir: string, options: LoadOptions = {}): Promise<LoadedPipeline> {
  const env = options.checkEnvironment === false ? anyVariable(options.env ?? process.env) : (options.env ?? process.env);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_PIPELINE_BYTES) throw tooLarge(file, bytes);
  const raw = parseSource(file, text);
  const fail = (problems: SpecProblem[]): never => {
    throw new SpecError(problems, renderProblems(problems, text));
  };
  if (raw.syntax.length) fail(raw.syntax);
  const registry = await builtinRegistry();
  for (const p of options.plugins ?? []) registry.add(p, 'options.plugins');
  const data = raw.data as Record<string, unknown> | null;
  const specs = Array.isArray(data?.plugins) ? (data.plugins as unknown[]).filter((p): p is string => typeof p === 'string') : [];
  const pluginProblems = (await loadPlugins(registry, specs, path.join(baseDir, path.basename(file)))).map((p) => ({
    pos: raw.pos(['plugins', p.index]),
    message: p.message,
  }));
  const offline = options.checkEnvironment === false;
  const secretFile = (p: string): 'readable' | 'empty' | 'unreadable' => (offline ? 'readable' : secretFileState(path.resolve(baseDir, p)));
  const problems = [...pluginProblems, ...checkPipeline(raw, registry, { vars: env, secretFile, offline })];
  if (problems.length) fail(problems);
  // No problem found: the data is a schema-valid document.
  const pipeline = normalize(data as PipelineDocument, file, raw.sha256, path.resolve(baseDir));
  registry.configureStorages(pipeline.storage, file, pipeline.dir);
  const planned = planPipeline(pipeline, raw, registry, staticContext(pipeline, env));
  if (!planned.ok) fail(planned.problems);
  return { raw, pipeline, plan: (planned as { ok: true; plan: Plan }).plan, registry };
}

/** Values known before a run starts: env, pipeline, and vars rendered against them. */
export function staticContext(pipeline: Pipeline, env: Record<string, string | undefined>) {
  const base = { env, pipeline: { name: pipeline.name, file: pipeline.file, sha256: pipeline.sha256 } };
  const vars: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pipeline.vars)) {
    try {
      vars[k] = renderValue(v, { ...base, run: { id: 'RUN_ID', started_at: new Date(0).toISOString(), dir: '' } });
    } catch {
      vars[k] = v;
    }
  }
  return { ...base, vars };
}

// An environment in which every variable is set: its value, or "" for one this process lacks.
function anyVariable(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return new Proxy(env, { get: (e, name) => (typeof name === 'string' ? (e[name] ?? '') : undefined) });
}

// Refused before parsing: a pipeline file is a few kilobytes; a huge one is a mistake or an attack.
function tooLarge(file: string, bytes: number): SpecError {
  const problem = {
    pos: { file, line: 1, col: 1 },
    message: `the pipeline file is ${(bytes / 1024 / 1024).toFixed(1)} MiB; pipeline files may be at most ${MAX_PIPELINE_BYTES / 1024 / 1024} MiB (a pipeline is a few kilobytes: is this the right file?).`,
  };
  return new SpecError([problem], `${file}:1:1: ${problem.message}`);
}
