// `dbflow verify` and `dbflow restore`: a stored backup read back with every check, to nowhere or into a database.
import { LSN, lsnValue, RFC3339 } from '../repo/log-points.js';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { dbflowVersion } from '../engine/versions.js';
import { passwordsOf } from '../engine/secrets.js';
import {
  ExitCode,
  IntegrityError,
  isErrorKind,
  keyErrorIn,
  RepositoryError,
  UncheckedError,
  UsageError,
  type KeyError,
} from '../errors.js';
import type {
  DatabaseDriver,
  DecodeKeys,
  DriverContext,
  EdgeStats,
  LogArchive,
  LogStart,
  LogTarget,
  RecoveryOptions,
} from '../plugins/types.js';
import type { DecodeScope } from '../repo/restore.js';
import { normalizeUrl, openBackup, type Backup } from '../repo/backup.js';
import { archiveSystems, logArchiveAt } from '../repo/log-verify.js';
import { restoreBackup, restoreDatadir, targetConfig, type RestoreResult, type RestoreTarget } from '../repo/restore-backup.js';
import { listRepository } from '../repo/repository.js';
import { fetchLogFrom } from '../repo/log-fetch.js';
import { artifactBytes } from '../repo/repository.js';
import { verifyBackup, type ArtifactVerdict } from '../repo/verify.js';
import { VERIFY_RECORD_NAME, writeVerifyRecord } from '../repo/verify-record.js';
import { formatBytes } from '../ui/format.js';
import {
  displayUrl,
  interruptible,
  keyHint,
  PASSPHRASE_ENV,
  readKeys,
  secretsOf,
  shortTime,
  table,
  TARGET_PASSWORD_ENV,
  type KeyOptions,
} from './command-support.js';
import { backupCodecs, commandRegistry, loadManifestPlugins } from './command-registry.js';
import type { Io } from './io.js';
import { storageScope } from './repo-commands.js';
import { toolContext } from './tool-context.js';
import { repositoryOfBackup } from './audited.js';

/** Options of `dbflow verify`. */
export interface VerifyCommandOptions extends KeyOptions {
  record?: boolean;
  /** Also recover each base backup in a throwaway instance and compare its counts with the manifest's. */
  restore?: boolean;
  verbose?: boolean;
  /** --plugin: plugins to load besides those the manifest records (a storage of the repository). */
  plugin?: string[];
}

export async function verifyCommand(url: string, opts: VerifyCommandOptions, io: Io): Promise<number> {
  const keys = readKeys(opts);
  const registry = await commandRegistry(opts.plugin);
  const scope = storageScope(registry);
  const folder = normalizeUrl(url, 'backup');
  const logs = folder.endsWith('/manifest.json') ? undefined : await logArchiveAt(scope.storage(folder), folder);
  if (logs) return (await import('./log-verify-command.js')).logVerifyCommand(registry, logs.root, logs.systems, io);
  const backup = await openBackup(scope, url);
  const { manifest } = backup;
  await loadManifestPlugins(
    registry,
    manifest,
    {
      codecs: backupCodecs(manifest),
      ...(opts.restore && { drivers: [...new Set(Object.values(manifest.databases).map((d) => d.driver))] }),
    },
    (m) => new UncheckedError(`${m} Nothing was checked (exit ${ExitCode.unchecked}).`),
  );
  const n = manifest.artifacts.length;
  io.out(
    `verifying ${backup.url} (pipeline ${manifest.pipeline.name}, run ${manifest.run.id}, ${n} ${n === 1 ? 'artifact' : 'artifacts'}, ${formatBytes(artifactBytes(manifest))})`,
  );
  // --restore: what each recovered base backup was found to hold, by artifact path.
  const restored = new Map<string, string>();
  const verdicts = await interruptible(io, 'verify', async (signal) => {
    const { ctx, close } = await toolContext({
      registry,
      signal,
      name: 'verify',
      secrets: secretsOf(keys),
      secretEnv: [PASSPHRASE_ENV],
      log: logTo(io, opts.verbose),
    });
    try {
      const checked = await verifyBackup(ctx, backup, keys, signal, (v) => io.out(verdictLine(v, backup)));
      if (opts.restore) await restoreChecks(ctx, registry.drivers, backup, keys, checked, restored, io);
      return checked;
    } finally {
      close();
    }
  });
  const failed = verdicts.filter((v) => !v.ok);
  const inconclusive = verdicts.some((v) => !v.conclusive);
  if (failed.length && failed.every((v) => !v.conclusive)) {
    const reasons = failed.map((v) => `  ${v.path}: ${v.key ? keyAdvice(v.key) : (v.error ?? '')}`).join('\n');
    throw new UncheckedError(
      `verify could not check ${failed.length} of ${n} ${n === 1 ? 'artifact' : 'artifacts'} of ${backup.url}, which says nothing about the backup (exit ${ExitCode.unchecked}: not checked; exit 1 would mean damaged):\n${reasons}`,
    );
  }
  if (opts.record !== false && inconclusive)
    io.err(
      `dbflow: not recorded in ${backup.url}/${VERIFY_RECORD_NAME}: some artifacts could not be checked (see below), which says nothing about the backup.`,
    );
  if (opts.record !== false && !inconclusive) {
    const record = {
      format: 'dbflow-verify' as const,
      version: 1 as const,
      verified_at: new Date().toISOString(),
      ok: failed.length === 0,
      dbflow: dbflowVersion(),
      artifacts: verdicts.map((v) => ({
        path: v.path,
        ok: v.ok,
        detail: v.ok ? `${detailOf(v)}${restored.has(v.path) ? `; ${restored.get(v.path)}` : ''}` : (v.error ?? ''),
      })),
    };
    try {
      await writeVerifyRecord(storageScope(registry).storage(backup.url), backup.url, record);
      io.out(`recorded in ${backup.url}/${VERIFY_RECORD_NAME}`);
    } catch (err) {
      io.err(
        `dbflow: warning: could not record the result in ${backup.url}/${VERIFY_RECORD_NAME} (${(err as Error).message}); use --no-record on a read-only repository.`,
      );
    }
  }
  if (failed.length) {
    const reasons = failed.map((v) => `  ${v.error ?? ''}`).join('\n');
    throw new IntegrityError(
      `verify failed: ${failed.length} of ${n} ${n === 1 ? 'artifact' : 'artifacts'} of ${backup.url} did not pass:\n${reasons}${keyHint(keys)}`,
    );
  }
  io.out(
    `✔ ${n} of ${n} ${n === 1 ? 'artifact' : 'artifacts'} verified: stored bytes, every layer's integrity check and the decoded dump equal the manifest's`,
  );
  if (opts.restore)
    io.out(
      `${restored.size === n ? '✔' : '!'} ${restored.size} of ${n} ${n === 1 ? 'artifact' : 'artifacts'} restored and counted${restored.size < n ? ' (see "not restored" above)' : ''}`,
    );
  return ExitCode.ok;
}

