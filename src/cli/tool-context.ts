// The context drivers and codecs get outside a run (verify, restore): programs, a scratch folder, storages, codecs.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DbflowError } from '../errors.js';
import { runProgram } from '../engine/program.js';
import { newRunId } from '../engine/run-record.js';
import { commandTmpPrefix, reapCommandTmpdirs } from '../ops/reap.js';
import { Redactor } from '../engine/secrets.js';
import { type Registry, withCallOptions } from '../plugins/registry.js';
import type { DriverContext, ManifestReporter } from '../plugins/types.js';
import { didYouMean } from '../spec/suggest.js';

/** What a tool context needs. */
export interface ToolContextOptions {
  registry: Registry;
  signal: AbortSignal;
  /** The command, e.g. `restore`: the context's id. */
  name: string;
  /** Values never shown and never passed to a program's environment. */
  secrets: string[];
  /** Environment variables that hold secrets: removed from every program's environment. */
  secretEnv: string[];
  log: (level: 'debug' | 'info' | 'warn', message: string) => void;
}

const unsupported = (what: string) => (): never => {
  throw new DbflowError(`internal: ${what} is not available outside a pipeline run.`);
};

const noReport: ManifestReporter = {
  database: () => undefined,
  coordination: () => undefined,
  artifact: () => undefined,
  verification: () => undefined,
};

/** A DriverContext for a command; `close()` removes its scratch folder. */
export async function toolContext(o: ToolContextOptions): Promise<{ ctx: DriverContext; close: () => void }> {
  const { execa } = await import('execa');
  // What killed commands left (their folders, a throwaway server still running) goes first.
  for (const dir of reapCommandTmpdirs()) o.log('info', `removed ${dir}, a temporary folder of a command that died`);
  const redactor = new Redactor();
  for (const s of o.secrets) redactor.add(s);
  const id = newRunId();
  let tmp: string | undefined;
  // Named with this process's id: if it is killed, the next run or prune removes the folder (credential files included).
  const tmpdir = (): string => (tmp ??= mkdtempSync(path.join(os.tmpdir(), commandTmpPrefix(o.name))));
  const log = (level: 'debug' | 'info' | 'warn') => (message: string) => o.log(level, redactor.redact(message));
  const ctx: DriverContext = {
    id: o.name,
    stepId: o.name,
    with: {},
    matrix: {},
    run: { id, startedAt: new Date(), pipeline: o.name, dir: path.join(os.tmpdir(), `dbflow-${o.name}-${id}`), pipelineDir: process.cwd() },
    signal: o.signal,
    log: { debug: log('debug'), info: log('info'), warn: log('warn') },
    get tmpdir() {
      return tmpdir();
    },
    get input(): Readable {
      throw new DbflowError(`internal: "${o.name}" has no input stream.`);
    },
    inputPipe: () => undefined,
    inputStats: () => Promise.reject(new DbflowError(`internal: "${o.name}" has no input stream.`)),
    chain: [],
    exec(file, args, options = {}) {
      // Variables that hold a secret (the passphrase, the target's password) stay out of children.
      return runProgram({ execa, signal: o.signal, redactor, hiddenEnv: o.secretEnv, log: log('info') }, file, args, options);
    },
    lease: unsupported('lease()'),
    resource: unsupported('resource()'),
    outputsOf: unsupported('outputsOf()'),
    database: unsupported('database()'),
    databaseNames: () => [],
    storage(url: string) {
      return withCallOptions(o.registry.storageFor(url), { signal: o.signal });
    },
    codec(name: string) {
      const codec = o.registry.codecs.get(name);
      if (!codec)
        throw new DbflowError(`no codec "${name}" (the backup needs it to decode a layer).${didYouMean(name, o.registry.codecs.keys())}`);
      return codec;
    },
    progress: () => undefined,
    report: noReport,
  };
  return {
    ctx,
    close: () => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
}
