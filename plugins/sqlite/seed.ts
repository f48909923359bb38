// The `sqlite-seed` step: creates a demo database for a first run or a benchmark.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DbflowError, defineStep } from '../../src/plugin-api.js';
import { openExisting } from './open.js';
import { fillDemo, type FillResult } from './seed-fill.js';
import { companionFiles, parseSqliteUrl } from './url.js';

interface SeedWith {
  database: string;
  rows?: number;
  if_missing?: boolean;
}

/** Creates (or, with `if_missing: false`, adds to) a demo database of customers, orders and order items. */
export const seedStep = defineStep<SeedWith, { created: boolean; path: string }>({
  uses: 'sqlite-seed',
  kind: 'task',
  description: 'Create a demo SQLite database (customers, orders, order_items) in WAL mode.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['database'],
    properties: {
      database: { type: 'string', description: 'A name from databases: with driver: sqlite.' },
      rows: {
        type: 'integer',
        minimum: 1,
        default: 10000,
        description: 'Orders to create; ~3 order items each, 1 customer per 8 orders (~450 bytes per order).',
      },
      if_missing: {
        type: 'boolean',
        default: true,
        description: 'Only when the database file is missing; false adds rows to an existing one.',
      },
    },
  },
  outputs: {
    type: 'object',
    properties: { created: { type: 'boolean' }, path: { type: 'string' } },
  },
  async run(ctx) {
    const { config } = ctx.database(ctx.with.database);
    if (config.driver !== 'sqlite') {
      throw new DbflowError(
        `sqlite-seed needs a sqlite database, but "${config.name}" has driver "${config.driver}"; name a database with driver: sqlite.`,
      );
    }
    const loc = parseSqliteUrl(config.url);
    const rows = ctx.with.rows ?? 10000;
    const existing = await stat(loc.file).catch(() => undefined);
    const missing = !existing || (existing.isFile() && existing.size === 0);
    if (!missing && (ctx.with.if_missing ?? true)) {
      ctx.log.info(`${loc.written} exists; not seeding it (if_missing: true).`);
      return { outputs: { created: false, path: loc.file } };
    }
    const started = Date.now();
    let filled: FillResult;
    if (missing) {
      filled = await createFresh(loc.file, rows, ctx.signal);
    } else {
      const db = openExisting(loc);
      try {
        db.pragma('journal_mode = WAL');
        filled = await fillDemo(db, rows, ctx.signal);
      } finally {
        db.close();
      }
    }
    const { size } = await stat(loc.file);
    ctx.log.info(
      `seeded ${loc.written}: ${filled.customers} customers, ${filled.orders} orders, ${filled.items} order items, ${(size / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(1)}s`,
    );
    return { outputs: { created: true, path: loc.file } };
  },
});

// Builds the database under a temporary name and renames it into place, so a cancelled seed leaves nothing.
async function createFresh(file: string, rows: number, signal: AbortSignal): Promise<FillResult> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.seed-${randomBytes(6).toString('hex')}`);
  try {
    const db = new Database(temp);
    let filled: FillResult;
    try {
      // No journal while building: a failed build is thrown away whole.
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      db.pragma('cache_size = -65536');
      filled = await fillDemo(db, rows, signal);
      db.pragma('journal_mode = WAL');
    } finally {
      db.close();
    }
    await rename(temp, file);
    return filled;
  } finally {
    await Promise.all(companionFiles(temp).map((f) => rm(f, { force: true })));
  }
}