// `verify --restore`: each base backup that passed is recovered in a throwaway instance (its own data directory
// and port, removed after) to the point its counts were taken at, and counted; a difference fails its verdict.
async function restoreChecks(
  ctx: DriverContext & DecodeScope,
  drivers: ReadonlyMap<string, DatabaseDriver>,
  backup: Backup,
  keys: DecodeKeys,
  verdicts: ArtifactVerdict[],
  restored: Map<string, string>,
  io: Io,
): Promise<void> {
  for (const v of verdicts) {
    if (!v.ok) continue;
    const artifact = backup.manifest.artifacts.find((a) => a.path === v.path)!;
    const driver = drivers.get(backup.manifest.databases[v.database]?.driver ?? '');
    if (!driver?.restoreInstance || !driver.physicalFormats?.includes(artifact.format)) {
      io.out(
        `not restored  ${v.database}  ${v.path}  a ${artifact.format} artifact restores into a server (dbflow restore --to <url>); --restore recovers base backups in a throwaway instance`,
      );
      continue;
    }
    io.out(`restoring     ${v.database}  ${v.path}  into a throwaway instance…`);
    try {
      const result = await restoreDatadir(ctx, ctx, backup, v.database, undefined, keys, drivers);
      if (result.diffs.length) {
        v.ok = false;
        v.error = `${v.path}: recovered in a throwaway instance, but it differs from the backup's counts: ${countDiffs(result.diffs)}`;
        io.out(`FAIL  ${v.database}  ${v.error}`);
        continue;
      }
      const point = result.artifact.position?.restore_point;
      const rows = Object.values(result.after).reduce((sum, t) => sum + t.rows, 0);
      const note = `recovered in a throwaway instance${typeof point === 'string' ? ` to restore point ${point}` : ''}: ${Object.keys(result.after).length} tables, ${rows} rows equal to the backup's counts${result.checksums ? ' and checksums' : ''}`;
      restored.set(v.path, note);
      io.out(`restored      ${v.database}  ${v.path}  ${note}`);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      v.ok = false;
      // A damaged backup is a finding; a missing server program or a failure to start says nothing about the backup.
      v.conclusive = isErrorKind(err, IntegrityError);
      v.error = `${v.path}: recovery in a throwaway instance failed: ${(err as Error).message}`;
      io.out(`FAIL  ${v.database}  ${v.error}`);
    }
  }
}

/** The tables whose restored counts differ from the backup's, in words. */
function countDiffs(diffs: RestoreResult['diffs']): string {
  return diffs
    .map(
      (d) => `${d.table}: backup ${d.expected ?? 'missing'}, restored ${d.actual ?? 'missing'}${d.checksum ? ' (checksum differs)' : ''}`,
    )
    .join('; ');
}

function verdictLine(v: ArtifactVerdict, backup: Backup): string {
  if (v.key) return `NOT CHECKED  ${v.database}  ${v.path}  ${keyAdvice(v.key)}`;
  if (!v.ok) return `FAIL  ${v.database}  ${v.path}  ${v.error ?? ''}`;
  return `ok    ${v.database}  ${v.path}  ${detailOf(v, backup)}`;
}

