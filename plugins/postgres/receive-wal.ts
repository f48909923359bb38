// Continuous WAL archiving: pg_receivewal streams into the spool through a replication slot; dbflow stores the files.
import { mkdirSync } from 'node:fs';
import {
  claimSpool,
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
  let tail = '';
  let stopping = false;
  sub.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      tail = `${tail}\n${line}`.slice(-4000);
      ctx.log.debug(line);
      if (/error|fatal/i.test(line) && !stopping) ctx.log.warn(line.replace(/^pg_receivewal: /, ''));
    }
  });
  const done = sub.then(
    () => undefined,
    (err: unknown) => {
      if (stopping) return;
      const f = toolFailure({ ...(err as object), stderr: tail }, 'pg_receivewal');
      if (f.missing) throw toolError(err, 'pg_receivewal', { binDir, conn, doing: 'receiving WAL' });
      if (/pg_hba|replication|max_wal_senders/i.test(tail)) throw replicationError(new Error(f.complaint), conn, what);
      throw new DbflowError(`pg_receivewal stopped (${f.complaint || `exit code ${f.exitCode ?? '?'}`}) while receiving WAL of ${what}.`, {
        cause: err,
      });
    },
  );
  done.catch(() => undefined).finally(() => claim.release());
  return {
    system,
    done,
    async stop() {
      stopping = true;
      // SIGINT: pg_receivewal flushes what it has and exits 0; the open segment stays as .partial.
      if (sub.exitCode === null && sub.signalCode === null) sub.kill('SIGINT');
      await done.catch(() => undefined);
    },
  };
}

/** The postgres driver's continuous archiving: WAL segments and timeline history files. */
export const walArchive: LogArchive = {
  receive,
  classify: classifyWal,
  gaps: walGaps,
  position: walPosition,
  reads: walReads,
};
