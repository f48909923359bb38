// An empty throwaway server for a restore-test (`target: throwaway`): mariadb-install-db into a private folder, started privately.
import { execa } from 'execa';
import { DbflowError, programEnv, type DriverContext, type ScratchDatabase, type ScratchOptions } from '../../src/plugin-api.js';
import { ident, withConnection } from './connect.js';
import { instanceDir, startInstance } from './instance.js';
import { parseMyUrl } from './url.js';

/**
 * `DatabaseDriver.throwaway`: a fresh server (mariadb-install-db, its own data directory, --tmpdir, socket and loopback
 * port, grant tables with the entry's user and no password, events off) with the source's database in it; stopped and
 * removed by `drop()`, reaped after a kill.
 */
export async function throwawayServer(ctx: DriverContext, { db, name: scratch }: ScratchOptions): Promise<ScratchDatabase> {
  // Named as the source's database (nothing else lives on this server, and grants name the database), unless that is
  // one of the server's own schemas.
  const { user, database } = parseMyUrl(db.url, db.password);
  const name = SYSTEM_SCHEMAS.includes(database.toLowerCase()) ? scratch : database;
  const dir = instanceDir();
  try {
    await execa(
      'mariadb-install-db',
      [
        '--no-defaults',
        `--datadir=${dir.data}`,
        `--tmpdir=${dir.tmp}`,
        '--skip-test-db',
        '--auth-root-authentication-method=normal',
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ],
      { env: programEnv(), extendEnv: false, cancelSignal: ctx.signal },
    );
  } catch (err) {
    dir.remove();
    const said = (err as { stderr?: unknown }).stderr;
    throw new DbflowError(
      `mariadb-install-db could not make the throwaway server of the restore-test (apt-get install mariadb-server): ${typeof said === 'string' ? said.trim().split('\n').slice(-3).join(' ') : (err as Error).message}`,
      { cause: err },
    );
  }
  // With grant tables, as a production server runs (a dump's events cannot be created without them); events stay off.
  let instance = await startInstance(dir, dir.data, ctx.signal, undefined, true).catch((err: unknown) => {
    dir.remove();
    throw err;
  });
  const drop = async (): Promise<void> => {
    throwaways.delete(url);
    await instance.stop('kill');
    dir.remove();
  };
  const url = instance.url(user, name);
  throwaways.set(url, {
    socket: dir.socket,
    restart: async () => {
      await instance.stop('clean');
      instance = await startInstance(dir, dir.data, ctx.signal, instance.port);
    },
  });
  try {
    await withConnection(
      parseMyUrl(instance.url('root', 'mysql')),
      'the throwaway server',
      async (c) => {
        await c.query(`CREATE DATABASE ${ident(name)} CHARACTER SET utf8mb4`);
        // The entry's user, for the restore and the counts (the server's own root is there already), without a password.
        if (user !== 'root')
          for (const host of ['localhost', '127.0.0.1']) {
            const account = `${quoteString(user)}@${quoteString(host)}`;
            await c.query(`CREATE USER IF NOT EXISTS ${account}`);
            await c.query(`GRANT ALL PRIVILEGES ON *.* TO ${account} WITH GRANT OPTION`);
          }
      },
      { database: false },
    );
  } catch (err) {
    await drop();
    throw err;
  }
  ctx.log.info(`restoring into a throwaway server on port ${instance.port} (not the production server)`);
  return { url, drop };
}

const quoteString = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

const SYSTEM_SCHEMAS = ['mysql', 'sys', 'performance_schema', 'information_schema'];

/**
 * A throwaway server this process started, by the URL handed out: its private socket, and a restart on the same port
 * without grant tables (once a backup's users are loaded, its counts connect whatever their passwords).
 */
export interface Throwaway {
  socket: string;
  restart(): Promise<void>;
}

const throwaways = new Map<string, Throwaway>();

/** The throwaway server of `url`, if this process started it. */
export function throwawayAt(url: string): Throwaway | undefined {
  return throwaways.get(url);
}