// What the decoded dump was checked against: size and sha256 as taken, or its size alone (the compressor's checksum covered the rest).
function rawMatch(raw: EdgeStats | undefined, assumeFull: boolean): string {
  if (raw?.sha256 !== undefined || (raw === undefined && assumeFull)) return ', size and sha256 equal to the dump taken';
  return raw ? ', size equal to the dump taken' : '';
}

function detailOf(v: ArtifactVerdict, backup?: Backup): string {
  const layers =
    backup?.manifest.artifacts
      .find((a) => a.path === v.path)
      ?.layers.map((l) => l.codec)
      .reverse() ?? [];
  const raw = backup?.manifest.artifacts.find((a) => a.path === v.path)?.raw;
  const dump = v.raw ? `${formatBytes(v.raw.bytes)} dump${rawMatch(raw, !backup)}` : 'dump';
  return `${formatBytes(v.bytes)} stored, sha256 ok → ${layers.length ? `${layers.join(' → ')} → ` : ''}${dump}`;
}

/** Options of `dbflow restore`. */
export interface RestoreCommandOptions extends KeyOptions {
  database?: string;
  to?: string;
  /** --to-datadir: a base backup into a data directory. */
  toDatadir?: string;
  /** Point-in-time recovery of a base backup with its archived WAL (with --to-datadir). */
  toTime?: string;
  toLsn?: string;
  toRestorePoint?: string;
  /** Point-in-time restore of a dump with its archived binary log (with --to). */
  toPosition?: string;
  toGtid?: string;
  latest?: boolean;
  /** The WAL archive (the archive: `to:` of the pipeline); default: `wal` beside the backups. */
  wal?: string;
  force?: boolean;
  create?: boolean;
  list?: boolean;
  verbose?: boolean;
  /** --plugin: plugins to load besides those the manifest records (a storage of the repository). */
  plugin?: string[];
}

export async function restoreCommand(url: string, opts: RestoreCommandOptions, io: Io): Promise<number> {
  return restoreAt(await commandRegistry(opts.plugin), url, opts, recoveryTarget(opts), io);
}

