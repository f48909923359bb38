// Continuous WAL archiving: pg_receivewal streams into the spool through a replication slot; dbflow stores the files.
import { mkdirSync } from 'node:fs';
import {
  claimSpool,
  superviseReceiver,
  DbflowError,
  toolFailure,
  type DriverContext,
  type LogArchive,
  type LogReceiveOptions,
  type LogReceiver,
} from '../../src/plugin-api.js';
import { pgOptions } from './options.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { connectionAt } from './url.js';
import { classifyWal, walGaps, walPosition, walReads } from './wal-names.js';
import { identifySystem, prepareSlot, replicationError } from './wal-settings.js';

/** Checks the settings, creates the slot if missing, and starts `pg_receivewal --synchronous` into the spool. */
async function receive(ctx: DriverContext, { db, spool, slot }: LogReceiveOptions): Promise<LogReceiver> {
  const conn = connectionAt(db.url, db);
  const what = `database "${db.name}"`;
  const { binDir } = pgOptions(db);
  await prepareSlot(conn, what, slot);
  const system = await identifySystem(conn, what);
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  const claim = await claimSpool(spool, 'pg_receivewal');
  const tool = toolConnection(ctx, conn, 'dbflow-archive');
  // Without --no-loop: a server restart or a dropped connection is retried by pg_receivewal itself (every 5 s).
  const sub = ctx.exec(toolPath('pg_receivewal', binDir), ['-D', spool, '-S', slot, '--synchronous', '-v'], {
    env: tool.env,
    stderr: 'pipe',
    buffer: { stderr: false },
  });
  tool.removeAfter(sub);
  claim.record(sub.pid);
  return superviseReceiver({
    sub,
    claim,
    system,
    // SIGINT: pg_receivewal flushes what it has and exits 0; the open segment stays as .partial.
    stopSignal: 'SIGINT',
    onLine: (line, stopping) => {
      ctx.log.debug(line);
      if (/error|fatal/i.test(line) && !stopping) ctx.log.warn(line.replace(/^pg_receivewal: /, ''));
    },
    failure: (err, tail) => {
      const f = toolFailure({ ...(err as object), stderr: tail }, 'pg_receivewal');
      if (f.missing) return toolError(err, 'pg_receivewal', { binDir, conn, doing: 'receiving WAL' });
      if (/pg_hba|replication|max_wal_senders/i.test(tail)) return replicationError(new Error(f.complaint), conn, what);
      return new DbflowError(`pg_receivewal stopped (${f.complaint || `exit code ${f.exitCode ?? '?'}`}) while receiving WAL of ${what}.`, {
        cause: err,
      });
    },
  });
}

/** The postgres driver's continuous archiving: WAL segments and timeline history files. */
export const walArchive: LogArchive = {
  receive,
  classify: classifyWal,
  gaps: walGaps,
  position: walPosition,
  reads: walReads,
};
