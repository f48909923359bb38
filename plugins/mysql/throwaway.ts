// An empty throwaway server for a restore-test (`target: throwaway`): mariadb-install-db into a private folder, started privately.
import { execa } from 'execa';
import { DbflowError, programEnv, type DriverContext, type ScratchDatabase, type ScratchOptions } from '../../src/plugin-api.js';
import { ident, withConnection } from './connect.js';
import { instanceDir, startInstance } from './instance.js';
import { parseMyUrl } from './url.js';

/**
 * `DatabaseDriver.throwaway`: a fresh server (mariadb-install-db, its own data directory, --tmpdir, socket and loopback
 * port, no grant tables) with database `name` in it; stopped and removed by `drop()`, reaped after a kill.
 */
export async function throwawayServer(ctx: DriverContext, { db, name }: ScratchOptions): Promise<ScratchDatabase> {
  const user = parseMyUrl(db.url, db.password).user;
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
  const instance = await startInstance(dir, dir.data, ctx.signal).catch((err: unknown) => {
    dir.remove();
    throw err;
  });
  const drop = async (): Promise<void> => {
    await instance.stop('kill');
    dir.remove();
  };
  try {
    await withConnection(
      parseMyUrl(instance.url(user, 'mysql')),
      'the throwaway server',
      (c) => c.query(`CREATE DATABASE ${ident(name)} CHARACTER SET utf8mb4`),
      { database: false },
    );
  } catch (err) {
    await drop();
    throw err;
  }
  ctx.log.info(`restoring into a throwaway server on port ${instance.port} (not the production server)`);
  return { url: instance.url(user, name), drop };
}
