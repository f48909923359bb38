// The postgres driver's `databases.<name>.options`.
import type { DatabaseConfig, JsonSchema } from '../../src/plugin-api.js';

/** Options a postgres database entry accepts, with defaults applied. */
export interface PgOptions {
  checksums: boolean;
  binDir?: string;
  schemas: string[];
  excludeSchemas: string[];
  tables: string[];
  excludeTables: string[];
  format: 'custom' | 'directory';
  jobs: number;
  restoreJobs: number;
  lockTables: boolean;
  lockTimeoutMs: number;
}

const names = (description: string): JsonSchema => ({
  type: 'array',
  uniqueItems: true,
  items: { type: 'string', minLength: 1 },
  description,
});

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
    bin_dir: { type: 'string', minLength: 1, description: 'Folder of pg_dump and pg_restore (default: PATH).' },
    schemas: names('Dump only these schemas (exact names; pg_dump -n).'),
    exclude_schemas: names('Leave out these schemas (pg_dump -N).'),
    tables: names('Dump only these tables, as schema.table (pg_dump -t).'),
    exclude_tables: names('Leave out these tables, as schema.table (pg_dump -T).'),
    format: {
      enum: ['custom', 'directory'],
      default: 'custom',
      description: 'custom: one pg_dump -Fc stream. directory: pg_dump -Fd --jobs N into a staging folder, streamed as a tar.',
    },
    jobs: { type: 'integer', minimum: 1, maximum: 64, default: 2, description: 'Parallel dump jobs (format: directory).' },
    restore_jobs: {
      type: 'integer',
      minimum: 1,
      maximum: 64,
      default: 2,
      description: 'Parallel pg_restore jobs of a restore-test (format: directory; a custom stream restores in one job).',
    },
    lock_tables: {
      type: 'boolean',
      default: true,
      description: 'Hold ACCESS SHARE locks on the tables in scope from the snapshot on, so DDL waits for the backup.',
    },
    lock_timeout: {
      type: 'string',
      pattern: '^[0-9]+(ms|s|m)$',
      default: '30s',
      description: 'How long the snapshot waits for a table lock held by another session.',
    },
  },
};

/** The options of a database entry, with defaults. */
export function pgOptions(db: DatabaseConfig): PgOptions {
  const o = db.options ?? {};
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
  const timeout = typeof o.lock_timeout === 'string' ? o.lock_timeout : '30s';
  const [, n, unit] = /^(\d+)(ms|s|m)$/.exec(timeout) ?? [];
  return {
    checksums: o.checksums !== false,
    ...(typeof o.bin_dir === 'string' && { binDir: o.bin_dir }),
    schemas: list(o.schemas),
    excludeSchemas: list(o.exclude_schemas),
    tables: list(o.tables),
    excludeTables: list(o.exclude_tables),
    format: o.format === 'directory' ? 'directory' : 'custom',
    jobs: typeof o.jobs === 'number' ? o.jobs : 2,
    restoreJobs: typeof o.restore_jobs === 'number' ? o.restore_jobs : 2,
    lockTables: o.lock_tables !== false,
    lockTimeoutMs: Number(n ?? 30) * (unit === 'ms' ? 1 : unit === 'm' ? 60_000 : 1000),
  };
}
