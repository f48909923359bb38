// The mysql driver's part in a recovery mark: the coordinated snapshot's commit barrier, held only while the binlog
// position and GTID are read.
import type { RowDataPacket } from 'mysql2/promise';
import { DbflowError, type DriverContext, type MarkParticipant, type ParticipateOptions } from '../../src/plugin-api.js';
import { barrierName, leaveBarrier, readPosition, readyBarrier, serverKind, tryBarrier, type Barrier, type ServerKind } from './barrier.js';
import { systemOf } from './binlog-archive.js';
import { connect, queryError } from './connect.js';
import { parseMyUrl } from './url.js';

/**
 * One connection: `BACKUP STAGE BLOCK_COMMIT` (MySQL: `FLUSH TABLES WITH READ LOCK`) while `SHOW MASTER STATUS` and
 * the GTID position are read: the binlog file and position every commit before the mark ends at. The server's host
 * name and server_id (the binlog archive's folder) are read first.
 */
export async function markParticipant(ctx: DriverContext, { db }: ParticipateOptions): Promise<MarkParticipant> {
  const conn = parseMyUrl(db.url, db.password);
  const what = `database "${db.name}"`;
  const control = await connect(conn, what);
  let kind: ServerKind;
  let system: string;
  try {
    kind = await serverKind(control);
    const [[v]] = await control.query<RowDataPacket[]>('SELECT @@log_bin AS log_bin, @@server_id AS server_id, @@hostname AS hostname');
    const facts = v as { log_bin: number; server_id: number; hostname: string };
    if (!Number(facts.log_bin))
      throw new DbflowError(`${what}: the binary log is off, so there is no log to mark: start the server with log_bin and a server_id.`);
    system = systemOf({ hostname: String(facts.hostname), serverId: Number(facts.server_id) });
  } catch (err) {
    control.destroy();
    throw err instanceof DbflowError ? err : queryError(err, `${what}: preparing the mark`);
  }
  const onAbort = (): void => control.destroy();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let barrier: Barrier | undefined;
  let ready = false;
  return {
    method: barrierName(kind),
    async ready(timeoutMs) {
      try {
        const got = await readyBarrier(control, kind, timeoutMs);
        ready = got === undefined;
        return got?.blocked;
      } catch (err) {
        throw err instanceof DbflowError ? err : queryError(err, `${what}: the mark's barrier`);
      }
    },
    async block(timeoutMs) {
      try {
        const got = await tryBarrier(control, kind, db.name, timeoutMs, ready);
        ready = false;
        if ('blocked' in got) return got.blocked;
        barrier = got;
        return undefined;
      } catch (err) {
        throw err instanceof DbflowError ? err : queryError(err, `${what}: the mark's barrier`);
      }
    },
    async mark() {
      try {
        const read = await readPosition(control, kind);
        if (read.binlog !== 'on' || !read.file) throw new DbflowError(`${what}: the binary log is off, so there is no log to mark.`);
        return { system, file: read.file, position: `${read.file}:${read.position}`, ...(read.gtid && { gtid: read.gtid }) };
      } catch (err) {
        throw err instanceof DbflowError ? err : queryError(err, `${what}: reading the mark's binlog position`);
      }
    },
    async release() {
      const held = barrier;
      barrier = undefined;
      if (held) await held.release();
      else if (ready) await leaveBarrier(control, kind);
      ready = false;
    },
    async abort() {
      ctx.signal.removeEventListener('abort', onAbort);
      await barrier?.release().catch(() => undefined);
      barrier = undefined;
      await control.end().catch(() => control.destroy());
    },
  };
}
