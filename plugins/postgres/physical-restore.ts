// A base backup restored into a throwaway instance: untarred into a fresh data directory, recovered to its restore point, started.
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  DbflowError,
  IntegrityError,
  programInput,
  type DriverContext,
  type RecoveryOptions,
  type RestoreInstanceOptions,
  type ScratchDatabase,
} from '../../src/plugin-api.js';
import { BASEBACKUP_FORMAT } from './basebackup.js';
import { asServerUser, instanceDir, lastLines, requireServerBinDir, startInstance, writeServerFile, type InstanceDir } from './instance.js';
import { toolError } from './tools.js';
import { parsePgUrl } from './url.js';

/** The settings a restored base backup starts with: its recovery target, and with `walDir` the archived log's. */
export function recoverySettings(position: Record<string, unknown>, recovery?: RecoveryOptions, walDir?: string): string[] {
  if (recovery && walDir) {
    // PostgreSQL takes a numeric offset, not the abbreviation Z.
    const target = recovery.time
      ? [`recovery_target_time='${recovery.time.replace('T', ' ').replace(/Z$/i, '+00:00')}'`]
      : recovery.lsn
        ? [`recovery_target_lsn='${recovery.lsn}'`]
        : recovery.name
          ? [`recovery_target_name='${recovery.name}'`]
          : [];
    return [`restore_command='cp ${walDir}/%f %p'`, ...target, "recovery_target_timeline='latest'", 'recovery_target_action=promote'];
  }
  const point = position.restore_point;
  return [
    // The WAL it needs is in its pg_wal: no archive to read from.
    "restore_command='false'",
    ...(typeof point === 'string' ? [`recovery_target_name='${point.replace(/'/g, "''")}'`] : ["recovery_target='immediate'"]),
    'recovery_target_action=promote',
  ];
}

// The production server's settings that would stop a private copy from starting, or make it act for production.
const PRIVATE_SETTINGS = [
  'archive_mode=off',
  'hot_standby=off',
  'ssl=off',
  'logging_collector=off',
  'shared_preload_libraries=',
  'shared_buffers=128MB',
  'huge_pages=off',
  'synchronous_standby_names=',
];
// A throwaway copy writes as little WAL as it can. A kept data directory keeps its own wal_level: the end of its
// recovery starts a new timeline that is archived and replayed later, and WAL written at wal_level=minimal ends
// any later recovery through it ("WAL was generated with wal_level=minimal").
const THROWAWAY_SETTINGS = ['max_wal_senders=0', 'wal_level=minimal'];

/**
 * Restores a base backup (`pg-basebackup-tar`) into a throwaway instance: untars the decoded artifact
 * into a fresh data directory (0700, the server user's), writes recovery.signal, and starts the installed
 * server on a private port and socket, recovering to the restore point the counts were taken at and
 * promoting. Only local connections over its own socket and loopback port are allowed (trust: the
 * instance is private). A missing WAL segment or a damaged file fails the start with the server's words.
 */
