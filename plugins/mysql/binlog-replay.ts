// Point-in-time restore of a dump: the archived binlog files from the dump's position to a target, replayed with
// mariadb-binlog into the restored database through the mariadb client.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { DbflowError, UsageError, type DriverContext, type LogReplayOptions, type LogStart } from '../../src/plugin-api.js';
import { classifyBinlog } from './binlog-names.js';
import { SQL_FORMAT } from './dump.js';
import { myOptions } from './options.js';
import { restoreDump } from './restore.js';
import { toolError, toolPath } from './tools.js';
import { connectionAt } from './url.js';

const NUMBERED = /^(.+)\.(\d{6,})$/;

/** Whether a replay that starts in binlog file `first` reads `name`: the same binlog name, that file or a later one. */
export function binlogReads(first: string, name: string): boolean {
  const f = NUMBERED.exec(first);
  const n = NUMBERED.exec(name);
  return f !== null && n !== null && n[1] === f[1] && Number(n[2]) >= Number(f[2]);
}

/** Where a dump's database starts in the binary log (its snapshot's position), when the binary log was on. */
export function binlogStart(position: Record<string, unknown>): LogStart | undefined {
  const { binlog, file, gtid, database_name: database } = position;
  const at = Number(position.position);
  if (binlog !== 'on' || typeof file !== 'string' || typeof database !== 'string' || !Number.isInteger(at)) return undefined;
  return { file, position: at, database, ...(typeof gtid === 'string' && gtid && { gtid }) };
}

// `--stop-datetime` of mariadb-binlog (UTC, to the second: the binary log records whole seconds).
function stopDatetime(time: string): string {
  return new Date(Math.floor(Date.parse(time) / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * Replays the binlog files in `dir` onto the restored database: from the base's position (in the first file; with
 * `--to-gtid`, after its GTID state) to the target (a time: every event before that second; a position in a file;
 * a GTID, included), with their original GTIDs as mariadb-binlog writes them. A dump's replay (`scope` database)
 * applies only the events of the dumped database, renamed to the target's; a base backup's (`server`), every event
 * of the server it restored.
 */
export async function replayBinlog(
  ctx: DriverContext,
  { url, db, dir, start, target }: LogReplayOptions,
  scope: 'database' | 'server' = 'database',
): Promise<void> {
  const conn = connectionAt(url, db);
  const { binDir } = myOptions(db);
  let files = readdirSync(dir)
    .filter((n) => classifyBinlog(n) && binlogReads(start.file, n))
    .sort();
  const args = ['--no-defaults'];
  // mariadb-binlog filters by the name in the log, then renames.
  if (scope === 'database') args.push(`--database=${start.database}`);
  if (scope === 'database' && conn.database !== start.database) args.push(`--rewrite-db=${start.database}->${conn.database}`);
  if (target.gtid !== undefined) {
    if (!start.gtid)
      throw new UsageError(`the base recorded no GTID state (no transaction had been logged yet): give --to-time or --to-position.`);
    args.push(`--start-position=${start.gtid}`, `--stop-position=${target.gtid}`);
  } else {
    args.push(`--start-position=${start.position}`);
    if (target.position !== undefined) {
      const at = target.position.lastIndexOf(':');
      const file = target.position.slice(0, at);
      if (!files.includes(file))
        throw new DbflowError(`binlog file ${file} is not in the archive from ${start.file} on: it cannot replay to ${target.position}.`);
      files = files.filter((f) => f <= file);
      args.push(`--stop-position=${target.position.slice(at + 1)}`);
    }
    if (target.time !== undefined) args.push(`--stop-datetime=${stopDatetime(target.time)}`);
  }
  if (!files.length) throw new DbflowError(`no binlog file from ${start.file} on was fetched: nothing to replay.`);
  ctx.log.info(`replaying ${files.join(', ')} with mariadb-binlog ${args.join(' ')}`);
  const reader = ctx.exec(toolPath('mariadb-binlog', binDir), [...args, ...files.map((f) => path.join(dir, f))], {
    env: { TZ: 'UTC' },
    buffer: { stdout: false, stderr: true },
  });
  const applied = restoreDump(ctx, { url, input: reader.stdout!, format: SQL_FORMAT, db });
  const read = reader.then(
    () => undefined,
    (err: unknown) => {
      throw toolError(err, 'mariadb-binlog', { binDir, doing: 'reading the archived binary log' });
    },
  );
  await Promise.all([read, applied]).catch(async (err: unknown) => {
    reader.kill();
    await Promise.allSettled([read, applied]);
    // A server that drops the connection mid-replay most often refused an event over its packet limit.
    if (err instanceof Error && /gone away|max_allowed_packet|packet bigger/i.test(err.message))
      throw new DbflowError(
        `${err.message} A transaction in the binary log may be larger than the target's max_allowed_packet: raise it (SET GLOBAL max_allowed_packet = 1073741824) and restore again.`,
        { cause: err },
      );
    throw err;
  });
}