/** `dbflow restore` of one database to `point` (none: the backup's own point), with the plugins of `registry`. */
export async function restoreAt(
  registry: Awaited<ReturnType<typeof commandRegistry>>,
  url: string,
  opts: RestoreCommandOptions,
  point: RecoveryTarget | undefined,
  io: Io,
): Promise<number> {
  if (point && (opts.list || (opts.toDatadir === undefined) === (opts.to === undefined)))
    throw new UsageError(
      `${point.flag} recovers a base backup into a data directory (--to-datadir <folder>) or a dump into a database with its archived binary log (--to <url>): give one of them (not --list).`,
    );
  if (point && opts.toDatadir !== undefined) {
    const { backup, database } = await baseFor(registry, url, opts.database, point, 'physical');
    return restoreDatadirCommand(registry, backup, database, opts.toDatadir, opts, io, point);
  }
  if (point && !point.log)
    throw new UsageError(
      `${point.flag} is a PostgreSQL recovery target: it recovers a base backup with --to-datadir <folder>, not a dump.`,
    );
  const chosen = point ? await baseFor(registry, url, opts.database, point, 'logical') : undefined;
  const backup = chosen?.backup ?? (await openBackup(storageScope(registry), url));
  if (chosen) opts = { ...opts, database: chosen.database };
  if (opts.list) {
    for (const line of describeBackup(backup)) io.out(line);
    return ExitCode.ok;
  }
  const names = Object.keys(backup.manifest.databases);
  if (opts.database === undefined && names.length !== 1)
    throw new UsageError(
      `restore needs --database <name> (this backup holds ${names.map((d) => `"${d}"`).join(', ')}), or --list to see what it holds.`,
    );
  if (opts.toDatadir !== undefined) {
    if (opts.to !== undefined) throw new UsageError('restore takes --to <database url> or --to-datadir <folder>, not both.');
    return restoreDatadirCommand(registry, backup, opts.database ?? names[0]!, opts.toDatadir, opts, io);
  }
  if (opts.to === undefined)
    throw new UsageError('restore needs --to <database url>: where to restore to (its password, if any, from DBFLOW_TARGET_PASSWORD).');
  const keys = readKeys(opts);
  const password = process.env[TARGET_PASSWORD_ENV] || undefined;
  if (passwordsOf({ url: opts.to }).length)
    io.err(`dbflow: warning: --to holds a password, which other users can see in the process list; set ${TARGET_PASSWORD_ENV} instead.`);
  const target = displayUrl(opts.to);
  const database = opts.database ?? names[0]!;
  const driver = backup.manifest.databases[database]?.driver;
  await loadManifestPlugins(
    registry,
    backup.manifest,
    { codecs: backupCodecs(backup.manifest, database), drivers: driver === undefined ? [] : [driver] },
    (m) => new UsageError(m),
  );
  const replay = point ? await replayPlan(registry, backup, database, opts.wal) : undefined;
  const spec: RestoreTarget = {
    url: opts.to,
    display: target,
    force: opts.force === true,
    create: opts.create === true,
    ...(password && { password }),
  };
  const result = await interruptible(io, 'restore', async (signal) => {
    const secrets = [...secretsOf(keys), ...(password ? [password] : []), ...passwordsOf({ url: opts.to! })];
    const { ctx, close } = await toolContext({
      registry,
      signal,
      name: 'restore',
      secrets,
      secretEnv: [PASSPHRASE_ENV, TARGET_PASSWORD_ENV],
      log: logTo(io, opts.verbose),
    });
    try {
      const restored = await restoreBackup(ctx, ctx, backup, database, spec, keys, registry.drivers, {
        restoring: () => io.out(`restoring "${database}" from ${backup.url} into ${target}`),
      });
      if (!replay || !point?.log || restored.diffs.length) return { ...restored, replayed: undefined };
      // The dump restored exactly as it was taken; then the log from its position to the target.
      const { start, archive, folder } = replay;
      io.out(`replaying the binary log from ${start.file}:${start.position}${start.gtid ? ` (GTID ${start.gtid})` : ''} to ${point.label}`);
      const dir = path.join(ctx.tmpdir, 'log');
      mkdirSync(dir, { mode: 0o700 });
      const files = await fetchReplayLog(
        ctx,
        archive,
        folder,
        start,
        point.log,
        dir,
        keys,
        signal,
        io,
        `Nothing was replayed onto ${target}`,
      );
      const { config } = targetConfig(backup, database, replay.driver, spec);
      await archive.replay!(ctx, { url: spec.url, db: config, dir, start, target: point.log });
      const after = await replay.driver.rowCounts(ctx, { url: spec.url, db: config });
      return { ...restored, replayed: { files, after } };
    } catch (err) {
      throw undecryptable(err, backup);
    } finally {
      close();
    }
  });
  const expected = backup.manifest.databases[database]!.tables;
  io.out(
    `restored ${formatBytes(result.raw.bytes)} of dump from ${result.artifact.url}${result.artifact.raw ? ` (${rawMatch(result.artifact.raw, false).slice(2)})` : ''}`,
  );
  if (Object.keys(result.before).length) io.out(`(--force: the target held ${Object.keys(result.before).length} tables before)`);
  const tables = [...new Set([...Object.keys(expected), ...Object.keys(result.after)])].sort();
  const rows = tables.map((t) => {
    const d = result.diffs.find((x) => x.table === t);
    return [
      t,
      String(expected[t]?.rows ?? '-'),
      String(result.after[t]?.rows ?? '-'),
      d ? (d.checksum && d.expected === d.actual ? 'CHECKSUM DIFFERS' : 'DIFFERS') : 'ok',
    ];
  });
  for (const line of table([['TABLE', 'BACKUP', 'RESTORED', ''], ...rows])) io.out(line);
  const total = Object.values(expected).reduce((s, t) => s + t.rows, 0);
  if (result.diffs.length) {
    throw new IntegrityError(`restored "${database}" into ${target}, but it differs from the backup's counts: ${countDiffs(result.diffs)}`);
  }
  io.out(`✔ ${tables.length} tables, ${total} rows equal to the backup's counts${result.checksums ? ' and checksums' : ''}`);
  if (result.replayed) {
    const after = Object.entries(result.replayed.after).sort(([a], [b]) => (a < b ? -1 : 1));
    for (const line of table([['TABLE', 'ROWS AFTER REPLAY'], ...after.map(([t, c]) => [t, String(c.rows)])])) io.out(line);
    io.out(
      `✔ replayed ${result.replayed.files.length} binlog files onto ${target} up to ${point!.label}: ${after.length} tables, ${after.reduce((n, [, c]) => n + c.rows, 0)} rows`,
    );
  }
  return ExitCode.ok;
}

// The log files a replay from `start` to `target` reads, fetched into `dir` and checked; a gap before the target is
// refused (`nothing` says what was left untouched), since a replay past it would skip transactions.
async function fetchReplayLog(
  scope: DecodeScope,
  archive: LogArchive,
  folder: string,
  start: LogStart,
  target: LogTarget,
  dir: string,
  keys: DecodeKeys,
  signal: AbortSignal,
  io: Io,
  nothing: string,
): Promise<string[]> {
  const files = await fetchLog(scope, archive, folder, start.file, dir, keys, signal, io);
  const upTo = target.position?.slice(0, target.position.lastIndexOf(':'));
  const gap = archive.gaps(files.filter((f) => upTo === undefined || f.replace(/\.partial$/, '') <= upTo))[0];
  if (gap)
    throw new IntegrityError(
      `the archived binary log lacks ${gap.missing} (after ${gap.after}): a replay past it would skip transactions. ${nothing}; replay to a position before it with --to-position.`,
    );
  return files;
}

