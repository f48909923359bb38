// `dbflow backups list` and `dbflow prune`: a repository's backups, and retention over them.
import { marksBeyondReach } from '../repo/mark-reach.js';
import { listMarks, markUrl } from '../repo/marks.js';
import path from 'node:path';
import { ExitCode, UsageError } from '../errors.js';
import { reapDeadRunsHere } from '../ops/reap.js';
import { type Registry, withCallOptions } from '../plugins/registry.js';
import type { StorageScope } from '../repo/backup.js';
import { executePrune, formatAge, planPrune, type PrunePlan } from '../repo/prune.js';
import { restorableRanges, unneededLog } from '../repo/restorable.js';
import {
  artifactBytes,
  isDamaged,
  listRepository,
  type ListedBackup,
  type OrphanFolder,
  type RepositoryListing,
} from '../repo/repository.js';
import { formatBytes } from '../ui/format.js';
import { interruptible, parseCount, parseDurationFlag, shortTime, table } from './command-support.js';
import { defaultStateDir } from './audited.js';
import { commandRegistry, configFile, PLUGINS_ENV } from './command-registry.js';
import type { Io } from './commands.js';

/**
 * Storages by URL scheme, from the registry, their calls aborted by `signal`; an unknown scheme is a usage error that
 * says how to load a plugin's storage.
 */
export function storageScope(registry: Registry, signal?: AbortSignal): StorageScope {
  return {
    storage: (url) => {
      const storage = registry.storageFor(
        url,
        (message) =>
          new UsageError(
            `${message} A plugin's storage is loaded with --plugin <path or package>, ${PLUGINS_ENV}=<path or package>, or under plugins: in ${configFile()}.`,
          ),
      );
      return signal ? withCallOptions(storage, { signal }) : storage;
    },
  };
}

export async function backupsListCommand(repo: string, opts: { json?: boolean; plugin?: string[] }, io: Io): Promise<number> {
  const registry = await commandRegistry(opts.plugin);
  const scope = storageScope(registry);
  const listing = await listRepository(scope, repo);
  const ranges = await restorableRanges(scope, listing.backups, `${listing.repo}/wal`, registry.drivers);
  if (opts.json) {
    io.out(
      JSON.stringify(
        {
          repo: listing.repo,
          backups: listing.backups.map((b) => {
            const range = ranges.get(b.url);
            return { ...backupJson(b), ...(range && { restorable: range }) };
          }),
          orphans: orphansJson(listing.orphans),
          in_progress: inProgressJson(listing.orphans),
        },
        null,
        2,
      ),
    );
    return ExitCode.ok;
  }
  if (!listing.backups.length) io.out(`no backups in ${listing.repo}`);
  else {
    const rows = listing.backups.map((b) => {
      const m = b.manifest;
      if (!m) return ['?', '?', '?', '-', '-', `unreadable manifest: ${b.problem ?? ''}`, b.url];
      return [
        shortTime(m.run.started_at),
        m.pipeline.name,
        m.run.id,
        formatBytes(artifactBytes(m)),
        Object.keys(m.databases).join(',') || '-',
        status(b),
        b.url,
      ];
    });
    for (const line of table([['TIME', 'PIPELINE', 'RUN', 'SIZE', 'DATABASES', 'STATUS', 'BACKUP'], ...rows])) io.out(line);
    for (const b of listing.backups) {
      const r = ranges.get(b.url);
      if (!r) continue;
      const wal = r.wal ? `with the log in ${r.wal}` : 'no log archive beside the backups: its own restore point only';
      io.out(
        `restorable: ${b.manifest!.run.id} (${r.database}) to any time from ${r.from} to ${r.to}, ${wal}${r.gap ? `; the archive lacks ${r.gap}, which ends the range` : ''}`,
      );
    }
  }
  io.out(footer(listing));
  return ExitCode.ok;
}

// The manifest's status (damaged when an artifact is not stored as recorded), the last verify, what is missing.
function status(b: ListedBackup): string {
  const parts: string[] = [isDamaged(b) ? 'DAMAGED' : b.manifest!.status];
  if (b.verify) parts.push(`verify ${b.verify.ok ? 'ok' : 'FAILED'} ${shortTime(b.verify.verified_at)}`);
  if (b.missing.length) parts.push(`MISSING or wrong size: ${b.missing.join(', ')}`);
  return parts.join('; ');
}

