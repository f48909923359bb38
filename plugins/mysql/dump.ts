// The dump of a snapshot: the mariadb-dump started under the snapshot's barrier, streamed from its first byte.
import { finished } from 'node:stream/promises';
import { DbflowError, programOutputOf, type DriverContext, type DumpOptions, type DumpStream } from '../../src/plugin-api.js';
import { isMySnapshot } from './snapshot.js';

/** Format name recorded in the manifest. */
export const SQL_FORMAT = 'mysql-sql';

/** Streams the snapshot's dump (plain SQL, uncompressed: compression is a later step). */
export async function dumpSnapshot(ctx: DriverContext, { db, snapshot }: DumpOptions): Promise<DumpStream> {
  if (!isMySnapshot(snapshot)) {
    throw new DbflowError(
      `database "${db.name}" uses the mysql driver, but its snapshot was taken by the "${snapshot.info.driver}" driver; snapshot it with driver: mysql.`,
    );
  }
  const started = await snapshot.claimDump();
  const stream = await started.spool.claim();
  // The dump counts only if no table in scope changed its definition while it ran: checked once it has
  // ended (its program exited), before anything is published.
  const program = programOutputOf(stream);
  const final = (program ? program.exited : finished(stream)).then(() => snapshot.unchanged());
  final.catch(() => undefined); // the step reports it
  const stop = (): void => void stream.destroy(ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('cancelled'));
  ctx.signal.addEventListener('abort', stop, { once: true });
  stream.once('close', () => ctx.signal.removeEventListener('abort', stop));
  return { stream, format: SQL_FORMAT, extension: '.sql', final };
}