// What a point-in-time restore from a base that records its log position (a dump, a MariaDB base backup) needs: its
// driver's log archive, where the base starts in the log, and the archive's server folder that holds that file
// (under --wal, default wal/ beside the backups).
async function replayPlan(
  registry: Awaited<ReturnType<typeof commandRegistry>>,
  backup: Backup,
  database: string,
  wal: string | undefined,
): Promise<{ driver: DatabaseDriver; archive: LogArchive; start: LogStart; folder: string }> {
  const driver = registry.drivers.get(backup.manifest.databases[database]?.driver ?? '');
  const archive = driver?.logArchive;
  const start = logStart(driver, backup.manifest, database);
  if (!driver || !archive || !start)
    throw new UsageError(
      `"${database}" of ${backup.url} recorded no binlog position (was the binary log off?): its log cannot be replayed onto it.`,
    );
  const root = wal ? normalizeUrl(wal, 'log archive') : `${repositoryOfBackup(backup.url)}/wal`;
  const storage = storageScope(registry).storage(root);
  const found = await logArchiveAt(storage, root);
  if (!found)
    throw new UsageError(`there is no log archive at ${root} (no dbflow-archive.json): give --wal <the archive: to: of the pipeline>.`);
  const folders: string[] = [];
  for (const system of found.systems ?? (await archiveSystems(storage, found.root))) {
    const folder = `${found.root}/${system}`;
    const listed = await storage.list(`${folder}/${start.file}`);
    if (listed.some((o) => o.url === `${folder}/${start.file}.json` || o.url === `${folder}/${start.file}.partial.json`))
      folders.push(folder);
  }
  if (folders.length !== 1)
    throw new UsageError(
      folders.length
        ? `${start.file} is archived for several servers under ${root} (${folders.join(', ')}): give --wal <one of them>.`
        : `the log archive at ${root} does not hold ${start.file}, where "${database}" of ${backup.url} starts: the binary log was not archived from then on.`,
    );
  return { driver, archive, start, folder: folders[0]! };
}

// `restore --to-datadir`: a base backup into a data directory that starts, checked against the backup's counts.
async function restoreDatadirCommand(
  registry: Awaited<ReturnType<typeof commandRegistry>>,
  backup: Backup,
  database: string,
  dir: string,
  opts: RestoreCommandOptions,
  io: Io,
  point?: RecoveryTarget,
): Promise<number> {
  const keys = readKeys(opts);
  const driver = backup.manifest.databases[database]?.driver;
  await loadManifestPlugins(
    registry,
    backup.manifest,
    { codecs: backupCodecs(backup.manifest, database), drivers: driver === undefined ? [] : [driver] },
    (m) => new UsageError(m),
  );
  const target = path.resolve(dir);
  const physical = registry.drivers.get(driver ?? '');
  // A base that records its binlog position is recovered by replaying the binlog onto it (baseFor checked that the
  // target is one); a PostgreSQL base backup by the server, reading the archived WAL.
  const replayed = point && logStart(physical, backup.manifest, database) !== undefined;
  const plan = point && replayed ? await replayPlan(registry, backup, database, opts.wal) : undefined;
  const wal = point && (plan?.folder ?? (await walFolder(registry, backup, database, opts.wal)));
  io.out(
    `restoring the base backup of "${database}" from ${backup.url} into data directory ${target}${wal ? `, then the ${plan ? 'binary log' : 'WAL'} of ${wal} to ${point.label}` : ''}`,
  );
  const result = await interruptible(io, 'restore', async (signal) => {
    const { ctx, close } = await toolContext({
      registry,
      signal,
      name: 'restore',
      secrets: secretsOf(keys),
      secretEnv: [PASSPHRASE_ENV],
      log: logTo(io, opts.verbose),
    });
    const first = backup.manifest.artifacts.find((a) => a.database === database)?.position?.wal;
    const fetch = async (into: string): Promise<void> => {
      if (plan) {
        await fetchReplayLog(
          ctx,
          plan.archive,
          plan.folder,
          plan.start,
          point!.log!,
          into,
          keys,
          signal,
          io,
          `Nothing was kept in ${target}`,
        );
        return;
      }
      const from = (first as { first?: unknown } | undefined)?.first;
      if (typeof from !== 'string') throw new UsageError(`${backup.url} records no WAL range for "${database}".`);
      await fetchLog(ctx, physical!.logArchive!, wal!, from, into, keys, signal, io);
    };
    const recovery: RecoveryOptions | undefined = wal && point ? { fetch, ...(plan ? point.log : point.settings) } : undefined;
    try {
      return await restoreDatadir(ctx, ctx, backup, database, target, keys, registry.drivers, recovery);
    } catch (err) {
      throw undecryptable(err, backup);
    } finally {
      close();
    }
  });
  const expected = backup.manifest.databases[database]!.tables;
  const start = physical?.startDatadir ? `  start it: ${physical.startDatadir(target)}` : `  ${target} holds the server's files`;
  if (point) {
    const rows = Object.values(result.after).reduce((n, t) => n + t.rows, 0);
    io.out(`✔ ${target} recovered to ${point.label}: ${Object.keys(result.after).length} tables, ${rows} rows`);
    io.out(start);
    return ExitCode.ok;
  }
  const total = Object.values(expected).reduce((s, t) => s + t.rows, 0);
  if (result.diffs.length) {
    throw new IntegrityError(`restored "${database}" into ${target}, but it differs from the backup's counts: ${countDiffs(result.diffs)}`);
  }
  const restorePoint = result.artifact.position?.restore_point;
  io.out(
    `✔ ${target} recovered${typeof restorePoint === 'string' ? ` to restore point ${restorePoint}` : ''}: ${Object.keys(expected).length} tables, ${total} rows equal to the backup's counts${result.checksums ? ' and checksums' : ''}`,
  );
  io.out(start);
  return ExitCode.ok;
}

