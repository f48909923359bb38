// An empty throwaway server for a restore-test (`target: throwaway`): initdb into a private folder, started privately.
import path from 'node:path';
import { DbflowError, type DriverContext, type ScratchDatabase, type ScratchOptions } from '../../src/plugin-api.js';
import { withClient } from './connect.js';
import { asServerUser, instanceDir, requireServerBinDir, startInstance } from './instance.js';
import { ident } from './scope.js';
import { parsePgUrl } from './url.js';

/**
 * `DatabaseDriver.throwaway`: a fresh cluster (initdb, local trust only, its superuser named as the entry's user, no
 * durability: it is thrown away) on a loopback port and a private socket, with database `name` in it; stopped and
 * removed by `drop()`, reaped after a kill like every instance.
 */
export async function throwawayServer(ctx: DriverContext, { db, name }: ScratchOptions): Promise<ScratchDatabase> {
  const bin = await requireServerBinDir();
  const user = parsePgUrl(db.url, db.password).user;
  const dir = await instanceDir();
  try {
    await asServerUser(path.join(bin, 'initdb'), ['-D', dir.data, '-A', 'trust', '-U', user, '-E', 'UTF8', '--no-sync'], {
      signal: ctx.signal,
    });
  } catch (err) {
    dir.remove();
    const said = (err as { stderr?: unknown }).stderr;
    throw new DbflowError(
      `initdb could not make the throwaway server of the restore-test: ${typeof said === 'string' ? said.trim() : (err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const instance = await startInstance({
    bin,
    dir,
    signal: ctx.signal,
    settings: ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_wal_senders=0', 'wal_level=minimal'],
  });
  try {
    await withClient(parsePgUrl(instance.url(user, 'postgres')), 'the throwaway server', (c) =>
      c.query(`CREATE DATABASE ${ident(name)} TEMPLATE template0`),
    );
  } catch (err) {
    await instance.stop();
    throw err;
  }
  ctx.log.info(`restoring into a throwaway server on port ${instance.port} (not the production server)`);
  return { url: instance.url(user, name), drop: () => instance.stop() };
}
