// The sqlite driver's `databases.<name>.options`.
import type { DatabaseConfig, JsonSchema } from '../../src/plugin-api.js';
import { DEFAULT_BUSY_TIMEOUT_MS } from './open.js';

/** Options a sqlite database entry accepts. */
export interface SqliteOptions {
  busyTimeoutMs: number;
  backupStepPages: number;
  checksums: boolean;
}

/** JSON Schema of the options. */
export const optionsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    busy_timeout_ms: {
      type: 'integer',
      minimum: 0,
      default: DEFAULT_BUSY_TIMEOUT_MS,
      description: 'How long to wait for a lock held by another connection.',
    },
    checksums: {
      type: 'boolean',
      default: false,
      description:
        'Also compute an order-independent content checksum of every table (costs about 1.5 µs per row). Off by default: a restore-test already proves the restored file is byte-identical to the snapshot.',
    },
    backup_step_pages: {
      type: 'integer',
      minimum: 1,
      default: 4096,
      description: 'Pages the online backup copies between two turns of the event loop.',
    },
  },
};

/** The options of a database entry, with defaults. */
export function sqliteOptions(db: DatabaseConfig): SqliteOptions {
  const o = db.options ?? {};
  return {
    busyTimeoutMs: typeof o.busy_timeout_ms === 'number' ? o.busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS,
    backupStepPages: typeof o.backup_step_pages === 'number' ? o.backup_step_pages : 4096,
    checksums: o.checksums === true,
  };
}