/** Where a point-in-time restore stops, as given on the command line. */
export interface RecoveryTarget {
  flag: string;
  /** In words, for what is printed. */
  label: string;
  /** For a PostgreSQL base backup's recovery (--to-datadir); undefined when the target is one only a log replay knows. */
  settings?: Pick<RecoveryOptions, 'time' | 'lsn' | 'name'>;
  /** For a binlog replay onto a dump (--to) or a MariaDB base backup (--to-datadir); undefined when the target is one only PostgreSQL's recovery knows. */
  log?: LogTarget;
  /** For choosing the base: the time or log position it must be before. */
  before?: { time?: number; lsn?: bigint; position?: string; gtid?: string };
}

const POINT_NAME = /^[A-Za-z0-9_.:-]{1,63}$/;
const BINLOG_POSITION = /^[A-Za-z0-9_.-]+\.\d{6,}:\d+$/;
const GTID = /^\d+-\d+-\d+$/;

// The one target of --to-time, --to-lsn, --to-restore-point, --to-position, --to-gtid and --latest, checked; undefined for none.
function recoveryTarget(opts: RestoreCommandOptions): RecoveryTarget | undefined {
  const given = [
    opts.toTime !== undefined && '--to-time',
    opts.toLsn !== undefined && '--to-lsn',
    opts.toRestorePoint !== undefined && '--to-restore-point',
    opts.toPosition !== undefined && '--to-position',
    opts.toGtid !== undefined && '--to-gtid',
    opts.latest === true && '--latest',
  ].filter((f): f is string => typeof f === 'string');
  if (given.length > 1) throw new UsageError(`restore takes one recovery target; ${given.join(' and ')} were given.`);
  if (opts.toTime !== undefined) {
    if (!RFC3339.test(opts.toTime) || Number.isNaN(Date.parse(opts.toTime)))
      throw new UsageError(
        `--to-time "${opts.toTime}" is not an RFC 3339 time; write e.g. 2026-12-05T14:03:00Z or 2026-12-05T15:03:00.250+01:00.`,
      );
    return {
      flag: '--to-time',
      label: opts.toTime,
      settings: { time: opts.toTime },
      log: { time: opts.toTime },
      before: { time: Date.parse(opts.toTime) },
    };
  }
  if (opts.toLsn !== undefined) {
    if (!LSN.test(opts.toLsn))
      throw new UsageError(`--to-lsn "${opts.toLsn}" is not a log position; write it as PostgreSQL shows it, e.g. 0/3000148.`);
    return { flag: '--to-lsn', label: `log position ${opts.toLsn}`, settings: { lsn: opts.toLsn }, before: { lsn: lsnValue(opts.toLsn) } };
  }
  if (opts.toRestorePoint !== undefined) {
    if (!POINT_NAME.test(opts.toRestorePoint))
      throw new UsageError(`--to-restore-point "${opts.toRestorePoint}" is not a restore point name (letters, digits, _ . : -).`);
    return { flag: '--to-restore-point', label: `restore point ${opts.toRestorePoint}`, settings: { name: opts.toRestorePoint } };
  }
  if (opts.toPosition !== undefined) {
    if (!BINLOG_POSITION.test(opts.toPosition))
      throw new UsageError(
        `--to-position "${opts.toPosition}" is not a binlog position; write it as <file>:<position>, e.g. binlog.000042:1234.`,
      );
    return {
      flag: '--to-position',
      label: `binlog position ${opts.toPosition}`,
      log: { position: opts.toPosition },
      before: { position: opts.toPosition },
    };
  }
  if (opts.toGtid !== undefined) {
    if (!GTID.test(opts.toGtid))
      throw new UsageError(`--to-gtid "${opts.toGtid}" is not a GTID; write it as domain-server-sequence, e.g. 0-1-4242.`);
    return { flag: '--to-gtid', label: `GTID ${opts.toGtid}`, log: { gtid: opts.toGtid }, before: { gtid: opts.toGtid } };
  }
  if (opts.latest) return { flag: '--latest', label: 'the end of the archived log', settings: {}, log: {} };
  return undefined;
}

/**
 * The base to recover from: the one given, or the newest in the repository `url` that holds a base of `database` and
 * ends before the target (its run finished before the time; its restore point or log position precedes the
 * position). A `physical` base is a base backup; a `logical` one a dump that recorded its log position, with a
 * driver that can replay its log.
 */
