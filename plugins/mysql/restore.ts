// A dump stream fed to the `mariadb` client, into a (scratch) database.
import type { Readable } from 'node:stream';
import { DbflowError, feedStdin, type DatabaseConfig, type DriverContext } from '../../src/index.js';
import { SQL_FORMAT } from './dump.js';
import { myOptions } from './options.js';
import { defaultsFileArg, toolEnv, toolError, toolPath } from './tools.js';
import { parseMyUrl } from './url.js';

/** The restore tool. */
export const CLIENT_TOOL = 'mariadb';

/** Restores a `mysql-sql` stream with `mariadb --database=<target>`; it stops at the first error. */
export async function restoreDump(ctx: DriverContext, url: string, input: Readable, format: string, db: DatabaseConfig): Promise<void> {
  if (format !== SQL_FORMAT) {
    input.destroy();
    throw new DbflowError(`the mysql driver restores "${SQL_FORMAT}" dumps, not "${format}"; restore this artifact with the driver that made it.`);
  }
  const conn = parseMyUrl(url, db.password);
  const o = myOptions(db);
  const args = [defaultsFileArg(ctx, conn), `--database=${conn.database}`, '--default-character-set=utf8mb4', '--binary-mode', '--batch'];
  const sub = ctx.exec(toolPath(CLIENT_TOOL, o.binDir), args, { ...toolEnv(conn), stdin: 'pipe', stdout: 'ignore', buffer: { stderr: true } });
  await feedStdin(sub, input, (error) => toolError(error, CLIENT_TOOL, { binDir: o.binDir, conn, doing: 'restoring' }));
}
