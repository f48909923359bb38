// `dbflow mark <pipeline>`: one recovery mark over the pipeline's `marks:` databases, recorded in its repository;
// `dbflow marks <repository>`: the marks recorded there.
import { loadPipeline } from '../engine/load.js';
import { resolveRunValues } from '../engine/run-values.js';
import { ExitCode, UsageError } from '../errors.js';
import { takeMark } from '../ops/mark.js';
import { markReach, type MarkReach } from '../repo/mark-reach.js';
import { listMarks, type MarkRecord } from '../repo/marks.js';
import { listRepository } from '../repo/repository.js';
import { normalizeUrl } from '../repo/backup.js';
import { renderedRoot } from '../spec/object-key.js';
import { commandRegistry } from './command-registry.js';
import { interruptible, table } from './command-support.js';
import type { Io } from './io.js';
import { storageScope } from './repo-commands.js';
import { toolContext } from './tool-context.js';

export interface MarkCommandOptions {
  json?: boolean;
  verbose?: boolean;
}

/** Takes one mark; exit 0 with its record, 1 when it could not be taken (every barrier released, nothing stored). */
export async function markCommand(file: string, opts: MarkCommandOptions, io: Io): Promise<number> {
  const { pipeline, registry } = await loadPipeline(file);
  const marks = pipeline.marks;
  if (!marks)
    throw new UsageError(
      `pipeline "${pipeline.name}" has no "marks:" section; add one naming the databases to mark together, e.g. marks: { databases: [app, billing], to: "{{ vars.repo }}" }.`,
    );
  const values = resolveRunValues(pipeline, process.env, pipeline.dir, { id: 'mark', started_at: new Date().toISOString(), dir: '' });
  const repo = renderedRoot(marks.to, values.context, pipeline.dir, 'marks');
  const { record, url } = await interruptible(io, 'mark', async (signal) => {
    const { ctx, close } = await toolContext({
      registry,
      signal,
      name: 'mark',
      secrets: values.hidden,
      secretEnv: [],
      log: (level, line) => {
        if (level === 'warn' || opts.verbose) io.err(`${level === 'warn' ? 'warning: ' : ''}${line}`);
      },
    });
    try {
      const targets = marks.databases.map((name) => {
        const config = values.databases[name]!;
        return { name, config, driver: registry.drivers.get(config.driver)! };
      });
      return await takeMark(ctx, targets, {
        pipeline: pipeline.name,
        repo,
        storage: ctx.storage(repo),
        barrierTimeoutMs: marks.barrierTimeoutMs,
      });
    } finally {
      close();
    }
  });
  if (opts.json) io.out(JSON.stringify({ ...record, url }));
  else {
    io.out(
      `✔ mark ${record.name} over ${Object.keys(record.participants).join(', ')}: commits blocked for at most ${record.blocked_ms} ms`,
    );
    for (const line of markLines(record)) io.out(`  ${line}`);
    io.out(`recorded at ${url}`);
  }
  return ExitCode.ok;
}

export interface MarksListOptions {
  json?: boolean;
  /** Exit 1 when a mark cannot be reached (`dbflow verify --marks`). */
  verify?: boolean;
  /** The log archive (default: wal/ beside the backups). */
  wal?: string;
  plugin?: string[];
}

/**
 * Lists the marks of a repository, oldest first, each with whether a restore can reach it: for every participant a
 * kept base that ends before it and its archived log stored that far without a gap.
 */
export async function marksListCommand(repoUrl: string, opts: MarksListOptions, io: Io): Promise<number> {
  const registry = await commandRegistry(opts.plugin);
  const repo = normalizeUrl(repoUrl, 'repository');
  const scope = storageScope(registry);
  const { marks, unreadable } = await listMarks(scope.storage(repo), repo);
  const walRoot = opts.wal ? normalizeUrl(opts.wal, 'log archive') : `${repo}/wal`;
  const backups = marks.length ? (await listRepository(scope, repo)).backups : [];
  const verdicts = new Map<string, MarkReach[]>();
  for (const m of marks) verdicts.set(m.name, await markReach(scope, backups, walRoot, registry.drivers, m));
  const unreachable = marks.filter((m) => verdicts.get(m.name)!.some((v) => !v.ok));
  if (opts.json) io.out(JSON.stringify({ repo, marks: marks.map((m) => ({ ...m, reach: verdicts.get(m.name) })), unreadable }, null, 2));
  else {
    if (!marks.length && !unreadable.length) io.out(`${repo} holds no marks (dbflow mark <pipeline> takes one).`);
    else
      for (const line of table([
        ['MARK', 'TIME', 'DATABASES', 'BLOCKED', 'RESTORABLE'],
        ...marks.map((m) => {
          const bad = verdicts.get(m.name)!.find((v): v is Extract<MarkReach, { ok: false }> => !v.ok);
          return [
            m.name,
            m.time,
            Object.keys(m.participants).join(','),
            `${m.blocked_ms} ms`,
            bad ? `no: ${bad.database}: ${bad.why}` : 'yes',
          ];
        }),
      ]))
        io.out(line);
    for (const u of unreadable) io.err(`dbflow: ${u.url}: ${u.problem}`);
  }
  if (opts.verify && unreachable.length)
    io.err(
      `dbflow: ${unreachable.length} of ${marks.length} marks cannot be restored to (see RESTORABLE); the first is ${unreachable[0]!.name}.`,
    );
  return unreadable.length || (opts.verify && unreachable.length) ? ExitCode.stepFailed : ExitCode.ok;
}

/** Each participant of a mark and where it stands in its log, one line each. */
function markLines(record: MarkRecord): string[] {
  return Object.entries(record.participants).map(([name, p]) => {
    const { system, file, ...rest } = p.position;
    const at = Object.entries(rest)
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ');
    return `${name}: ${at} (log ${system}/${file}; ${p.method}, held ${p.held_ms} ms)`;
  });
}