async function baseFor(
  registry: Awaited<ReturnType<typeof commandRegistry>>,
  url: string,
  database: string | undefined,
  target: RecoveryTarget,
  kind: 'physical' | 'logical',
): Promise<{ backup: Backup; database: string }> {
  const scope = storageScope(registry);
  const what = kind === 'physical' ? 'base backup' : 'dump with a recorded binlog position';
  const isBase = (m: Backup['manifest'], db: string): boolean => {
    const driver = registry.drivers.get(m.databases[db]?.driver ?? '');
    if (kind === 'logical') return logStart(driver, m, db) !== undefined;
    return m.artifacts.some((a) => a.database === db && (driver?.physicalFormats ?? []).includes(a.format));
  };
  // A physical base recovers to the targets its log knows: a binlog's (replayed onto it) or PostgreSQL's.
  const unknownTarget = (m: Backup['manifest'], db: string): string | undefined => {
    if (kind === 'logical') return undefined;
    const replayed = logStart(registry.drivers.get(m.databases[db]?.driver ?? ''), m, db) !== undefined;
    if (replayed ? target.log : target.settings) return undefined;
    return replayed
      ? `${target.flag} is a PostgreSQL recovery target; a MariaDB base backup recovers with --to-time, --to-position, --to-gtid or --latest.`
      : `${target.flag} is a binlog target; a PostgreSQL base backup recovers with --to-time, --to-lsn, --to-restore-point or --latest.`;
  };
  const fits = (m: Backup['manifest'], db: string): boolean => {
    const lsn = m.artifacts.find((a) => a.database === db)?.position?.restore_point_lsn;
    if (target.before?.time !== undefined && Date.parse(m.run.finished_at) > target.before.time) return false;
    if (target.before?.lsn !== undefined && (typeof lsn !== 'string' || lsnValue(lsn) > target.before.lsn)) return false;
    const start = logStart(registry.drivers.get(m.databases[db]?.driver ?? ''), m, db);
    if (target.before?.position !== undefined && (!start || !positionBefore(start, target.before.position))) return false;
    if (target.before?.gtid !== undefined && (!start?.gtid || !gtidBefore(start.gtid, target.before.gtid))) return false;
    return true;
  };
  const one = await openBackup(scope, url).catch((err: unknown) => {
    if (err instanceof RepositoryError && /is not a backup/.test(err.message)) return undefined;
    throw err;
  });
  if (one) {
    const names = Object.keys(one.manifest.databases);
    const db = database ?? (names.length === 1 ? names[0]! : undefined);
    if (db === undefined)
      throw new UsageError(`restore needs --database <name> (this backup holds ${names.map((d) => `"${d}"`).join(', ')}).`);
    if (!isBase(one.manifest, db)) throw new UsageError(`${target.flag} needs a ${what}; "${db}" of ${one.url} is not one.`);
    const unknown = unknownTarget(one.manifest, db);
    if (unknown) throw new UsageError(unknown);
    if (!fits(one.manifest, db))
      throw new UsageError(`${one.url} ends after ${target.label}: it cannot recover to it. Give an older ${what}, or the repository.`);
    return { backup: one, database: db };
  }
  const listing = await listRepository(scope, url);
  const bases = listing.backups.filter((b) => b.manifest && b.missing.length === 0);
  const candidates = bases.flatMap((b) =>
    Object.keys(b.manifest!.databases)
      .filter((db) => (database === undefined || db === database) && isBase(b.manifest!, db))
      .map((db) => ({ backup: { url: b.url, manifest: b.manifest! }, database: db })),
  );
  const names = [...new Set(candidates.map((c) => c.database))];
  if (!candidates.length) throw new UsageError(`${listing.repo} holds no ${what}${database ? ` of "${database}"` : ''} to recover from.`);
  if (names.length > 1)
    throw new UsageError(`${listing.repo} holds ${what}s of ${names.map((n) => `"${n}"`).join(', ')}: give --database <name>.`);
  const unknown = unknownTarget(candidates[0]!.backup.manifest, candidates[0]!.database);
  if (unknown) throw new UsageError(unknown);
  // Newest first, as listed.
  const chosen = candidates.find((c) => fits(c.backup.manifest, c.database));
  if (!chosen) {
    const oldest = candidates[candidates.length - 1]!.backup;
    throw new UsageError(
      `no ${what} in ${listing.repo} ends before ${target.label}; the oldest, ${oldest.url}, finished at ${oldest.manifest.run.finished_at}.`,
    );
  }
  return chosen;
}

// Where a dump's database starts in its log, when its driver can replay the log onto it.
function logStart(driver: DatabaseDriver | undefined, m: Backup['manifest'], db: string): LogStart | undefined {
  const archive = driver?.logArchive;
  const position = m.databases[db]?.position;
  return archive?.startOf && archive.replay && position ? archive.startOf(position) : undefined;
}

// Whether a GTID state (`0-1-42,1-1-7`) precedes the transaction `domain-server-sequence`: in its domain, an earlier sequence.
function gtidBefore(state: string, gtid: string): boolean {
  const [domain, , sequence] = gtid.split('-');
  const mine = state
    .split(',')
    .map((g) => g.trim().split('-'))
    .find(([d]) => d === domain);
  return !mine || Number(mine[2]) < Number(sequence);
}