export async function restoreInstance(ctx: DriverContext, options: RestoreInstanceOptions): Promise<ScratchDatabase> {
  const { input, format, position, db, keepIn } = options;
  if (format !== BASEBACKUP_FORMAT) {
    input.destroy();
    throw new DbflowError(`the postgres driver restores "${BASEBACKUP_FORMAT}" artifacts into an instance, not "${format}".`);
  }
  const unknown = options.recovery && (options.recovery.position ?? options.recovery.gtid);
  if (unknown !== undefined) {
    input.destroy();
    throw new DbflowError(
      `"${unknown}" is a binlog target: a PostgreSQL base backup recovers to a time, a log position or a restore point.`,
    );
  }
  const bin = await requireServerBinDir().catch((err: unknown) => {
    input.destroy();
    throw err;
  });
  if (keepIn) refuseNonEmpty(keepIn, input);
  const dir: InstanceDir = await instanceDir();
  const data = keepIn ? path.resolve(keepIn) : dir.data;
  const made = keepIn !== undefined && !existsSync(data);
  try {
    mkdirSync(data, { recursive: true, mode: 0o700 });
    chmodSync(data, 0o700);
    await untar(ctx, input, data);
    chownTree(data, dir.owner);
    writeServerFile(dir, path.join(data, 'recovery.signal'), '');
    // A Debian cluster keeps postgresql.conf outside its data directory: an empty one will do (settings come on the command line).
    if (!existsSync(path.join(data, 'postgresql.conf'))) writeServerFile(dir, path.join(data, 'postgresql.conf'), '');
    // A kept folder must start on its own: a Debian cluster's pg_hba.conf is outside its data directory too.
    if (keepIn && !existsSync(path.join(data, 'pg_hba.conf')))
      writeServerFile(
        dir,
        path.join(data, 'pg_hba.conf'),
        '# written by dbflow restore: local connections as the same operating system user\nlocal all all peer\n',
      );
    const walDir = options.recovery ? await fetchLog(dir, options.recovery) : undefined;
    const hba = path.join(dir.root, 'pg_hba.conf');
    writeServerFile(dir, hba, 'local all all trust\nhost all all 127.0.0.1/32 trust\n');
    const ident = path.join(dir.root, 'pg_ident.conf');
    writeServerFile(dir, ident, '');
    const instance = await startInstance({
      bin,
      dir: { ...dir, data },
      signal: ctx.signal,
      settings: [
        ...PRIVATE_SETTINGS,
        ...(keepIn ? [] : THROWAWAY_SETTINGS),
        `hba_file=${hba}`,
        `ident_file=${ident}`,
        ...recoverySettings(position, options.recovery, walDir),
      ],
    }).catch((err: unknown) => {
      throw startError(err, position);
    });
    // Counted as the backup counted: its database, as its user (recorded by the basebackup step).
    const conn = parsePgUrl(db.url, db.password);
    const user = typeof position.user === 'string' ? position.user : conn.user;
    const database = typeof position.database_name === 'string' ? position.database_name : conn.database;
    ctx.log.info(`restored base backup started as a throwaway instance on port ${instance.port}`);
    return {
      url: instance.url(user, database),
      drop: async () => {
        if (!keepIn) return instance.stop();
        // Stopped cleanly, so that the folder starts again as it is; the socket folder and log go.
        await stopFast(bin, data);
        dir.remove();
      },
    };
  } catch (err) {
    // Nothing half-restored is left: the folder given is empty again (or gone, when this made it).
    if (keepIn && existsSync(data)) {
      if (made) rmSync(data, { recursive: true, force: true });
      else for (const f of readdirSync(data)) rmSync(path.join(data, f), { recursive: true, force: true });
    }
    dir.remove();
    throw err;
  }
}

// The archived log files recovery replays, fetched (and checked) into the instance's folder before the server starts:
// its restore_command only copies from there, so the server needs no access to the repository and no key.
async function fetchLog(dir: InstanceDir, recovery: RecoveryOptions): Promise<string> {
  if (!/^[A-Za-z0-9_./-]+$/.test(dir.root))
    throw new DbflowError(`the instance folder ${dir.root} has characters a restore_command cannot carry; set TMPDIR to a plain path.`);
  const walDir = path.join(dir.root, 'wal');
  mkdirSync(walDir, { mode: 0o700 });
  await recovery.fetch(walDir);
  chownTree(walDir, dir.owner);
  return walDir;
}

async function untar(ctx: DriverContext, input: RestoreInstanceOptions['input'], data: string): Promise<void> {
  const source = programInput(input);
  const tar = ctx.exec('tar', ['-x', '-C', data, '-f', '-'], { stdin: source.stdin as 'pipe', stdout: 'ignore', buffer: { stderr: true } });
  await source.feed(tar, (error) => toolError(error, 'tar', { doing: 'unpacking the base backup' }));
}

// A failed start of a restored base backup: what recovery said, as a damaged or incomplete backup.
function startError(err: unknown, position: Record<string, unknown>): Error {
  if (!(err instanceof DbflowError) || err instanceof IntegrityError) return err as Error;
  const said = err.message;
  if (
    /could not (open|find|locate)|requested WAL segment|before configured recovery target|invalid checkpoint|record with incorrect|invalid record|checksum|recovery ended before/i.test(
      said,
    )
  )
    return new IntegrityError(
      `the restored base backup did not recover to ${typeof position.restore_point === 'string' ? `restore point "${position.restore_point}"` : 'its end'}: a WAL segment or a file is missing or damaged. ${said}`,
      { cause: err },
    );
  return err;
}

async function stopFast(bin: string, data: string): Promise<void> {
  await asServerUser(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']).catch((err: unknown) => {
    throw new DbflowError(
      `the restored instance in ${data} did not stop: ${lastLines(String((err as { stderr?: string }).stderr ?? err))}`,
    );
  });
}

function refuseNonEmpty(target: string, input: RestoreInstanceOptions['input']): void {
  if (existsSync(target) && (!lstatSync(target).isDirectory() || readdirSync(target).length > 0)) {
    input.destroy();
    throw new DbflowError(`refusing to restore into ${target}: it is not an empty folder. Give a new or empty folder.`);
  }
}

function chownTree(root: string, owner: { uid: number; gid: number }): void {
  if (process.getuid?.() !== 0) return;
  const walk = (p: string): void => {
    chownSync(p, owner.uid, owner.gid);
    if (lstatSync(p).isDirectory()) for (const f of readdirSync(p)) walk(path.join(p, f));
  };
  walk(root);
}
