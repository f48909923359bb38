// A dump stream fed to the `mariadb` client, into a (scratch) database.
import { DbflowError, programInput, type DriverContext, type RestoreOptions } from '../../src/plugin-api.js';
import { SQL_FORMAT } from './dump.js';
import { loadUsers } from './globals.js';
import { myOptions } from './options.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { connectionAt } from './url.js';

/** The restore tool. */
export const CLIENT_TOOL = 'mariadb';

/** Restores a `mysql-sql` stream with `mariadb --database=<target>`; it stops at the first error. */
export async function restoreDump(ctx: DriverContext, { url, input, format, db, globals }: RestoreOptions): Promise<void> {
  if (format !== SQL_FORMAT) {
    input.destroy();
    throw new DbflowError(
      `the mysql driver restores "${SQL_FORMAT}" dumps, not "${format}"; restore this artifact with the driver that made it.`,
    );
  }
  const conn = connectionAt(url, db);
  const o = myOptions(db);
  const tool = toolConnection(ctx, conn);
  // The client's packet limit at its maximum: a replayed binlog carries a large transaction's rows in one statement.
  const args = [
    tool.arg,
    `--database=${conn.database}`,
    '--default-character-set=utf8mb4',
    '--binary-mode',
    '--batch',
    '--max-allowed-packet=1073741824',
  ];
  // The client reads its input to the end: it may read its decoder's output directly.
  const source = programInput(input);
  const sub = ctx.exec(toolPath(CLIENT_TOOL, o.binDir), args, {
    stdin: source.stdin as 'pipe',
    stdout: 'ignore',
    buffer: { stderr: true },
  });
  tool.removeAfter(sub);
  await source.feed(sub, (error) => toolError(error, CLIENT_TOOL, { binDir: o.binDir, conn, doing: 'restoring' }));
  // Grants name tables: the users come after the data.
  if (globals !== undefined) await loadUsers(ctx, url, db, globals);
}
