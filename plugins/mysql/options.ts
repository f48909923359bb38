// The mysql driver's `databases.<name>.options`.
import type { DatabaseConfig, JsonSchema } from '../../src/plugin-api.js';

/** Options a mysql database entry accepts, with defaults applied. */
export interface MyOptions {
  checksums: boolean;
  binDir?: string;
  excludeTables: string[];
  lockWaitTimeoutS: number;
  dumpStartTimeoutMs: number;
}

/** JSON Schema of the options. */
export const optionsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    checksums: {
      type: 'boolean',
      default: true,
      description: 'Also compute an order-independent content checksum of every table inside the snapshot.',
    },
    bin_dir: { type: 'string', minLength: 1, description: 'Folder of mariadb-dump and mariadb (default: PATH).' },
    exclude_tables: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', minLength: 1 },
      description: 'Leave out these tables (exact names; mariadb-dump --ignore-table).',
    },
    lock_wait_timeout: {
      type: 'integer',
      minimum: 1,
      maximum: 3600,
      default: 10,
      description:
        'Seconds the commit barrier (BACKUP STAGE BLOCK_COMMIT, or FLUSH TABLES WITH READ LOCK) may wait for running commits and DDL.',
    },
    dump_start_timeout: {
      type: 'integer',
      minimum: 1,
      maximum: 600,
      default: 5,
      description: "Seconds to wait, with commits blocked, for mariadb-dump's transaction to start.",
    },
  },
};

/** The options of a database entry, with defaults. */
export function myOptions(db: DatabaseConfig): MyOptions {
  const o = db.options ?? {};
  return {
    checksums: o.checksums !== false,
    ...(typeof o.bin_dir === 'string' && { binDir: o.bin_dir }),
    excludeTables: Array.isArray(o.exclude_tables) ? o.exclude_tables.map(String) : [],
    lockWaitTimeoutS: typeof o.lock_wait_timeout === 'number' ? o.lock_wait_timeout : 10,
    dumpStartTimeoutMs: (typeof o.dump_start_timeout === 'number' ? o.dump_start_timeout : 5) * 1000,
  };
}
