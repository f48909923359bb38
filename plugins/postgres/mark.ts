// The postgres driver's part in a recovery mark: the coordinated snapshot's SHARE-lock write barrier, held only while a
// named restore point is written.
import { DbflowError, type DriverContext, type MarkParticipant, type ParticipateOptions } from '../../src/plugin-api.js';
import { DEADLOCK_DETECTED, describeBlockers, LOCK_NOT_AVAILABLE, lockTables, UNDEFINED_TABLE } from './locks.js';
import { tablesInScope, type PgTable } from './scope.js';
import { asSnapshotError, snapshotSession } from './snapshot.js';

const METHOD = 'LOCK TABLE … IN SHARE MODE';

/**
 * One session: its SHARE locks on every table in scope make writers wait while `pg_create_restore_point(name)` is
 * written; the restore point's LSN and WAL file are the mark. The system identifier (the WAL archive's folder) is
 * read first.
 */
export async function markParticipant(ctx: DriverContext, { db }: ParticipateOptions): Promise<MarkParticipant> {
  const s = await snapshotSession(db);
  const client = s.client;
  const endAll = async (): Promise<void> => void (await client.end().catch(() => undefined));
  let listed: PgTable[];
  let system: string;
  try {
    // A barrier waiting for a lock notices at once that dbflow is gone (PostgreSQL 14+), so writers queued behind it go on.
    if (s.versionNum >= 140000) await client.query('SET client_connection_check_interval = 100');
    const r = await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    system = r.rows[0]!.id;
    listed = await tablesInScope(client, s.o);
  } catch (err) {
    await endAll();
    throw err instanceof DbflowError ? err : asSnapshotError(err, db.name);
  }
  const onAbort = (): void => void endAll();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let begun = false;
  const rollback = async (): Promise<void> => {
    begun = false;
    await client.query('ROLLBACK').catch(() => undefined);
  };
  return {
    method: METHOD,
    // The transaction opened ahead: blocking commits is then one statement.
    async ready() {
      await client.query('BEGIN');
      begun = true;
      return undefined;
    },
    async block(timeoutMs) {
      try {
        if (!begun) await client.query('BEGIN');
        begun = false;
        await lockTables(client, listed, timeoutMs, 'SHARE');
        return undefined;
      } catch (err) {
        const code = (err as { code?: string }).code;
        await rollback();
        if (code === UNDEFINED_TABLE) {
          listed = await tablesInScope(client, s.o);
          return 'a table was dropped while it was being locked';
        }
        if (code !== LOCK_NOT_AVAILABLE && code !== DEADLOCK_DETECTED) throw asSnapshotError(err, db.name);
        const blockers = await describeBlockers(client, listed, 'SHARE').catch(
          (e: unknown) => `(the blocking sessions could not be listed: ${String(e)})`,
        );
        return `${code === DEADLOCK_DETECTED ? 'a deadlock with' : 'blocked by'} ${blockers}`;
      }
    },
    async mark(name) {
      try {
        // One round trip: the restore point, its LSN and the WAL segment that holds it (on the current timeline).
        const r = await client.query<{ lsn: string; file: string }>(
          'SELECT l::text AS lsn, pg_walfile_name(l) AS file FROM pg_create_restore_point($1) AS l',
          [name],
        );
        const { lsn, file } = r.rows[0]!;
        return { system, file, restore_point: name, lsn, timeline: parseInt(file.slice(0, 8), 16) };
      } catch (err) {
        const denied = (err as { code?: string }).code === '42501';
        throw new DbflowError(
          `database "${db.name}": the restore point of mark ${name} could not be written (${(err as Error).message})${
            denied
              ? '; an administrator runs GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO <the backup role>;'
              : '.'
          }`,
          { cause: err },
        );
      }
    },
    release: rollback,
    async abort() {
      ctx.signal.removeEventListener('abort', onAbort);
      await endAll();
    },
  };
}
