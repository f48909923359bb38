// `dbflow restore <repository> --to-mark <name or time> --target <db>=<folder or url> …`: every participant of a
// recovery mark restored, in parallel, each into its own target, to the point the mark recorded in its log.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DbflowError, ExitCode, UsageError } from '../errors.js';
import { normalizeUrl } from '../repo/backup.js';
import { lsnValue, RFC3339 } from '../repo/log-points.js';
import { listMarks, type MarkRecord } from '../repo/marks.js';
import { didYouMean } from '../spec/suggest.js';
import { commandRegistry } from './command-registry.js';
import type { Io } from './io.js';
import { storageScope } from './repo-commands.js';
import { restoreAt, type RecoveryTarget, type RestoreCommandOptions } from './restore-commands.js';

export interface MarkRestoreOptions extends RestoreCommandOptions {
  toMark: string;
  /** `<database>=<folder>` (a base backup into a data directory) or `<database>=<url>` (a dump into a server). */
  target?: string[];
}

const URL_TARGET = /^[a-z][a-z0-9+.-]*:\/\//i;

export async function markRestoreCommand(url: string, opts: MarkRestoreOptions, io: Io): Promise<number> {
  for (const flag of [
    'toTime',
    'toLsn',
    'toRestorePoint',
    'toPosition',
    'toGtid',
    'latest',
    'to',
    'toDatadir',
    'database',
    'list',
  ] as const)
    if (opts[flag] !== undefined && opts[flag] !== false)
      throw new UsageError(
        `--to-mark restores every database of the mark, each to its --target <database>=<folder or url>; it takes no --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}.`,
      );
  const registry = await commandRegistry(opts.plugin);
  const repo = normalizeUrl(url, 'repository');
  const mark = await findMark(registry, repo, opts.toMark, io);
  const targets = parseTargets(opts.target ?? [], mark);
  io.out(
    `restoring ${targets.size} ${targets.size === 1 ? 'database' : 'databases'} to mark ${mark.name} (${mark.time}), in parallel: ${[...targets].map(([d, t]) => `${d} → ${t}`).join(', ')}`,
  );
  // Each participant as `dbflow restore` would restore it to the mark's point in its log, its lines prefixed with its name.
  const results = await Promise.allSettled(
    [...targets].map(async ([database, target]) => {
      const prefixed: Io = { ...io, out: (t) => io.out(`[${database}] ${t}`), err: (t) => io.err(`[${database}] ${t}`) };
      const into =
        URL_TARGET.test(target) && !target.startsWith('file:') ? { to: target } : { toDatadir: target.replace(/^file:\/\//, '') };
      const one: RestoreCommandOptions = { ...opts, database, ...into };
      return restoreAt(registry, repo, one, pointOf(mark, database), prefixed);
    }),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [[[...targets.keys()][i]!, r.reason as Error] as const] : []));
  if (failed.length === 1) throw failed[0]![1];
  if (failed.length) {
    for (const [database, err] of failed) io.err(`dbflow: [${database}] ${err.message}`);
    const message = `${failed.length} of ${targets.size} databases could not be restored to mark ${mark.name}: ${failed.map(([d]) => d).join(', ')} (see above).`;
    throw failed.every(([, e]) => e instanceof UsageError) ? new UsageError(message) : new DbflowError(message);
  }
  io.out(
    `✔ ${targets.size} ${targets.size === 1 ? 'database' : 'databases'} restored to mark ${mark.name}: one consistent point across ${[...targets.keys()].join(', ')}`,
  );
  return ExitCode.ok;
}

// The mark named, or for an RFC 3339 time the newest at or before it (said so).
async function findMark(registry: Awaited<ReturnType<typeof commandRegistry>>, repo: string, wanted: string, io: Io): Promise<MarkRecord> {
  const { marks } = await listMarks(storageScope(registry).storage(repo), repo);
  if (!marks.length) throw new UsageError(`${repo} holds no recovery marks (dbflow mark <pipeline> records them).`);
  if (RFC3339.test(wanted) && !Number.isNaN(Date.parse(wanted))) {
    const at = Date.parse(wanted);
    const newest = marks.filter((m) => Date.parse(m.time) <= at).at(-1);
    if (!newest) throw new UsageError(`no mark in ${repo} is at or before ${wanted}; the oldest is ${marks[0]!.name} (${marks[0]!.time}).`);
    io.out(`--to-mark ${wanted}: the newest mark at or before it is ${newest.name} (${newest.time})`);
    return newest;
  }
  const found = marks.find((m) => m.name === wanted);
  if (!found)
    throw new UsageError(
      `${repo} holds no mark "${wanted}".${didYouMean(
        wanted,
        marks.map((m) => m.name),
      )} Give a mark's name (dbflow marks ${repo}) or an RFC 3339 time.`,
    );
  return found;
}

// `--target db=where` for every participant, and none for another database.
function parseTargets(given: readonly string[], mark: MarkRecord): Map<string, string> {
  const names = Object.keys(mark.participants);
  const targets = new Map<string, string>();
  for (const t of given) {
    const at = t.indexOf('=');
    const [database, where] = at > 0 ? [t.slice(0, at), t.slice(at + 1)] : [t, ''];
    if (!where)
      throw new UsageError(`--target "${t}": write it as <database>=<folder or url>, e.g. --target ${names[0]}=./restored/${names[0]}.`);
    if (!names.includes(database))
      throw new UsageError(`--target "${t}": mark ${mark.name} has no database "${database}".${didYouMean(database, names)}`);
    if (targets.has(database)) throw new UsageError(`--target ${database} is given twice.`);
    targets.set(database, where);
  }
  const missing = names.filter((n) => !targets.has(n));
  if (missing.length)
    throw new UsageError(
      `mark ${mark.name} covers ${names.join(', ')}: give a --target for each (missing: ${missing.map((m) => `--target ${m}=<folder or url>`).join(' ')}).`,
    );
  return targets;
}

// Where one participant's recovery stops, and which bases may start it: those that end before the mark's point.
function pointOf(mark: MarkRecord, database: string): RecoveryTarget {
  const p = mark.participants[database]!.position;
  const label = `mark ${mark.name}`;
  if (typeof p.restore_point === 'string' && typeof p.lsn === 'string')
    return { flag: '--to-mark', label, settings: { name: p.restore_point }, before: { lsn: lsnValue(p.lsn) } };
  if (typeof p.position === 'string') return { flag: '--to-mark', label, log: { position: p.position }, before: { position: p.position } };
  throw new UsageError(`mark ${mark.name} records no point for "${database}" that a restore can reach (${JSON.stringify(p)}).`);
}

/**
 * `dbflow verify --marks <repository> --restore [--mark <name>]`: the mark (default: the newest) restored, every
 * participant into a data directory of its own in a temporary folder (a dump base into a server is not tried: give
 * `restore --to-mark` a --target), each recovery reaching the mark's point in its log; the folders are removed after.
 */
export async function markRestoreTest(url: string, opts: RestoreCommandOptions & { mark?: string }, io: Io): Promise<number> {
  const registry = await commandRegistry(opts.plugin);
  const repo = normalizeUrl(url, 'repository');
  const { marks } = await listMarks(storageScope(registry).storage(repo), repo);
  const name = opts.mark ?? marks.at(-1)?.name;
  if (!name) throw new UsageError(`${repo} holds no recovery marks (dbflow mark <pipeline> records them).`);
  const mark = marks.find((m) => m.name === name) ?? (await findMark(registry, repo, name, io));
  // Readable by the server's user when dbflow runs as root (PostgreSQL refuses to run as root).
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-mark-restore-'));
  chmodSync(dir, 0o755);
  try {
    const target = Object.keys(mark.participants).map((d) => `${d}=${path.join(dir, d)}`);
    const { mark: _, ...rest } = opts;
    return await markRestoreCommand(url, { ...rest, toMark: mark.name, target }, io);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
