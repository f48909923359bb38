// `dbflow wal-fetch`: a server's restore_command during a point-in-time restore. It fetches one log file from the
// archive through dbflow's storages and codecs. Exit 0: written; 1: the archive does not hold it (recovery goes on
// to its end or its target); 126: the archive holds it but it cannot be read back whole, which makes PostgreSQL
// stop the recovery instead of ending it early and starting with less than was archived.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { builtinRegistry } from '../plugins/loader.js';
import type { DecodeKeys } from '../plugins/types.js';
import { fetchLogFile } from '../repo/log-fetch.js';
import { interruptible, secretsOf } from './command-support.js';
import type { Io } from './io.js';
import { toolContext } from './tool-context.js';

/** What a restore writes for its restore_command (a 0600 file of the server's user, removed with the restore). */
export interface FetchContext {
  /** The archive's folder of the cluster's system identifier. */
  folder: string;
  keys: DecodeKeys;
  /** Storage settings by scheme, as the restore had them (the config file's `storage:`). */
  storage?: Record<string, unknown>;
}

/** A log file the archive holds but cannot give back whole: recovery must stop (PostgreSQL: an exit above 125). */
export const FETCH_FAILED_EXIT = 126;

export async function walFetchCommand(file: string, dest: string, opts: { context: string }, io: Io): Promise<number> {
  if (!/^[0-9A-F]{8}(?:[0-9A-F]{16}|\.history)$/.test(file) && !/^[0-9A-F]{24}\.partial$/.test(file)) {
    // Backup history files and anything else recovery may ask for are not archived.
    return 1;
  }
  const context = JSON.parse(readFileSync(opts.context, 'utf8')) as FetchContext;
  const registry = await builtinRegistry();
  registry.configureStorages(context.storage ?? {}, opts.context, path.dirname(opts.context));
  try {
    const outcome = await interruptible(io, 'wal-fetch', async (signal) => {
      const { ctx, close } = await toolContext({
        registry,
        signal,
        name: 'wal-fetch',
        secrets: secretsOf(context.keys),
        secretEnv: [],
        log: () => undefined,
      });
      try {
        return await fetchLogFile(ctx, context.folder, file, path.resolve(dest), context.keys, signal);
      } finally {
        close();
      }
    });
    if (outcome === 'missing') return 1;
    if (outcome === 'partial') io.err(`dbflow wal-fetch: ${file} from its partial (the open segment as far as it was archived)`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    io.err(`dbflow wal-fetch: ${file}: ${(err as Error).message}`);
    return FETCH_FAILED_EXIT;
  }
}
