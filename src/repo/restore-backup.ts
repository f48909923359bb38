// `restore`: one database of a backup, read back, checked and restored into a target database, then counted.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { CancelledError, DbflowError, IntegrityError, RepositoryError, UsageError } from '../errors.js';
import type {
  ArtifactRecord,
  DatabaseConfig,
  DatabaseDriver,
  DecodeKeys,
  DriverContext,
  EdgeStats,
  RecoveryOptions,
  ScratchDatabase,
  TableCounts,
} from '../plugins/types.js';
import { didYouMean } from '../spec/suggest.js';
import { storedArtifact, type Backup } from './backup.js';
import { readArtifact } from './read-artifact.js';
import { compareCounts, type CountDiff, type DecodeScope } from './restore.js';

/** Where to restore to. */
export interface RestoreTarget {
  url: string;
  /** The URL as shown in messages (a password in it masked); `url` when not given. */
  display?: string;
  password?: string;
  /** Restore even when the target has tables (or cannot be inspected). */
  force: boolean;
  /** Create the target database first when it does not exist. */
  create?: boolean;
}

/** What a restore did. */
export interface RestoreResult {
  artifact: ArtifactRecord;
  raw: EdgeStats;
  /** The target's tables before the restore (with --force; empty otherwise). */
  before: TableCounts;
  after: TableCounts;
  /** Differences from the manifest's counts; empty when the restore is exact. */
  diffs: CountDiff[];
  checksums: boolean;
}

/** The database entry, its artifact and its driver, or a usage error that says what the backup holds. */
export function restorable(
  backup: Backup,
  database: string,
  drivers: ReadonlyMap<string, DatabaseDriver>,
): { entry: Backup['manifest']['databases'][string]; artifact: ArtifactRecord; driver: DatabaseDriver } {
  const { manifest } = backup;
  const entry = manifest.databases[database];
  if (!entry) {
    throw new UsageError(`backup "${backup.url}" holds no database "${database}".${didYouMean(database, Object.keys(manifest.databases))}`);
  }
  // The server's roles (a globals artifact) are not the database: a user replays them on a new server by hand.
  const artifacts = manifest.artifacts.filter((a) => a.database === database && !a.globals);
  if (artifacts.length !== 1) {
    throw new RepositoryError(
      `backup "${backup.url}" has ${artifacts.length} artifacts for database "${database}" (${artifacts.map((a) => a.path).join(', ') || 'none'}); dbflow restores exactly one.`,
    );
  }
  const driver = drivers.get(entry.driver);
  if (!driver)
    throw new DbflowError(
      `database "${database}" was backed up with driver "${entry.driver}", which is not installed.${didYouMean(entry.driver, drivers.keys())}`,
    );
  return { entry, artifact: storedArtifact(backup, artifacts[0]!), driver };
}

/** The target as a database entry for the driver: counted with checksums exactly when the backup has them. */
export function targetConfig(
  backup: Backup,
  database: string,
  driver: DatabaseDriver,
  target: RestoreTarget,
): { config: DatabaseConfig; checksums: boolean } {
  const tables = Object.values(backup.manifest.databases[database]?.tables ?? {});
  const checksums = tables.length > 0 && tables.every((t) => t.checksum !== undefined);
  const takesChecksums = typeof (driver.options.properties as Record<string, unknown> | undefined)?.checksums === 'object';
  return {
    config: {
      name: database,
      driver: driver.name,
      url: target.url,
      ...(target.password !== undefined && { password: target.password }),
      options: takesChecksums ? { checksums } : {},
    },
    checksums,
  };
}

/**
 * Restores `database` of `backup` into `target`: refuses a target with tables unless `force`, reads
 * the artifact back with every check, restores it with the backup's driver, then counts the target
 * and compares with the manifest's counts. A failure after the restore began says so.
 */
export async function restoreBackup(
  scope: DecodeScope,
  ctx: DriverContext,
  backup: Backup,
  database: string,
  target: RestoreTarget,
  keys: DecodeKeys,
  drivers: ReadonlyMap<string, DatabaseDriver>,
  hooks: { progress?: (bytes: number) => void; restoring?: () => void } = {},
): Promise<RestoreResult> {
  const { entry, artifact, driver } = restorable(backup, database, drivers);
  const { config, checksums } = targetConfig(backup, database, driver, target);
  const bad = driver.checkUrl?.(target.url);
  if (bad) throw new UsageError(`--to "${target.display ?? target.url}": ${bad}`);
  if (target.create) {
    if (!driver.create)
      throw new UsageError(`--create: the ${driver.name} driver cannot create databases; create ${target.display ?? target.url} yourself.`);
    await driver.create(ctx, { db: config });
  }
  const before = await inspect(ctx, driver, config, target);
  let started = 0;
  hooks.restoring?.();
  let raw: EdgeStats;
  try {
    raw = await readArtifact(
      scope,
      artifact,
      keys,
      (input) => driver.restore(ctx, { url: target.url, input, format: artifact.format, db: config }),
      {
        signal: ctx.signal,
        settleDigest: true,
        progress: (n) => {
          started = n;
          hooks.progress?.(n);
        },
      },
    );
  } catch (err) {
    throw withNote(
      err,
      started > 0
        ? ` The restore into ${target.display ?? target.url} had begun (${started} bytes of the dump were read): the target may now hold part of the backup; drop and re-create it before restoring again.`
        : ` Nothing was restored into ${target.display ?? target.url}.`,
    );
  }
  // Counted the way the backup was: its checksum scheme, when it has checksums.
  const scheme = entry.position.checksum;
  const after = await driver.rowCounts(ctx, {
    url: target.url,
    db: config,
    ...(checksums && typeof scheme === 'string' && { checksum: scheme }),
  });
  return { artifact, raw, before, after, diffs: compareCounts(entry.tables, after, checksums), checksums };
}

