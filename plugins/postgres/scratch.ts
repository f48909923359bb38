// Scratch databases on the server of a database entry: created empty, always dropped.
import { createHash } from 'node:crypto';
import { DbflowError, type DriverContext, type ScratchDatabase, type ScratchOptions } from '../../src/plugin-api.js';
import { withClient } from './connect.js';
import { ident } from './scope.js';
import { parsePgUrl, where, withDatabase } from './url.js';

const MAX_IDENT = 63;

/** Creates an empty database `name` (from template0) next to `db`; `drop()` removes it, ending its sessions. */
export async function createScratch(ctx: DriverContext, { db, name }: ScratchOptions): Promise<ScratchDatabase> {
  const conn = parsePgUrl(db.url, db.password);
  const scratchName = fitName(name);
  const what = `database "${db.name}" (creating scratch database "${scratchName}")`;
  // The session is named after the scratch database: if this run dies while the server still creates it, a reaper
  // finds the session by its name and ends it before looking for the database (see reap.ts).
  await withClient(
    conn,
    what,
    async (c) => {
      try {
        await c.query(`CREATE DATABASE ${ident(scratchName)} TEMPLATE template0`);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        const hint = e.code === '42501' ? `; user "${conn.user}" needs CREATEDB to run restore-tests on ${where(conn)}` : '';
        throw new DbflowError(`cannot create scratch database "${scratchName}" on ${where(conn)}: ${e.message}${hint}.`, { cause: err });
      }
    },
    scratchName,
  );
  ctx.log.info(`created scratch database ${scratchName}`);
  const scratch = withDatabase(conn, scratchName);
  let dropped = false;
  return {
    url: scratch.display,
    drop: async () => {
      if (dropped) return;
      await withClient(conn, `database "${db.name}" (dropping scratch database "${scratchName}")`, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${ident(scratchName)} WITH (FORCE)`),
      );
      dropped = true;
      ctx.log.info(`dropped scratch database ${scratchName}`);
    },
  };
}

// Identifiers are cut at 63 bytes; a long name keeps its start and gets a hash of the whole.
function fitName(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENT) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_IDENT - 9)}_${hash}`;
}
