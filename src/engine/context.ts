// Builds the StepContext a plugin's run(ctx) receives, from the run's state.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { execa as Execa, Options as ExecaOptions } from 'execa';
import { CancelledError, DbflowError } from '../errors.js';
import type { PlannedStep } from '../plan/plan.js';
import type { Registry } from '../plugins/registry.js';
import type {
  ChainStage,
  DatabaseConfig,
  EdgeStats,
  InputPipe,
  ManifestReporter,
  RunInfo,
  StepContext,
  Storage,
} from '../plugins/types.js';
import { didYouMean } from '../spec/suggest.js';
import { runProgram } from './program.js';
import type { Redactor } from './secrets.js';

let execa: typeof Execa | undefined;

/** Loads execa before a run starts (not at import: validating a pipeline never runs a program). */
export async function loadExec(): Promise<void> {
  execa ??= (await import('execa')).execa;
}

/** The parts of a run that every step context reads. */
export interface RunScope {
  run: RunInfo;
  registry: Registry;
  redactor: Redactor;
  report: ManifestReporter;
  databases: Record<string, DatabaseConfig>;
  env: Record<string, string | undefined>;
  log(step: string, level: 'debug' | 'info' | 'warn', message: string): void;
  progress(step: string, bytes: number): void;
  outputsOf(key: string): Record<string, unknown> | undefined;
  resourceOf(key: string): { resource: unknown } | undefined;
  lease(key: string, resource: unknown, release: (r: unknown) => Promise<void> | void): void;
  /** The storage of a URL as the run's steps see it (a run lease before the first write in a folder); default: the registry's. */
  storage?(url: string): Storage;
}

/** Per-member stream wiring of a chain. */
export interface StreamWiring {
  /** Reading it starts the upstream stream (a getter). */
  input?: Readable;
  /** The upstream program's stdout, when it can be handed to a program of this step. */
  takePipe?: () => InputPipe | undefined;
  inputStats?: Promise<EdgeStats>;
  chain: ChainStage[];
}

/** A context for one step instance; its `tmpdir` is made on first use (shared through `tmp`) and removed by the engine. */
export function createContext(
  scope: RunScope,
  step: PlannedStep,
  withValue: Record<string, unknown>,
  signal: AbortSignal,
  wiring: StreamWiring,
  tmp: { dir?: string; created: (dir: string) => void },
): StepContext {
  const key = step.key;
  const single = (ref: string): string => {
    const keys = step.refs[ref];
    if (!keys) throw new DbflowError(`step "${key}" does not reference step "${ref}" in "with"; reference it to depend on it.`);
    if (keys.length !== 1) throw new DbflowError(`step "${key}" matches ${keys.length} cells of "${ref}"; give both the same matrix keys.`);
    return keys[0]!;
  };
  const log = (level: 'debug' | 'info' | 'warn') => (message: string) => scope.log(key, level, scope.redactor.redact(message));
  return {
    id: key,
    stepId: step.spec.id,
    with: withValue,
    matrix: step.cell,
    run: scope.run,
    signal,
    log: { debug: log('debug'), info: log('info'), warn: log('warn') },
    get tmpdir(): string {
      if (tmp.dir === undefined) {
        // Once cancelled, the engine does not wait for the step before it removes the run's folders: a folder made
        // now would outlive the run.
        if (signal.aborted) throw new CancelledError(`step "${key}" was cancelled; it gets no temporary folder.`);
        tmp.dir = mkdtempSync(path.join(os.tmpdir(), `dbflow-${scope.run.id}-`));
        tmp.created(tmp.dir);
      }
      return tmp.dir;
    },
    get input(): Readable {
      if (!wiring.input) throw new DbflowError(`step "${key}" (${step.spec.uses}) has no input stream.`);
      return wiring.input;
    },
    inputPipe: () => wiring.takePipe?.(),
    inputStats: () => wiring.inputStats ?? Promise.reject(new DbflowError(`step "${key}" has no input stream.`)),
    chain: wiring.chain,
    continueOnError: step.spec.continueOnError,
    exec(file: string, args: readonly string[], options: ExecaOptions = {}) {
      if (!execa) throw new DbflowError('internal: ctx.exec used before the run loaded execa.');
      return runProgram({ execa, signal, redactor: scope.redactor, log: log('info') }, file, args, options);
    },
    lease(resource, release) {
      scope.lease(key, resource, release as (r: unknown) => Promise<void> | void);
    },
    resource<T>(ref: string): T {
      const target = single(ref);
      const held = scope.resourceOf(target);
      if (!held) throw new DbflowError(`step "${ref}" holds no resource for "${key}" (did it finish?).`);
      return held.resource as T;
    },
    outputsOf(ref: string) {
      return scope.outputsOf(single(ref)) ?? {};
    },
    database(name: string) {
      const config = scope.databases[name];
      if (!config) throw new DbflowError(`unknown database "${name}".${didYouMean(name, Object.keys(scope.databases))}`);
      const driver = scope.registry.drivers.get(config.driver);
      if (!driver) throw new DbflowError(`database "${name}" uses unknown driver "${config.driver}".`);
      return { config, driver };
    },
    databaseNames() {
      return Object.keys(scope.databases);
    },
    storage(url: string) {
      return scope.storage ? scope.storage(url) : scope.registry.storageFor(url);
    },
    codec(name: string) {
      const codec = scope.registry.codecs.get(name);
      if (!codec) throw new DbflowError(`no codec "${name}".${didYouMean(name, scope.registry.codecs.keys())}`);
      return codec;
    },
    progress: (bytes: number) => scope.progress(key, bytes),
    report: scope.report,
  };
}