/**
 * Restores a physical artifact (a base backup) of `database` into the data directory `dir` (new or
 * empty): the driver starts it once as a throwaway instance to recover it and count it, then stops it
 * cleanly and leaves the files. Without `dir` the instance and its files are removed after counting
 * (`verify --restore`). The counts are compared with the manifest's.
 */
export async function restoreDatadir(
  scope: DecodeScope,
  ctx: DriverContext,
  backup: Backup,
  database: string,
  dir: string | undefined,
  keys: DecodeKeys,
  drivers: ReadonlyMap<string, DatabaseDriver>,
  recovery?: RecoveryOptions,
): Promise<RestoreResult> {
  const { entry, artifact, driver } = restorable(backup, database, drivers);
  if (!driver.restoreInstance || !driver.physicalFormats?.includes(artifact.format))
    throw new UsageError(
      `--to-datadir restores base backups; "${database}" of ${backup.url} is a ${artifact.format} artifact: restore it into a database with --to <url>.`,
    );
  if (dir !== undefined && existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0))
    throw new UsageError(`refusing to restore into ${dir}: it is not an empty folder. Give a new or empty folder.`);
  const position = artifact.position ?? {};
  // The entry the counts connect with: the backup's database and role, recorded in its position.
  const text = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);
  const url = `${entry.driver}://${encodeURIComponent(text(position.user, 'postgres'))}@localhost/${encodeURIComponent(text(position.database_name, database))}`;
  const { config, checksums } = targetConfig(backup, database, driver, { url, force: false });
  let instance: ScratchDatabase | undefined;
  // The data directory is built beside the target and takes its name only once recovered, counted and stopped: a
  // killed restore leaves a folder named as unfinished, never a data directory that looks whole.
  const work = dir === undefined ? undefined : unfinishedDatadir(dir);
  if (work) rmSync(work, { recursive: true, force: true });
  let ok = false;
  try {
    const raw = await readArtifact(
      scope,
      artifact,
      keys,
      async (input) => {
        instance = await driver.restoreInstance!(ctx, {
          input,
          format: artifact.format,
          position,
          db: config,
          ...(work !== undefined && { keepIn: work }),
          ...(recovery && { recovery }),
        });
      },
      { signal: ctx.signal, settleDigest: true },
    );
    const scheme = entry.position.checksum;
    const after = await driver.rowCounts(ctx, {
      url: instance!.url,
      db: config,
      ...(checksums && typeof scheme === 'string' && { checksum: scheme }),
    });
    ok = true;
    // Recovered past the backup's point, the counts are of another moment: they are reported, not compared.
    return { artifact, raw, before: {}, after, diffs: recovery ? [] : compareCounts(entry.tables, after, checksums), checksums };
  } finally {
    await instance?.drop();
    // A restore that could not be checked leaves no data directory behind (one whose counts differ stays, for a look).
    if (work !== undefined) {
      if (ok) renameSync(work, dir!);
      else rmSync(work, { recursive: true, force: true });
    }
  }
}

/** Where `restore --to-datadir <dir>` builds the data directory until it is whole: `.<name>.dbflow-unfinished` beside it. */
export function unfinishedDatadir(dir: string): string {
  return path.join(path.dirname(dir), `.${path.basename(dir)}.dbflow-unfinished`);
}

// The target's tables: none, or a refusal (without --force) when it has some or cannot be inspected.
async function inspect(ctx: DriverContext, driver: DatabaseDriver, config: DatabaseConfig, target: RestoreTarget): Promise<TableCounts> {
  let tables: TableCounts;
  try {
    tables = await driver.rowCounts(ctx, { url: target.url, db: config });
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledError('restore interrupted');
    if (target.force) return {};
    const missing = driver.exists ? !(await driver.exists(ctx, { db: config }).catch(() => true)) : false;
    if (missing) {
      throw new DbflowError(
        `the target ${target.display ?? target.url} does not exist. Create it first (createdb, CREATE DATABASE; for sqlite an empty file), or pass --create to have restore create it.`,
        { cause: err },
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new DbflowError(
      `cannot check that the target ${target.display ?? target.url} is empty: ${why}${/[.!?)]$/.test(why) ? '' : '.'} If it does not exist, create it (createdb, CREATE DATABASE; for sqlite an empty file) or pass --create; if it exists but cannot be inspected, --force restores without this check.`,
      { cause: err },
    );
  }
  const names = Object.keys(tables);
  if (names.length && !target.force) {
    const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
    throw new DbflowError(
      `refusing to restore into ${target.display ?? target.url}: it is not empty (${names.length} ${names.length === 1 ? 'table' : 'tables'}: ${shown}). Restore into a new, empty database, or pass --force to restore over it.`,
    );
  }
  return tables;
}

// The same kind of error (and exit code), with a sentence added.
function withNote(err: unknown, note: string): unknown {
  if (!(err instanceof DbflowError)) return err;
  const text = `${err.message}${/[.!?)]$/.test(err.message) ? '' : '.'}${note}`;
  const Kind =
    err instanceof CancelledError
      ? CancelledError
      : err instanceof IntegrityError
        ? IntegrityError
        : err instanceof UsageError
          ? UsageError
          : DbflowError;
  const out = new Kind(text);
  if (err.cause !== undefined) Object.defineProperty(out, 'cause', { value: err.cause });
  return out;
}