// Runs in progress, then the orphans folder by folder with their age, then the totals.
function footer(listing: RepositoryListing): string {
  const n = listing.backups.length;
  const live = listing.orphans.filter((o) => o.run?.alive);
  const dead = listing.orphans.filter((o) => !o.run?.alive);
  const lines = live.map(
    (o) => `in progress: ${o.folder}/ (${o.objects.length} ${o.objects.length === 1 ? 'object' : 'objects'}): ${o.run!.why}`,
  );
  const now = Date.now();
  for (const o of dead) {
    const unfinished = o.objects.filter((x) => x.unfinished).length;
    const age = o.time ? `, ${formatAge(Math.max(0, now - o.time.getTime()))} old` : ', age unknown';
    lines.push(
      `orphaned: ${o.folder}/ (${o.objects.length} ${o.objects.length === 1 ? 'object' : 'objects'}${unfinished ? `, ${unfinished} unfinished ${unfinished === 1 ? 'write' : 'writes'}` : ''}${age})`,
    );
  }
  const objects = dead.flatMap((o) => o.objects);
  const bytes = objects.reduce((s, o) => s + o.bytes, 0);
  const orphans = objects.length
    ? `${objects.length} orphaned ${objects.length === 1 ? 'object' : 'objects'} (${formatBytes(bytes)}) in ${dead.length} ${dead.length === 1 ? 'folder' : 'folders'}: failed or unfinished runs and writes, not backups (\`dbflow prune\` removes them after --orphan-grace)`
    : 'no orphaned objects';
  const damaged = listing.backups.filter((b) => b.manifest && isDamaged(b)).length;
  lines.push(
    `${n} ${n === 1 ? 'backup' : 'backups'}${damaged ? ` (${damaged} DAMAGED)` : ''}; ${orphans}${live.length ? `; ${live.length} ${live.length === 1 ? 'run' : 'runs'} in progress` : ''}`,
  );
  return lines.join('\n');
}

function backupJson(b: ListedBackup): Record<string, unknown> {
  const m = b.manifest;
  if (!m) return { url: b.url, problem: b.problem, objects: b.objects.length };
  return {
    url: b.url,
    run_id: m.run.id,
    pipeline: m.pipeline.name,
    started_at: m.run.started_at,
    finished_at: m.run.finished_at,
    bytes: artifactBytes(m),
    databases: Object.keys(m.databases),
    status: isDamaged(b) ? 'damaged' : m.status,
    manifest_status: m.status,
    last_verify: b.verify
      ? { ok: b.verify.ok, verified_at: b.verify.verified_at, failed: b.verify.artifacts.filter((a) => !a.ok).map((a) => a.path) }
      : null,
    missing: b.missing,
  };
}

function orphansJson(orphans: OrphanFolder[]): Record<string, unknown> {
  const dead = orphans.filter((o) => !o.run?.alive);
  const objects = dead.flatMap((o) => o.objects);
  const now = Date.now();
  return {
    objects: objects.length,
    bytes: objects.reduce((s, o) => s + o.bytes, 0),
    folders: dead.map((o) => ({
      folder: o.folder,
      run_started_at: o.time?.toISOString() ?? null,
      age_seconds: o.time ? Math.max(0, Math.floor((now - o.time.getTime()) / 1000)) : null,
      objects: o.objects.map((x) => x.url),
      unfinished: o.objects
        .filter((x) => x.unfinished)
        .map((x) => ({
          url: x.url,
          bytes: x.bytes,
          modified: x.modified ?? null,
          ...(x.unfinished?.upload && { upload: x.unfinished.upload }),
        })),
    })),
  };
}

function inProgressJson(orphans: OrphanFolder[]): Record<string, unknown>[] {
  return orphans
    .filter((o) => o.run?.alive)
    .map((o) => ({
      folder: o.folder,
      why: o.run!.why,
      run_id: o.run!.lease?.run_id ?? null,
      pipeline: o.run!.lease?.pipeline ?? null,
      heartbeat_at: o.run!.lease?.heartbeat_at ?? null,
      objects: o.objects.map((x) => x.url),
    }));
}

/** Options of `dbflow prune`. */
export interface PruneCommandOptions {
  keepLast?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  orphanGrace: string;
  dryRun?: boolean;
  json?: boolean;
  /** Where the run records are: the dead runs among them are reaped. */
  stateDir?: string;
  /** --plugin: plugins to load (a storage of the repository). */
  plugin?: string[];
}

