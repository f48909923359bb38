// Continuous binlog archiving: mariadb-binlog reads the binary log from the server as a replica does, into the spool,
// one file per binlog file; dbflow stores each file once it is closed (a newer one exists) and the open one every flush.
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  claimSpool,
  superviseReceiver,
  DbflowError,
  toolFailure,
  type DriverContext,
  type LogArchive,
  type LogFile,
  type LogReceiveOptions,
  type LogReceiver,
} from '../../src/plugin-api.js';
import { serverKind } from './barrier.js';
import { queryError, withConnection } from './connect.js';
import { hasPrivilege, parseGrants } from './grants.js';
import { myOptions } from './options.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { binlogGaps, classifyBinlog } from './binlog-names.js';
import { binlogReads, binlogStart, replayBinlog } from './binlog-replay.js';
import { connectionAt, where, type MyConnection } from './url.js';

/** The binlog position `bytes` into a file: `binlog.000042:1234`. */
export function binlogPosition(file: LogFile, bytes: number): string {
  return `${file.name}:${bytes}`;
}

interface BinlogFacts {
  logBin: boolean;
  format: string;
  serverId: number;
  hostname: string;
  files: string[];
}

/**
 * What archiving needs of the server, checked before anything starts, each with what to change: the binary log on,
 * row-based (statement-based logging replays unsafe statements differently), a server_id, and the privileges to
 * list the binary logs and read them as a replica.
 */
async function binlogFacts(c: Connection, conn: MyConnection, what: string): Promise<BinlogFacts> {
  const [[v]] = await c.query<RowDataPacket[]>(
    'SELECT @@log_bin AS log_bin, @@binlog_format AS format, @@server_id AS server_id, @@hostname AS hostname',
  );
  const facts = v as { log_bin: number; format: string; server_id: number; hostname: string };
  const kind = await serverKind(c);
  const [grantRows] = await c.query<RowDataPacket[]>('SHOW GRANTS');
  const grants = parseGrants(grantRows.map((r) => String(Object.values(r)[0])));
  const monitor = kind.flavor === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
  const missing: string[] = [];
  if (!Number(facts.log_bin))
    missing.push('the binary log is off: start the server with log_bin (e.g. log_bin = mysql-bin in [mysqld]) and a server_id');
  else if (String(facts.format).toUpperCase() === 'STATEMENT')
    missing.push(
      'binlog_format is STATEMENT, which replays unsafe statements differently: SET GLOBAL binlog_format = ROW; and binlog_format = ROW in [mysqld]',
    );
  if (!Number(facts.server_id)) missing.push('server_id is 0: set server_id = <a number unique among your servers> in [mysqld]');
  const user = conn.user;
  if (!hasPrivilege(grants, monitor) && !hasPrivilege(grants, 'SUPER'))
    missing.push(`listing the binary logs needs ${monitor}: GRANT ${monitor} ON *.* TO '${user}'@…;`);
  if (!hasPrivilege(grants, 'REPLICATION SLAVE'))
    missing.push(`reading the binary log as a replica needs REPLICATION SLAVE: GRANT REPLICATION SLAVE ON *.* TO '${user}'@…;`);
  if (missing.length)
    throw new DbflowError(
      `${what}: cannot archive the binary log of the server at ${where(conn)}:\n${missing.map((m) => `  - ${m}`).join('\n')}`,
    );
  const [logs] = await c.query<RowDataPacket[]>('SHOW BINARY LOGS');
  return {
    logBin: true,
    format: String(facts.format),
    serverId: Number(facts.server_id),
    hostname: String(facts.hostname),
    files: logs.map((r) => String(r.Log_name)),
  };
}

/** The archive's folder for a server: its host name and server_id ([A-Za-z0-9._-]). */
export function systemOf(facts: Pick<BinlogFacts, 'hostname' | 'serverId'>): string {
  return `${facts.hostname}-${facts.serverId}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

// The replica id mariadb-binlog announces: one per pipeline and database (from the slot name), never the server's own.
function replicaId(slot: string, serverId: number): number {
  const id = (createHash('sha256').update(slot).digest().readUInt32BE(0) % 4_000_000_000) + 1000;
  return id === serverId ? id + 1 : id;
}

// Where reading starts: the newest file in the spool (read again from its start), else the server's oldest binlog.
function startFile(spool: string, facts: BinlogFacts, log: DriverContext['log']): string {
  const names = readdirSync(spool);
  const newest = names
    .filter((n) => classifyBinlog(n) && !n.endsWith('.partial'))
    .sort()
    .at(-1);
  if (newest && facts.files.includes(newest)) return newest;
  const first = facts.files[0];
  if (!first) throw new DbflowError('the server lists no binary log (SHOW BINARY LOGS is empty).');
  if (newest) {
    // What was received of it stays stored as its partial; the spool copy is set aside, never stored as whole.
    renameSync(path.join(spool, newest), path.join(spool, `${newest}.purged`));
    log.warn(
      `${newest} is no longer on the server (purged before it was archived whole): the archive has a gap there; reading on from ${first}`,
    );
  }
  return first;
}

/** Checks the settings and privileges, then starts `mariadb-binlog --read-from-remote-server --raw --stop-never` into the spool. */
async function receive(ctx: DriverContext, { db, spool, slot }: LogReceiveOptions): Promise<LogReceiver> {
  const conn = connectionAt(db.url, db);
  const what = `database "${db.name}"`;
  const { binDir } = myOptions(db);
  const facts = await withConnection(
    conn,
    what,
    (c) =>
      binlogFacts(c, conn, what).catch((err: unknown) => {
        throw err instanceof DbflowError ? err : queryError(err, 'reading the binary log settings');
      }),
    { database: false },
  );
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  const claim = await claimSpool(spool, 'mariadb-binlog');
  const start = startFile(spool, facts, ctx.log);
  const tool = toolConnection(ctx, conn);
  const sub = ctx.exec(
    toolPath('mariadb-binlog', binDir),
    [
      tool.arg,
      '--read-from-remote-server',
      '--raw',
      '--stop-never',
      `--stop-never-slave-server-id=${replicaId(slot, facts.serverId)}`,
      `--result-file=${spool}/`,
      start,
    ],
    { cwd: spool, stderr: 'pipe', buffer: { stderr: false } },
  );
  tool.removeAfter(sub);
  claim.record(sub.pid);
  ctx.log.info(`reading the binary log of ${what} from ${start} on (server_id ${facts.serverId}, binlog_format ${facts.format})`);
  return superviseReceiver({
    sub,
    claim,
    system: systemOf(facts),
    // Every event is written as it arrives: what was received is in the spool already.
    stopSignal: 'SIGTERM',
    onLine: (line) => ctx.log.debug(line),
    failure: (err, tail) => {
      const f = toolFailure({ ...(err as object), stderr: tail }, 'mariadb-binlog');
      if (f.missing) return toolError(err, 'mariadb-binlog', { binDir, conn, doing: 'reading the binary log' });
      return new DbflowError(
        `mariadb-binlog stopped (${f.complaint || `exit code ${f.exitCode ?? '?'}`}) while reading the binary log of ${what}.`,
        { cause: err },
      );
    },
  });
}

/** The mysql driver's continuous archiving: binary log files. */
export const binlogArchive: LogArchive = {
  receive,
  classify: classifyBinlog,
  gaps: binlogGaps,
  position: binlogPosition,
  reads: binlogReads,
  appendOnly: true,
  startOf: binlogStart,
  replay: replayBinlog,
};
