// The stock client tools (pg_dump, pg_restore): where they are, how they connect, what their failures mean.
import path from 'node:path';
import { credentialFile, DbflowError, toolFailure, toolFailureError, type DriverContext } from '../../src/plugin-api.js';
import { libpqEnv, where, type PgConnection } from './url.js';

/** The path of a client tool: in `bin_dir` when set, else found on PATH. */
export function toolPath(tool: string, binDir: string | undefined): string {
  return binDir ? path.join(binDir, tool) : tool;
}

/** How a client tool connects: its environment, and a passfile to remove once it has ended. */
export interface ToolConnection {
  env: Record<string, string>;
  /** Removes the passfile (if any) once `program` has ended, however it ends. */
  removeAfter: (program: PromiseLike<unknown>) => void;
}

/**
 * The environment a client tool connects with: libpq variables, and the password (if any) in a
 * 0600 passfile of its own (`PGPASSFILE`) — never in argv, never in the environment.
 */
export function toolConnection(ctx: DriverContext, conn: PgConnection, application: string): ToolConnection {
  const env: Record<string, string> = {
    ...userLibpqEnv(),
    ...libpqEnv(conn),
    PGAPPNAME: application,
    PGCONNECT_TIMEOUT: String(conn.connectTimeoutS ?? 15),
  };
  // The password the node client would use too: the entry's, else libpq's own variable — moved into the passfile.
  const password = conn.password ?? process.env.PGPASSWORD;
  if (password === undefined || password === '') return { env, removeAfter: () => undefined };
  const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  const file = credentialFile(ctx, 'pgpass', `*:*:*:*:${esc(password)}\n`);
  return { env: { ...env, PGPASSFILE: file.path }, removeAfter: file.removeAfter };
}

// libpq's variables that the user set for dbflow (PGSSLMODE, PGSSLROOTCERT, PGSERVICE …), as the node client reads
// them too; the URL's settings win, and a password never travels in the environment.
function userLibpqEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && /^PG[A-Z_]+$/.test(k) && k !== 'PGPASSWORD' && k !== 'PGPASSFILE') out[k] = v;
  return out;
}

// Answers of `--version` probes, by program path, kept for a minute: a snapshot starts the probe of the
// dump tool its dump will need, so the dump does not wait for it. A failed probe is not kept.
const PROBE_TTL_MS = 60_000;
const probes = new Map<string, { at: number; major: Promise<number> }>();

/** Major version of a client tool (`pg_dump --version` → 15), or a clear error when it is missing. */
export function toolMajor(ctx: DriverContext, tool: string, binDir: string | undefined): Promise<number> {
  const file = toolPath(tool, binDir);
  const known = probes.get(file);
  if (known && Date.now() - known.at < PROBE_TTL_MS) return known.major;
  const major = (async () => {
    try {
      const r = await ctx.exec(file, ['--version'], { stderr: 'pipe' });
      const m = /\(PostgreSQL\)\s+(\d+)/.exec(String(r.stdout));
      return Number(m?.[1] ?? 0);
    } catch (err) {
      throw toolError(err, tool, { binDir });
    }
  })();
  probes.set(file, { at: Date.now(), major });
  major.catch(() => probes.delete(file));
  return major;
}

/** Refuses a client tool older than the server (pg_dump cannot dump a newer server). */
export function checkToolVersion(tool: string, major: number, serverVersionNum: number, binDir: string | undefined): void {
  const server = Math.floor(serverVersionNum / 10000);
  if (major && server && major < server) {
    throw new DbflowError(
      `${tool} ${major} cannot ${tool === 'pg_dump' ? 'dump' : 'restore into'} PostgreSQL ${server}: install the version ${server} client tools (apt-get install postgresql-client-${server}) and point "options.bin_dir" at them${binDir ? ` (now "${binDir}")` : ''}.`,
    );
  }
}

const INSTALL = 'the PostgreSQL client tools (apt-get install postgresql-client)';

/** What a failed pg_dump/pg_restore means, in words a user can act on. */
export function toolError(err: unknown, tool: string, at: { binDir?: string | undefined; conn?: PgConnection; doing?: string }): Error {
  if (err instanceof DbflowError) return err;
  const f = toolFailure(err, tool);
  const doing = at.doing ?? (tool === 'pg_dump' ? 'dumping' : 'restoring');
  const server = at.conn ? ` (${where(at.conn)}, database "${at.conn.database}")` : '';
  if (!f.missing && !f.cancelled && !f.signal) {
    if (/server version mismatch/i.test(f.stderr)) {
      return new DbflowError(
        `${tool} is older than the server${server}: ${f.complaint}. Install the server's version of the client tools (apt-get install postgresql-client-<version>) and set "options.bin_dir".`,
        { cause: err },
      );
    }
    if (/relation .* does not exist|could not open relation|cache lookup failed for relation/i.test(f.stderr)) {
      return new DbflowError(
        `a table in scope was dropped or altered after the snapshot was taken${server} (${f.complaint}); keep "lock_tables" on so DDL waits for the backup, then run again.`,
        { cause: err },
      );
    }
    if (/password authentication failed/i.test(f.stderr)) {
      return new DbflowError(`${tool}: password authentication failed${server}; check the database's "password:".`, { cause: err });
    }
  }
  return toolFailureError(err, tool, f, { install: INSTALL, binDir: at.binDir, doing, server });
}