// Whether a log start precedes `file:position` (same name, an earlier file or an earlier position in the same one).
function positionBefore(start: LogStart, target: string): boolean {
  const at = target.lastIndexOf(':');
  const file = target.slice(0, at);
  const pos = Number(target.slice(at + 1));
  return start.file < file || (start.file === file && start.position <= pos);
}

// The archive folder of the base backup's cluster: <--wal or the repository's wal>/<system identifier>, which must be an archive.
async function walFolder(
  registry: Awaited<ReturnType<typeof commandRegistry>>,
  backup: Backup,
  database: string,
  wal: string | undefined,
): Promise<string> {
  const artifact = backup.manifest.artifacts.find((a) => a.database === database);
  const system = artifact?.position?.system_identifier;
  if (typeof system !== 'string')
    throw new UsageError(
      `"${database}" of ${backup.url} is a ${artifact?.format ?? 'non-physical'} backup that recorded no position in an archived log (was the log off?): it recovers to its own point only.`,
    );
  const root = wal ? normalizeUrl(wal, 'WAL archive') : `${repositoryOfBackup(backup.url)}/wal`;
  const storage = storageScope(registry).storage(root);
  if (!(await logArchiveAt(storage, root)))
    throw new UsageError(`there is no WAL archive at ${root} (no dbflow-archive.json): give --wal <the archive: to: of the pipeline>.`);
  return `${root}/${system}`;
}

// The archived log files a recovery starting in `first` reads, fetched into `dir`, each checked; said as it goes.
async function fetchLog(
  scope: DecodeScope,
  archive: Pick<LogArchive, 'reads'>,
  folder: string,
  first: string,
  dir: string,
  keys: DecodeKeys,
  signal: AbortSignal,
  io: Io,
): Promise<string[]> {
  const partial = new Set<string>();
  const files = await fetchLogFrom(scope, archive, folder, first, dir, keys, signal, (file, outcome) => {
    if (outcome !== 'partial') return;
    partial.add(file);
    io.out(`  ${file}: from the open file as far as it was archived`);
  });
  io.out(`fetched ${files.length} log files from ${folder}, each checked`);
  // As stored: a file fetched from its partial keeps the mark, so that a gap before a later file shows.
  return files.map((f) => (partial.has(f) ? `${f}.partial` : f));
}

/** What `restore --list` shows: the databases with their tables and counts, and the artifacts. */
function describeBackup(backup: Backup): string[] {
  const m = backup.manifest;
  const out = [
    `backup    ${backup.url}`,
    `pipeline  ${m.pipeline.name}, run ${m.run.id}, ${shortTime(m.run.started_at)} → ${shortTime(m.run.finished_at)}, ${m.status}`,
  ];
  for (const [name, db] of Object.entries(m.databases)) {
    const rows = Object.entries(db.tables).sort(([a], [b]) => (a < b ? -1 : 1));
    const total = rows.reduce((s, [, t]) => s + t.rows, 0);
    out.push(
      '',
      `database  ${name}  (${db.driver} ${db.server_version}, taken ${shortTime(db.taken_at)}; ${rows.length} tables, ${total} rows)`,
    );
    out.push(...table([['TABLE', 'ROWS', 'CHECKSUM'], ...rows.map(([t, c]) => [t, String(c.rows), c.checksum ?? '-'])], '  '));
  }
  out.push('', 'artifacts');
  out.push(
    ...table(
      m.artifacts.map((a) => [
        a.database,
        a.path,
        formatBytes(a.bytes),
        a.format,
        a.layers.map((l) => l.codec).join('+') || '-',
        a.raw ? `${formatBytes(a.raw.bytes)} dump` : '',
      ]),
      '  ',
    ),
  );
  out.push('', `restore one with: dbflow restore ${backup.url} --database <name> --to <database url>`);
  return out;
}

/** What to do about a missing or wrong key, in command-line terms. */
function keyAdvice(key: KeyError): string {
  if (key.key === 'private_key') {
    return key.problem === 'missing'
      ? 'it is encrypted to public keys; pass the private key of a recipient with --private-key-file F'
      : 'the private key given with --private-key-file does not decrypt it; pass the key of one of its recipients';
  }
  return key.problem === 'missing'
    ? `it is encrypted with a passphrase and none was given; pass it with --passphrase-file F or the ${PASSPHRASE_ENV} environment variable`
    : `the passphrase given (--passphrase-file or ${PASSPHRASE_ENV}) does not decrypt it; check it (was it rotated?)`;
}

// Warnings always; what the programs say with --verbose.
function logTo(io: Io, verbose?: boolean): (level: 'debug' | 'info' | 'warn', message: string) => void {
  return (level, message) => {
    if (level === 'warn' || verbose) io.err(`${level === 'warn' ? 'warning: ' : ''}${message}`);
  };
}

// A restore that failed for want of the right key: not checked (exit 3), nothing found wrong; any other error as it is.
function undecryptable(err: unknown, backup: Backup): unknown {
  const key = keyErrorIn(err);
  return key
    ? new UncheckedError(
        `restore could not decrypt ${backup.url}: ${keyAdvice(key)}. Nothing was found wrong with the backup (exit ${ExitCode.unchecked}: not checked).`,
      )
    : err;
}
