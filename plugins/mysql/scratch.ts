// Scratch databases on the server of a database entry: created empty, always dropped.
import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { DbflowError, type DriverContext, type ScratchDatabase, type ScratchOptions } from '../../src/plugin-api.js';
import { ident, withConnection } from './connect.js';
import { parseMyUrl, where, withDatabase } from './url.js';

const MAX_IDENT = 64;

/** Creates an empty database `name` next to `db`, with `db`'s default character set and collation; `drop()` removes it. */
export async function createScratch(ctx: DriverContext, { db, name }: ScratchOptions): Promise<ScratchDatabase> {
  const conn = parseMyUrl(db.url, db.password);
  const scratchName = fitName(name);
  const what = `database "${db.name}" (creating scratch database "${scratchName}")`;
  await withConnection(
    conn,
    what,
    async (c) => {
      const [rows] = await c.query<RowDataPacket[]>(
        'SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [conn.database],
      );
      const source = rows[0] as { cs: string; co: string } | undefined;
      if (!source) throw new DbflowError(`${what}: database "${conn.database}" does not exist on ${where(conn)}.`);
      try {
        await c.query(`CREATE DATABASE ${ident(scratchName)} CHARACTER SET ${source.cs} COLLATE ${source.co}`);
      } catch (err) {
        const e = err as { code?: string; sqlMessage?: string };
        const hint =
          e.code === 'ER_DBACCESS_DENIED_ERROR'
            ? `; user "${conn.user}" needs CREATE and DROP on \`dbflow\\_verify\\_%\`.* to run restore-tests`
            : '';
        throw new DbflowError(`cannot create scratch database "${scratchName}" on ${where(conn)}: ${e.sqlMessage ?? String(err)}${hint}.`, {
          cause: err,
        });
      }
    },
    { database: false },
  );
  ctx.log.info(`created scratch database ${scratchName}`);
  let dropped = false;
  return {
    url: withDatabase(conn, scratchName).display,
    drop: async () => {
      if (dropped) return;
      await withConnection(
        conn,
        `database "${db.name}" (dropping scratch database "${scratchName}")`,
        (c) => c.query(`DROP DATABASE IF EXISTS ${ident(scratchName)}`),
        {
          database: false,
        },
      );
      dropped = true;
      ctx.log.info(`dropped scratch database ${scratchName}`);
    },
  };
}

// Names are at most 64 characters; a long one keeps its start and gets a hash of the whole.
function fitName(name: string): string {
  if (name.length <= MAX_IDENT) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_IDENT - 9)}_${hash}`;
}
