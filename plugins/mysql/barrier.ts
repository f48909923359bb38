// The commit barrier of a snapshot, the server flavour that picks it, and the binlog position read under it.
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { DbflowError } from '../../src/plugin-api.js';

/** Which server it is: MariaDB (BACKUP STAGE) or MySQL (FLUSH TABLES WITH READ LOCK). */
export interface ServerKind {
  flavor: 'mariadb' | 'mysql';
  /** `SELECT VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1-log`. */
  version: string;
  major: number;
  minor: number;
}

/** The flavour and version of the server `c` is connected to. */
export async function serverKind(c: Connection): Promise<ServerKind> {
  const [rows] = await c.query<RowDataPacket[]>('SELECT VERSION() AS v');
  const version = String((rows[0] as { v: string }).v);
  const [, major = '0', minor = '0'] = /^(\d+)\.(\d+)/.exec(version) ?? [];
  return { flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql', version, major: Number(major), minor: Number(minor) };
}

/** A held barrier: commits (and, with FTWRL, all writes) wait until `release()`, which returns how long it was held. */
export interface Barrier {
  readonly name: string;
  release(): Promise<number>;
}

// MariaDB: "Query execution was interrupted (max_statement_time exceeded)".
const ER_STATEMENT_TIMEOUT = 1969;

const ACCESS_DENIED = new Set(['ER_SPECIFIC_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_ERROR']);

/** The statement that blocks commits on this server. */
export function barrierName(kind: ServerKind): string {
  return kind.flavor === 'mariadb' ? 'BACKUP STAGE BLOCK_COMMIT' : 'FLUSH TABLES WITH READ LOCK';
}

/**
 * Blocks commits on the server of `control`: `BACKUP STAGE START`, `FLUSH`, `BLOCK_DDL`, `BLOCK_COMMIT` on
 * MariaDB, `FLUSH TABLES WITH READ LOCK` on MySQL, waiting at most `timeoutMs` for them (MariaDB to the millisecond,
 * each stage under `max_statement_time` with what is left; MySQL's `lock_wait_timeout` counts whole seconds). A
 * lock wait that runs out is an answer, not an error: `{ blocked }` names the sessions in the way, and nothing is held.
 */
export async function tryBarrier(
  control: Connection,
  kind: ServerKind,
  database: string,
  timeoutMs: number,
  /** MariaDB: the stages before BLOCK_COMMIT were passed already (`readyBarrier`): only BLOCK_COMMIT is left. */
  ready = false,
): Promise<Barrier | { blocked: string }> {
  const name = barrierName(kind);
  await control.query(`SET SESSION lock_wait_timeout = ${Math.min(31_536_000, Math.max(1, Math.ceil(timeoutMs / 1000)))}`); // the server's maximum: a year
  const deadline = performance.now() + timeoutMs;
  // A stage waits at most what is left of the time (max_statement_time: seconds, to the microsecond).
  const stage = (s: string): string =>
    `SET STATEMENT max_statement_time = ${Math.max(0.001, (deadline - performance.now()) / 1000).toFixed(3)} FOR BACKUP STAGE ${s}`;
  let started = 0;
  try {
    if (kind.flavor === 'mariadb') {
      // FLUSH (non-transactional tables) and BLOCK_DDL let commits go on: only BLOCK_COMMIT stops them,
      // so the stages before it are passed one by one, and only BLOCK_COMMIT onwards counts as blocking.
      if (!ready) {
        await control.query(stage('START'));
        await control.query(stage('FLUSH'));
        await control.query(stage('BLOCK_DDL'));
      }
      started = performance.now();
      await control.query(stage('BLOCK_COMMIT'));
    } else {
      started = performance.now();
      await control.query('FLUSH TABLES WITH READ LOCK');
    }
  } catch (err) {
    await end(control, kind);
    const e = err as { code?: string; errno?: number; sqlMessage?: string };
    if (e.code === 'ER_LOCK_WAIT_TIMEOUT' || e.errno === ER_STATEMENT_TIMEOUT) return { blocked: await longRunning(control) };
    if (e.code && ACCESS_DENIED.has(e.code)) {
      throw new DbflowError(
        `database "${database}": ${name} was refused (${e.sqlMessage}); the backup user needs the RELOAD privilege (GRANT RELOAD ON *.* TO …).`,
        { cause: err },
      );
    }
    throw err;
  }
  let held: number | undefined;
  return {
    name,
    release: async () => {
      if (held === undefined) {
        await end(control, kind);
        held = performance.now() - started;
      }
      return Math.round(held * 100) / 100;
    },
  };
}

/**
 * MariaDB: the stages before BLOCK_COMMIT (START, FLUSH, BLOCK_DDL), which let commits go on, passed ahead so that
 * `tryBarrier(…, true)` blocks commits in one statement: other participants then hold their barriers only for that.
 * Undefined when passed (or on MySQL, which has none); `{ blocked }` when a stage's lock could not be had in time.
 */
export async function readyBarrier(control: Connection, kind: ServerKind, timeoutMs: number): Promise<{ blocked: string } | undefined> {
  if (kind.flavor !== 'mariadb') return undefined;
  const deadline = performance.now() + timeoutMs;
  const stage = (s: string): string =>
    `SET STATEMENT max_statement_time = ${Math.max(0.001, (deadline - performance.now()) / 1000).toFixed(3)} FOR BACKUP STAGE ${s}`;
  try {
    await control.query(stage('START'));
    await control.query(stage('FLUSH'));
    await control.query(stage('BLOCK_DDL'));
    return undefined;
  } catch (err) {
    await end(control, kind);
    const e = err as { code?: string; errno?: number };
    if (e.code === 'ER_LOCK_WAIT_TIMEOUT' || e.errno === ER_STATEMENT_TIMEOUT) return { blocked: await longRunning(control) };
    throw err;
  }
}

/** Leaves the barrier's stages (or its lock) without having blocked commits: after `readyBarrier`, when a try is given up. */
export async function leaveBarrier(control: Connection, kind: ServerKind): Promise<void> {
  await end(control, kind);
}

async function end(control: Connection, kind: ServerKind): Promise<void> {
  await control.query(kind.flavor === 'mariadb' ? 'BACKUP STAGE END' : 'UNLOCK TABLES').catch(() => undefined);
}

// The sessions most likely in the barrier's way: the longest-running statements that are not themselves waiting
// for the backup lock, and the tables held open (a session under LOCK TABLES … WRITE holds one between statements).
async function longRunning(control: Connection): Promise<string> {
  try {
    const [rows] = await control.query<RowDataPacket[]>(
      `SELECT ID AS id, USER AS user, TIME AS s, LEFT(COALESCE(INFO, ''), 120) AS query FROM information_schema.PROCESSLIST
        WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump')
          AND COALESCE(STATE, '') NOT LIKE 'Waiting for backup lock%' ORDER BY TIME DESC LIMIT 3`,
    );
    const list = (rows as { id: number; user: string; s: number; query: string }[]).map(
      (r) => `session ${r.id} of ${r.user} running for ${r.s} s: ${JSON.stringify(r.query)}`,
    );
    const [open] = await control.query<RowDataPacket[]>('SHOW OPEN TABLES WHERE In_use > 0');
    const tables = (open as { Database: string; Table: string }[]).slice(0, 5).map((t) => `\`${t.Database}\`.\`${t.Table}\``);
    const parts = [
      ...(list.length ? [`in the way: ${list.join('; ')}`] : []),
      ...(tables.length ? [`tables in use (a LOCK TABLES holds them between statements): ${tables.join(', ')}`] : []),
    ];
    return parts.length ? parts.join('; ') : 'no long-running statement is visible';
  } catch {
    return 'the sessions in the way could not be listed';
  }
}

/** The binlog position of the cut: file/position (and GTID) when binary logging is on. */
export interface BinlogPosition {
  binlog: 'on' | 'off';
  file?: string;
  position?: number;
  gtid?: string;
}

/** Reads the binlog position (`SHOW MASTER STATUS`, `SHOW BINARY LOG STATUS` on MySQL ≥ 8.4) and the GTID set. */
export async function readPosition(c: Connection, kind: ServerKind): Promise<BinlogPosition> {
  const newMysql = kind.flavor === 'mysql' && (kind.major > 8 || (kind.major === 8 && kind.minor >= 4));
  const statement = newMysql ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS';
  let rows: RowDataPacket[];
  try {
    [rows] = await c.query<RowDataPacket[]>(statement);
  } catch (err) {
    const e = err as { code?: string; sqlMessage?: string };
    if (e.code && ACCESS_DENIED.has(e.code)) {
      const grant = kind.flavor === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT';
      throw new DbflowError(
        `${statement} was refused (${e.sqlMessage}); the backup user needs ${grant} to record the binlog position (GRANT ${grant} ON *.* TO …).`,
        { cause: err },
      );
    }
    throw err;
  }
  const row = rows[0] as { File?: string; Position?: number | string; Executed_Gtid_Set?: string } | undefined;
  if (!row?.File) return { binlog: 'off' };
  let gtid = row.Executed_Gtid_Set;
  if (kind.flavor === 'mariadb') {
    const [g] = await c.query<RowDataPacket[]>('SELECT @@gtid_binlog_pos AS g');
    gtid = String((g[0] as { g: string | null }).g ?? '');
  }
  return { binlog: 'on', file: row.File, position: Number(row.Position), ...(gtid && { gtid }) };
}

/** MariaDB's binlog position of the open consistent snapshot on `c` (`Binlog_snapshot_file/position`). */
export async function snapshotPosition(c: Connection): Promise<{ file: string; position: number } | undefined> {
  const [rows] = await c.query<RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const v = Object.fromEntries((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]));
  return v.binlog_snapshot_file ? { file: v.binlog_snapshot_file, position: Number(v.binlog_snapshot_position) } : undefined;
}