export async function pruneCommand(repo: string, opts: PruneCommandOptions, io: Io): Promise<number> {
  const policy = {
    last: parseCount(opts.keepLast, '--keep-last'),
    daily: parseCount(opts.keepDaily, '--keep-daily'),
    weekly: parseCount(opts.keepWeekly, '--keep-weekly'),
    monthly: parseCount(opts.keepMonthly, '--keep-monthly'),
  };
  if (!policy.last && !policy.daily && !policy.weekly && !policy.monthly) {
    throw new UsageError('prune needs a policy: at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly above 0.');
  }
  const orphanGraceMs = parseDurationFlag(opts.orphanGrace, '--orphan-grace');
  if (!opts.dryRun)
    reapDeadRunsHere({
      stateDir: path.resolve(opts.stateDir ?? defaultStateDir()),
      by: 'dbflow prune',
      log: (m) => io.err(`dbflow: ${m}`),
    });
  const registry = await commandRegistry(opts.plugin);
  // A signal stops the storage calls in flight: what was deleted is deleted, and the next prune goes on from there.
  const verb = opts.dryRun ? 'would remove' : 'removed';
  const { plan, deleted, spared, wal, marks } = await interruptible(io, 'prune', async (signal) => {
    const scope = storageScope(registry, signal);
    const listing = await listRepository(scope, repo);
    const plan = planPrune(listing, { policy, orphanGraceMs, orphanGraceLabel: opts.orphanGrace, now: new Date() });
    if (!opts.json) printPlan(plan, io, opts.dryRun === true);
    // The WAL that no kept base backup needs; none while a backup's manifest cannot be read (it may be a base).
    const wal = plan.skipped.length
      ? []
      : await unneededLog(
          scope,
          plan.keep.map((k) => k.backup),
          `${listing.repo}/wal`,
          registry.drivers,
        );
    for (const w of wal)
      if (!opts.json)
        io.out(
          `${verb} ${w.objects.length} objects of ${w.folder}, the log files before ${w.keepFrom} and their records: no kept base needs them`,
        );
    // The recovery marks that no kept base can reach any more go with the bases; none while a manifest cannot be read.
    const marks = plan.skipped.length
      ? []
      : marksBeyondReach(
          (await listMarks(scope.storage(listing.repo), listing.repo)).marks,
          plan.keep.map((k) => k.backup),
          registry.drivers,
        );
    if (marks.length && !opts.json)
      io.out(
        `${verb} ${marks.length} recovery ${marks.length === 1 ? 'mark' : 'marks'} (${marks[0]!.name} …): no kept base ends before them`,
      );
    if (opts.dryRun) return { plan, deleted: [], spared: [], wal, marks };
    const done = await executePrune(scope, plan, (url) => {
      if (!opts.json) io.out(`  deleted ${url}`);
    });
    for (const f of done.spared) io.err(`dbflow: kept ${f}: a run started writing there, or published a manifest, while pruning.`);
    for (const o of wal.flatMap((w) => w.objects)) await scope.storage(o.url).delete(o.url);
    for (const m of marks) await scope.storage(listing.repo).delete(markUrl(listing.repo, m.name));
    return { plan, deleted: done.deleted.map((o) => o.url), spared: done.spared, wal, marks };
  });
  const removedObjects =
    plan.remove.reduce((n, b) => n + b.objects.length, 0) +
    plan.orphans.filter((o) => o.remove && !spared.includes(o.orphan.folder)).reduce((n, o) => n + o.orphan.objects.length, 0);
  if (opts.json) {
    const logs = wal.map((w) => ({ folder: w.folder, keep_from: w.keepFrom, files: w.objects.map((o) => o.url) }));
    io.out(
      JSON.stringify({ ...pruneJson(plan, opts.dryRun === true, deleted, spared), wal: logs, marks: marks.map((m) => m.name) }, null, 2),
    );
  } else {
    io.out(
      `${plan.keep.length} kept, ${plan.remove.length} ${opts.dryRun ? 'to remove' : 'removed'}${plan.skipped.length ? `, ${plan.skipped.length} skipped` : ''}; ${verb} ${removedObjects} ${removedObjects === 1 ? 'object' : 'objects'}${opts.dryRun ? ' (dry run: nothing was deleted)' : ''}`,
    );
  }
  return ExitCode.ok;
}

function printPlan(plan: PrunePlan, io: Io, dryRun: boolean): void {
  const rows: string[][] = [];
  for (const { backup, reasons } of plan.keep) rows.push(['keep', ...describe(backup), reasons.join(', ')]);
  for (const b of plan.remove)
    rows.push([
      dryRun ? 'would remove' : 'remove',
      ...describe(b),
      `no rule keeps it (${b.objects.length} ${b.objects.length === 1 ? 'object' : 'objects'})`,
    ]);
  for (const { backup, why } of plan.skipped) rows.push(['skip', '?', '?', backup.url, `not touched: ${why}`]);
  for (const line of table(rows)) io.out(line);
  for (const { orphan, remove, why } of plan.orphans) {
    const n = orphan.objects.length;
    io.out(
      `${remove ? (dryRun ? 'would remove' : 'remove') : 'keep'} orphaned ${orphan.folder}/ (${n} ${n === 1 ? 'object' : 'objects'}): ${why}`,
    );
  }
}

function describe(b: ListedBackup): string[] {
  const m = b.manifest!;
  return [shortTime(m.run.started_at), m.pipeline.name, b.url];
}

function pruneJson(plan: PrunePlan, dryRun: boolean, deleted: string[], spared: string[]): Record<string, unknown> {
  const brief = (b: ListedBackup): Record<string, unknown> => ({
    url: b.url,
    run_id: b.manifest!.run.id,
    pipeline: b.manifest!.pipeline.name,
    started_at: b.manifest!.run.started_at,
    status: isDamaged(b) ? 'damaged' : b.manifest!.status,
  });
  return {
    dry_run: dryRun,
    kept: plan.keep.map((k) => ({ ...brief(k.backup), reasons: k.reasons })),
    removed: plan.remove.map((b) => ({ ...brief(b), objects: b.objects.map((o) => o.url) })),
    skipped: plan.skipped.map((s) => ({ url: s.backup.url, why: s.why })),
    orphans: plan.orphans.map((o) => ({
      folder: o.orphan.folder,
      remove: o.remove && !spared.includes(o.orphan.folder),
      why: o.why,
      objects: o.orphan.objects.map((x) => x.url),
    })),
    deleted,
  };
}
