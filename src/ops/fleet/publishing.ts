// The fleet's note of the manifests a run is writing: kept in Redis beside the lease, so that whichever worker holds the
// lease next withdraws a backup its holder published in only some of its repositories (a worker killed between two
// manifests), wherever that holder ran. The run record keeps the same note for its own machine (see reap.ts).
import type { Redis } from 'ioredis';
import type { Registry } from '../../plugins/registry.js';
import type { PublishIntent } from '../../repo/publish-backup.js';
import { withdrawUnlessWhole } from '../reap.js';
import { keys } from './keys.js';

/** How long a note outlives a holder that never came back (a week: longer than any lease is left unheld in practice). */
const NOTE_KEEP_S = 7 * 24 * 3600;

// Deletes the note only while it is the one this run wrote.
const DELETE_IF = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** `intent` (the run record's note) plus the same note in Redis under the lease `leaseId`, written before any manifest. */
export function fleetPublishIntent(
  redis: Redis,
  leaseId: string,
  run: { id: string; token: number },
  intent?: PublishIntent,
): PublishIntent {
  const key = keys.publishing(leaseId);
  let value: string | undefined;
  return {
    async publishing(urls) {
      await intent?.publishing(urls);
      value = JSON.stringify({ manifests: urls, run: run.id, fencing_token: run.token });
      await redis.set(key, value, 'EX', NOTE_KEEP_S);
    },
    async published() {
      await intent?.published();
      if (value !== undefined) await redis.eval(DELETE_IF, 1, key, value);
    },
  };
}

/**
 * Called by the lease's new holder before its steps: a note left under the lease is a previous holder's that stopped
 * while publishing (this one holds the lease now); its manifests are withdrawn unless all were written, then the note
 * is deleted. A storage that cannot be read keeps the note, for the next holder.
 */
export async function withdrawFleetNote(
  redis: Redis,
  leaseId: string,
  o: { repositories: readonly string[]; registry: Registry; signal: AbortSignal; log: (message: string) => void },
): Promise<void> {
  const key = keys.publishing(leaseId);
  const value = await redis.get(key);
  if (value === null) return;
  let note: { manifests?: unknown; run?: unknown; fencing_token?: unknown };
  try {
    note = JSON.parse(value) as typeof note;
  } catch {
    note = {};
  }
  try {
    await withdrawUnlessWhole(note.manifests, `run ${String(note.run)} (fencing token ${String(note.fencing_token)})`, o);
    await redis.eval(DELETE_IF, 1, key, value);
  } catch (err) {
    o.log(
      `warning: the manifests a previous run was publishing could not be checked (${(err as Error).message}); the next run tries again`,
    );
  }
}
