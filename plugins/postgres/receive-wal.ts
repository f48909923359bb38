// Continuous WAL archiving: pg_receivewal streams into the spool through a replication slot; dbflow stores the files.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
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
import { classifyWal, walGaps, walPosition } from './wal-names.js';
import { identifySystem, prepareSlot, replicationError } from './wal-settings.js';

/** The file in the spool that names the pg_receivewal process writing into it (one left by a killed dbflow is stopped). */
const PID_FILE = 'pg_receivewal.pid';

/** Checks the settings, creates the slot if missing, and starts `pg_receivewal --synchronous` into the spool. */
async function receive(ctx: DriverContext, { db, spool, slot }: LogReceiveOptions): Promise<LogReceiver> {
  const conn = connectionAt(db.url, db);
  const what = `database "${db.name}"`;
  const { binDir } = pgOptions(db);
  await prepareSlot(conn, what, slot);
  const system = await identifySystem(conn, what);
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  await stopOrphan(spool);
  const tool = toolConnection(ctx, conn, 'dbflow-archive');
  // Without --no-loop: a server restart or a dropped connection is retried by pg_receivewal itself (every 5 s).
  const sub = ctx.exec(toolPath('pg_receivewal', binDir), ['-D', spool, '-S', slot, '--synchronous', '-v'], {
    env: tool.env,
    stderr: 'pipe',
    buffer: { stderr: false },
  });
  tool.removeAfter(sub);
  if (sub.pid !== undefined) writeFileSync(path.join(spool, PID_FILE), `${sub.pid}\n`);
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
  done.catch(() => undefined).finally(() => rmSync(path.join(spool, PID_FILE), { force: true }));
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

// A pg_receivewal left running by a dbflow that was killed holds the slot and writes into the spool: stop it first.
async function stopOrphan(spool: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(spool, PID_FILE), 'utf8').trim());
  } catch {
    return;
  }
  const isReceiver = (): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pg_receivewal');
    } catch {
      return false;
    }
  };
  if (!(pid > 0) || !isReceiver()) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 50 && isReceiver(); i++) await sleep(100);
  if (isReceiver()) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && isReceiver(); i++) await sleep(100);
}

/** The postgres driver's continuous archiving: WAL segments and timeline history files. */
export const walArchive: LogArchive = {
  receive,
  classify: classifyWal,
  gaps: walGaps,
  position: walPosition,
};
