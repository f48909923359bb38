// The state folder (run records, metrics, audit, run locks): one home whatever the working directory.
import os from 'node:os';
import path from 'node:path';

/**
 * `$DBFLOW_STATE_DIR`, else `$XDG_STATE_HOME/dbflow`, else `~/.local/state/dbflow` (absolute);
 * `--state-dir` overrides it where a command takes one.
 */
export function defaultStateDir(env: Record<string, string | undefined> = process.env): string {
  if (env.DBFLOW_STATE_DIR) return path.resolve(env.DBFLOW_STATE_DIR);
  const xdg = env.XDG_STATE_HOME;
  // The XDG spec ignores a relative XDG_STATE_HOME.
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'dbflow');
  return path.join(env.HOME || os.homedir(), '.local', 'state', 'dbflow');
}
