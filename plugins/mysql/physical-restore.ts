// A mariadb-backup stream restored into a throwaway instance: unpacked with mbstream, prepared, started.
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  DbflowError,
  IntegrityError,
  programInput,
  type DriverContext,
  type RestoreInstanceOptions,
  type ScratchDatabase,
} from '../../src/plugin-api.js';
import { binlogStart, replayBinlog } from './binlog-replay.js';
import { instanceDir, requireMariadbd, startInstance, type InstanceDir } from './instance.js';
import { MARIABACKUP_FORMAT } from './mariabackup-format.js';
import { toolError } from './tools.js';
import { parseMyUrl } from './url.js';

/**
 * Restores a `mariadb-backup-xbstream` artifact into a throwaway instance: `mbstream -x` into a fresh data
 * directory, `mariadb-backup --prepare` (applies the redo log copied during the backup: the files then hold
 * exactly the commits up to the binlog position the backup ended at), and the installed mariadbd started on it
 * privately. With `recovery`, the archived binlog from that position to the target is then replayed onto it. With
 * `keepIn` the data directory is built there and left, stopped cleanly, after `drop()`.
 */
export async function restoreInstance(ctx: DriverContext, options: RestoreInstanceOptions): Promise<ScratchDatabase> {
  const { input, format, position, db, keepIn } = options;
  const refuse = (err: Error): never => {
    input.destroy();
    throw err;
  };
  if (format !== MARIABACKUP_FORMAT)
    refuse(new DbflowError(`the mysql driver restores "${MARIABACKUP_FORMAT}" artifacts into an instance, not "${format}".`));
  const { recovery } = options;
  const start = binlogStart(position);
  if (recovery && (recovery.lsn ?? recovery.name) !== undefined)
    refuse(
      new DbflowError(
        `"${recovery.lsn ?? recovery.name}" is a PostgreSQL recovery target: a MariaDB base backup recovers to a time, a binlog position or a GTID.`,
      ),
    );
  if (recovery && !start)
    refuse(new DbflowError('the base backup recorded no binlog position (the binary log was off): it recovers to its own point only.'));
  try {
    requireMariadbd();
  } catch (err) {
    refuse(err as Error);
  }
  if (keepIn && existsSync(keepIn) && (!lstatSync(keepIn).isDirectory() || readdirSync(keepIn).length > 0))
    refuse(new DbflowError(`refusing to restore into ${keepIn}: it is not an empty folder. Give a new or empty folder.`));
  const dir: InstanceDir = instanceDir();
  const data = keepIn ? path.resolve(keepIn) : dir.data;
  const made = keepIn !== undefined && !existsSync(data);
  try {
    mkdirSync(data, { recursive: true, mode: 0o700 });
    await unpack(ctx, input, data);
    await prepare(ctx, data, dir);
    const instance = await startInstance(dir, data, ctx.signal);
    // Counted as the backup counted: its database on the server, recorded by the mariabackup step.
    const conn = parseMyUrl(db.url, db.password);
    const database = typeof position.database_name === 'string' ? position.database_name : conn.database;
    ctx.log.info(`restored base backup started as a throwaway instance on port ${instance.port}`);
    if (recovery && start) {
      // Past its own point: the archived binlog from the position the backup ends at, every event of the server
      // (the files hold all of it), onto the running instance, which writes no binlog of its own.
      const logDir = path.join(dir.root, 'binlog');
      mkdirSync(logDir, { mode: 0o700 });
      try {
        await recovery.fetch(logDir);
        const { time, position: at, gtid } = recovery;
        await replayBinlog(
          ctx,
          {
            url: instance.url(conn.user, database),
            db,
            dir: logDir,
            start,
            target: { ...(time && { time }), ...(at && { position: at }), ...(gtid && { gtid }) },
          },
          'server',
        );
      } catch (err) {
        await instance.stop('kill');
        if (ctx.signal.aborted || !(err instanceof Error)) throw err;
        throw new DbflowError(
          `the base backup was prepared and started, but the binary log could not be replayed onto it: ${err.message}`,
          {
            cause: err,
          },
        );
      } finally {
        rmSync(logDir, { recursive: true, force: true });
      }
    }
    return {
      url: instance.url(conn.user, database),
      drop: async () => {
        await instance.stop(keepIn ? 'clean' : 'kill');
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

// The stream's files into `data`, read straight from the decoded artifact (no copy of the stream).
async function unpack(ctx: DriverContext, input: RestoreInstanceOptions['input'], data: string): Promise<void> {
  const source = programInput(input);
  const sub = ctx.exec('mbstream', ['-x', '-C', data], { stdin: source.stdin as 'pipe', stdout: 'ignore', buffer: { stderr: true } });
  await source.feed(sub, (error) => toolError(error, 'mbstream', { doing: 'unpacking the base backup' }));
}

// Applies the redo log; a damaged or incomplete backup fails here, with mariadb-backup's words.
async function prepare(ctx: DriverContext, data: string, dir: InstanceDir): Promise<void> {
  try {
    await ctx.exec('mariadb-backup', ['--no-defaults', '--prepare', `--target-dir=${data}`, `--tmpdir=${dir.tmp}`], {
      stdin: 'ignore',
      stdout: 'ignore',
      buffer: { stderr: true },
    });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const said = typeof stderr === 'string' ? stderr : '';
    const bad = said
      .split('\n')
      .filter((l) => /error|corrupt|failed/i.test(l))
      .slice(-4)
      .join('\n');
    if (bad && !(err as { code?: string }).code?.startsWith('ENOENT'))
      throw new IntegrityError(`mariadb-backup --prepare could not prepare the restored base backup: it is damaged or incomplete. ${bad}`, {
        cause: err,
      });
    throw toolError(err, 'mariadb-backup', { doing: 'preparing the base backup' });
  }
}
