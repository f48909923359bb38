// The stock client tools (mariadb-dump, mariadb): where they are, how they connect, what their failures mean.
import path from 'node:path';
import { credentialFile, DbflowError, toolFailure, toolFailureError, type DriverContext } from '../../src/plugin-api.js';
import { where, type MyConnection } from './url.js';

/** The path of a client tool: in `bin_dir` when set, else found on PATH. */
export function toolPath(tool: string, binDir: string | undefined): string {
  return binDir ? path.join(binDir, tool) : tool;
}

// An option-file value: quoted, with the escapes the option-file reader undoes.
const quote = (value: string): string => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** A client tool's connection: its first argument, and an option file to remove once it has ended. */
export interface ToolConnection {
  /** `--defaults-extra-file=<file>`: must be the FIRST argument of the tool. */
  arg: string;
  /** Removes the option file once `program` has ended, however it ends. */
  removeAfter: (program: PromiseLike<unknown>) => void;
}

/**
 * Writes the connection (and the password, if any) to a 0600 option file of its own for one client
 * tool. The password is never in argv nor in the environment.
 */
export function toolConnection(ctx: DriverContext, conn: MyConnection): ToolConnection {
  const lines = ['[client]', `user=${quote(conn.user)}`];
  if (conn.password !== undefined) lines.push(`password=${quote(conn.password)}`);
  if (conn.socket) lines.push(`socket=${quote(conn.socket)}`, 'protocol=SOCKET');
  else lines.push(`host=${quote(conn.host)}`, `port=${conn.port}`, 'protocol=TCP');
  switch (conn.sslMode) {
    case 'DISABLED':
      lines.push('skip-ssl');
      break;
    case 'REQUIRED':
      lines.push('ssl');
      break;
    case 'VERIFY_CA':
    case 'VERIFY_IDENTITY':
      lines.push('ssl', 'ssl-verify-server-cert');
      break;
    default:
  }
  if (conn.sslCa) lines.push(`ssl-ca=${quote(conn.sslCa)}`);
  // Only the `mariadb` client knows a connect timeout; mariadb-dump refuses unknown options.
  lines.push('[mysql]', `connect-timeout=${Math.ceil(conn.connectTimeoutS)}`);
  const file = credentialFile(ctx, 'my.cnf', `${lines.join('\n')}\n`);
  return { arg: `--defaults-extra-file=${file.path}`, removeAfter: file.removeAfter };
}

/** `mariadb-dump --version` (e.g. `Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)`), or a clear error when it is missing. */
export async function toolVersion(ctx: DriverContext, tool: string, binDir: string | undefined): Promise<string> {
  try {
    const r = await ctx.exec(toolPath(tool, binDir), ['--version'], { stderr: 'pipe' });
    return String(r.stdout)
      .trim()
      .replace(/^\S+\s+/, '');
  } catch (err) {
    throw toolError(err, tool, { binDir });
  }
}

const INSTALL = 'the MariaDB client tools (apt-get install mariadb-client)';

/** What a failed mariadb-dump/mariadb means, in words a user can act on. */
export function toolError(err: unknown, tool: string, at: { binDir?: string | undefined; conn?: MyConnection; doing?: string }): Error {
  if (err instanceof DbflowError) return err;
  const f = toolFailure(err, tool);
  const doing = at.doing ?? (tool.includes('dump') ? 'dumping' : 'restoring');
  const server = at.conn ? ` (${where(at.conn)}, database "${at.conn.database}")` : '';
  if (!f.missing && !f.cancelled && !f.signal && /Access denied for user/i.test(f.stderr)) {
    return new DbflowError(`${tool}: access denied${server}; check the database's "password:".`, { cause: err });
  }
  return toolFailureError(err, tool, f, { install: INSTALL, binDir: at.binDir, doing, server });
}
