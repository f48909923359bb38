// `dbflow archive <pipeline>`: continuous log archiving of the pipeline's `archive:` databases, until SIGTERM/SIGINT.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { loadPipeline } from '../engine/load.js';
import { resolveRunValues } from '../engine/run-values.js';
import { defaultStateDir } from '../engine/state-dir.js';
import { DbflowError, ExitCode, UsageError } from '../errors.js';
import { archiveDir } from '../ops/archive-state.js';
import { runArchiver } from '../ops/archiver.js';
import type { Encoder } from '../ops/log-store.js';
import type { Registry } from '../plugins/registry.js';
import type { ArtifactLayer, DriverContext, StepContext } from '../plugins/types.js';
import { renderedRoot } from '../spec/object-key.js';
import type { ArchiveSpec } from '../spec/pipeline.js';
import { renderValue } from '../spec/templates.js';
import { didYouMean } from '../spec/suggest.js';
import type { Io } from './io.js';
import { toolContext } from './tool-context.js';

export interface ArchiveCommandOptions {
  stateDir?: string;
  /** Only these databases of `archive:`. */
  database?: string[];
  verbose?: boolean;
}

/** Runs until interrupted; a requested stop (SIGTERM, SIGINT) stores what was received and exits 0. */
export async function archiveCommand(file: string, opts: ArchiveCommandOptions, io: Io): Promise<number> {
  const loaded = await loadPipeline(file);
  const { pipeline, registry } = loaded;
  const names = Object.keys(pipeline.archive);
  if (!names.length)
    throw new UsageError(
      `pipeline "${pipeline.name}" has no "archive:" section; add one naming a database, e.g. archive: { app: { to: "{{ vars.repo }}/wal" } }.`,
    );
  for (const d of opts.database ?? [])
    if (!names.includes(d)) throw new UsageError(`pipeline "${pipeline.name}" does not archive database "${d}".${didYouMean(d, names)}`);
  const chosen = opts.database?.length ? names.filter((n) => opts.database!.includes(n)) : names;
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());

  const stop = new AbortController();
  const abandon = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      io.err(`dbflow: ${sig} again: exiting now; the spool keeps what is not stored yet.`);
      abandon.abort();
      process.exit(ExitCode.interrupted);
    }
    io.err(`dbflow: ${sig}: stopping; storing what was received (send it again to exit at once)…`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const values = resolveRunValues(pipeline, process.env, pipeline.dir, { id: 'archive', started_at: new Date().toISOString(), dir: '' });
  const log = (level: 'debug' | 'info' | 'warn', line: string): void => {
    if (level !== 'debug' || opts.verbose) io.err(`${new Date().toISOString()} ${line}`);
  };
  const { ctx, close } = await toolContext({
    registry,
    signal: abandon.signal,
    name: 'archive',
    secrets: values.hidden,
    secretEnv: [],
    log,
  });
  const locks: string[] = [];
  try {
    await Promise.all(
      chosen.map(async (name) => {
        const spec = pipeline.archive[name]!;
        const db = values.databases[name]!;
        const driver = registry.drivers.get(db.driver);
        const archive = driver?.logArchive;
        if (!archive) throw new DbflowError(`database "${name}" (driver "${db.driver}") cannot archive its log.`);
        const dir = archiveDir(stateDir, pipeline.name, name);
        locks.push(lock(dir, pipeline.name, name));
        const to = renderedRoot(spec.to, values.context, pipeline.dir, `archive "${name}"`);
        const { encoders, suffix } = encoding(registry, ctx, spec, values.context, name);
        const prefix = chosen.length > 1 ? `[${name}] ` : '';
        await runArchiver({
          pipeline: pipeline.name,
          database: name,
          driver: db.driver,
          archive,
          receive: () => archive.receive(ctx, { db, spool: path.join(dir, 'spool'), slot: slotName(pipeline.name, name) }),
          storage: ctx.storage(to),
          root: to,
          suffix,
          encoders,
          flushMs: spec.flushMs,
          dir,
          signal: stop.signal,
          abandon: abandon.signal,
          log: (level, line) => log(level, `${prefix}${line}`),
        });
      }),
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const l of locks) rmSync(l, { force: true });
    close();
  }
  return ExitCode.ok;
}

/** The replication slot of a pipeline's database: `dbflow_<pipeline>_<database>`, in [a-z0-9_], at most 63 characters. */
export function slotName(pipeline: string, database: string): string {
  return `dbflow_${pipeline}_${database}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63);
}

// One archiver per pipeline and database: a pid file in its folder; one of a process that is gone is taken over.
function lock(dir: string, pipeline: string, database: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'archiver.pid');
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid > 0 && pid !== process.pid && alive(pid))
      throw new UsageError(
        `the log of database "${database}" of pipeline "${pipeline}" is archived already by process ${pid}; stop it first.`,
      );
  } catch (err) {
    if (err instanceof UsageError) throw err;
  }
  writeFileSync(file, `${process.pid}\n`);
  return file;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const SUFFIX: Record<string, string> = { zstd: '.zst', gzip: '.gz' };

// The archive's layers: the compress and encrypt steps themselves, run on each file's stream.
function encoding(
  registry: Registry,
  ctx: DriverContext,
  spec: ArchiveSpec,
  context: Record<string, unknown>,
  database: string,
): { encoders: Encoder[]; suffix: string } {
  const encoders: Encoder[] = [];
  let suffix = '';
  for (const uses of ['compress', 'encrypt'] as const) {
    const written = spec[uses];
    if (written === undefined) continue;
    const withValue = renderValue(written, context) as Record<string, unknown>;
    const step = registry.steps.get(uses);
    if (!step) throw new DbflowError(`internal: no "${uses}" step is loaded.`);
    suffix +=
      uses === 'compress'
        ? (SUFFIX[typeof withValue.algorithm === 'string' ? withValue.algorithm : 'zstd'] ?? '')
        : withValue.armor === true
          ? '.asc'
          : '.pgp';
    encoders.push(async (input: Readable) => {
      const stepCtx = Object.create(ctx, {
        id: { value: `archive.${database}.${uses}` },
        stepId: { value: uses },
        with: { value: withValue },
        input: { value: input },
      }) as StepContext;
      const result = await step.run(stepCtx);
      const layer = (result.outputs as { layer?: ArtifactLayer } | undefined)?.layer;
      if (!result.output || !layer) throw new DbflowError(`internal: the "${uses}" step gave no stream or no layer.`);
      return { output: result.output, layer };
    });
  }
  return { encoders, suffix };
}
