// A StepContext built by hand, for calling a driver's methods or a step's run(ctx) outside a run.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execa, type Options as ExecaOptions } from 'execa';
import { programEnv } from '../engine/program.js';
import type { DatabaseConfig, DatabaseDriver, EdgeStats, StepContext } from '../plugins/types.js';

/** What a test context is made of; everything else gets a neutral value or throws when used. */
export interface TestContextOptions<W> {
  /** The step's `with` (default `{}`). */
  with?: W;
  /** The stream of `ctx.input` (transform and sink steps). */
  input?: Readable;
  /** Aborted to cancel; default: never aborted. */
  signal?: AbortSignal;
  /** Databases `ctx.database(name)` serves, with their driver. */
  databases?: Record<string, { config: DatabaseConfig; driver: DatabaseDriver }>;
  /** The instance id (default `test`). */
  id?: string;
  /** Variables every program gets on top of the minimal environment a run gives them (a PATH without a tool, say). */
  env?: Record<string, string>;
}

/** A context, the lines it logged, and `dispose()`, which removes its tmpdir. */
export interface TestContext<W> {
  ctx: StepContext<W>;
  logs: string[];
  dispose: () => void;
}

/**
 * A context like the engine's for one step: `exec` runs programs as a run does (no shell, the minimal
 * environment, killed on `signal`, stderr lines logged), `tmpdir` is a fresh folder, `log` collects
 * lines. `lease`, `resource`, `outputsOf`, `storage`, `codec` and `inputStats` throw: a test that needs
 * them runs a pipeline instead.
 */
export function testContext<W = Record<string, unknown>>(options: TestContextOptions<W> = {}): TestContext<W> {
  const id = options.id ?? 'test';
  const signal = options.signal ?? new AbortController().signal;
  const tmpdir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-testing-'));
  const logs: string[] = [];
  const log = (level: string) => (message: string) => void logs.push(`${level}: ${message}`);
  const unavailable = (what: string) => (): never => {
    throw new Error(`dbflow/testing: ${what} is not available in a test context; run a pipeline to test it.`);
  };
  const ctx: StepContext<W> = {
    id,
    stepId: id.replace(/\[.*$/, ''),
    with: options.with ?? ({} as W),
    matrix: {},
    run: { id: 'test-run', startedAt: new Date(), pipeline: 'test', dir: tmpdir, pipelineDir: process.cwd() },
    signal,
    log: { debug: log('debug'), info: log('info'), warn: log('warn') },
    tmpdir,
    input: options.input ?? Readable.from([]),
    inputPipe: () => undefined,
    inputStats: () => Promise.reject<EdgeStats>(new Error('dbflow/testing: inputStats() is not available in a test context.')),
    chain: [],
    exec(file: string, args: readonly string[], execOptions: ExecaOptions = {}) {
      const sub = execa(file, args, {
        cancelSignal: signal,
        forceKillAfterDelay: 2000,
        ...execOptions,
        env: programEnv({}, { ...options.env, ...execOptions.env }),
        extendEnv: false,
      });
      if (execOptions.stderr === undefined) {
        sub.stderr?.on('data', (chunk: Buffer) => {
          for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(`info: ${path.basename(file)}: ${line}`);
        });
      }
      return sub;
    },
    lease: unavailable('lease()'),
    resource: unavailable('resource()'),
    outputsOf: unavailable('outputsOf()'),
    database(name: string) {
      const found = options.databases?.[name];
      if (!found) throw new Error(`dbflow/testing: the test context has no database "${name}".`);
      return found;
    },
    databaseNames: () => Object.keys(options.databases ?? {}),
    storage: unavailable('storage()'),
    codec: unavailable('codec()'),
    progress: () => undefined,
    report: { database: () => undefined, coordination: () => undefined, artifact: () => undefined, verification: () => undefined },
  };
  return { ctx, logs, dispose: () => rmSync(tmpdir, { recursive: true, force: true }) };
}
