// The `snapshot` step: a consistent snapshot per database — one cut across all of them when coordinated — held as a lease for the dumps.
import {
  DbflowError,
  defineStep,
  DURATION_PATTERN,
  parseDuration,
  type CoordinationRecord,
  type DriverSnapshot,
  type StepContext,
  type TableCounts,
} from '../../src/plugin-api.js';
import { coordinatedSnapshot } from './coordinate.js';

interface SnapshotWith {
  databases: string[];
  coverage?: 'warn' | 'strict' | 'off';
  database_coverage?: 'warn' | 'strict' | 'off';
  coordinated?: boolean;
  barrier_timeout?: string;
  lock_timeout?: string;
}

/** Open snapshots by database name: what `dump` and `rowcount-check` read. */
export type SnapshotLease = Map<string, DriverSnapshot>;

interface SnapshotOutputs {
  databases: Record<string, { tables?: TableCounts; position: Record<string, unknown> }>;
  coordination?: CoordinationRecord;
}

export const snapshotStep = defineStep<SnapshotWith, SnapshotOutputs>({
  uses: 'snapshot',
  kind: 'task',
  description:
    'Open a consistent snapshot of each database (one cut across all of them) and count rows inside it; held until the dumps finish.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['databases'],
    properties: {
      databases: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string' } },
      coordinated: {
        type: 'boolean',
        default: true,
        description:
          'With several databases: take every snapshot while commits are blocked on all of them at once (one consistent cut). false: independent snapshots, one after the other.',
      },
      coverage: {
        enum: ['warn', 'strict', 'off'],
        default: 'warn',
        description:
          "The tables of each database that its entry's options leave out of the backup (options.tables, schemas, exclude_*): reported as a warning and in the manifest (warn), or failing the run (strict).",
      },
      database_coverage: {
        enum: ['warn', 'strict', 'off'],
        default: 'off',
        description:
          'The databases on the server of each snapshotted database that no entry of the pipeline names (a new database): reported as a warning and in the manifest (warn), or failing the run (strict). Off by default: another pipeline may back them up.',
      },
      barrier_timeout: {
        type: 'string',
        pattern: DURATION_PATTERN,
        default: '30s',
        description: 'How long to keep trying to block commits on every database at once.',
      },
      lock_timeout: {
        type: 'string',
        pattern: DURATION_PATTERN,
        default: '1s',
        description: 'How long one try waits for a lock before it releases every barrier (so writers go on) and tries again.',
      },
    },
  },
  outputs: {
    type: 'object',
    properties: {
      databases: {
        type: 'object',
        description: 'Per database: position, and tables (row counts) where they were taken before the step ended.',
      },
      coordination: {
        type: 'object',
        description: 'With several databases: whether they are one cut, and how long commits were blocked (blocked_ms).',
      },
    },
  },
  async run(ctx) {
    const names = ctx.with.databases;
    let held: SnapshotLease;
    let coordination: CoordinationRecord | undefined;
    if (names.length > 1 && ctx.with.coordinated !== false) {
      const cut = await coordinatedSnapshot(ctx, names, {
        totalMs: parseDuration(ctx.with.barrier_timeout ?? '30s'),
        attemptMs: parseDuration(ctx.with.lock_timeout ?? '1s'),
      });
      held = cut.held;
      coordination = cut.record;
    } else {
      held = await oneByOne(ctx, names);
      if (names.length > 1) coordination = { step: ctx.stepId, coordinated: false, participants: [...names] };
    }
    const checked = Promise.all([runAssertions(ctx, held), checkCoverage(ctx, names)]);
    const [asserted] = await checked.catch(async (err: unknown) => {
      await releaseAll(held);
      throw err;
    });
    for (const [name, snap] of held) reportWhenCounted(ctx, name, snap);
    if (coordination) ctx.report.coordination(coordination);
    ctx.lease(held, releaseAll);
    // Counts still being taken are not outputs: rowcount-check reads them from the held snapshot.
    const databases = Object.fromEntries(
      [...held].map(([n, s]) => [
        n,
        {
          position: s.info.position,
          ...(!s.counted && { tables: s.info.tables }),
          ...(asserted.has(n) && { assertions: asserted.get(n) }),
        },
      ]),
    );
    return { outputs: { databases, ...(coordination && { coordination }) } };
  },
});

/** A data assertion's result inside the snapshot (an output of the step, compared by rowcount-check). */
export interface AssertionResult {
  name: string;
  query: string;
  expect: string;
  result: string;
}

// What each database's scope leaves out, reported (a verification record, a warning), or failing the run with strict.
async function checkCoverage(ctx: StepContext<SnapshotWith>, names: readonly string[]): Promise<void> {
  const mode = ctx.with.coverage ?? 'warn';
  if (mode === 'off') return;
  for (const name of names) {
    const { config, driver } = ctx.database(name);
    if (!driver.coverage) continue;
    const left = await driver.coverage(ctx, { db: config });
    // With strict, only a table no exclusion names fails the run: an excluded one is left out on purpose.
    const unnamed = left.filter((l) => !l.excluded);
    const detail = left.length
      ? `${left.length} ${left.length === 1 ? 'table' : 'tables'} of the database left out of the backup: ${left.map((l) => `"${l.table}" (${l.why})`).join(', ')}`
      : 'every table of the database is in the backup';
    // Recorded when something is left out, or when the pipeline asked for the check by name.
    if (left.length || ctx.with.coverage !== undefined)
      ctx.report.verification({ database: name, step: ctx.id, check: 'coverage', ok: !(unnamed.length && mode === 'strict'), detail });
    if (mode === 'strict' && unnamed.length)
      throw new DbflowError(
        `database "${name}": ${detail}; add ${unnamed.length === 1 ? 'it' : 'them'} to the scope (options.tables, options.schemas) or to options.exclude_tables, or set coverage: warn.`,
      );
    if (unnamed.length) ctx.log.warn(`database "${name}": ${detail}`);
    else if (left.length) ctx.log.info(`database "${name}": ${detail}`);
  }
  // The databases on each server that no entry of the pipeline names: off unless asked for (another pipeline may back
  // them up, which this one cannot know).
  const servers = ctx.with.database_coverage ?? 'off';
  if (servers !== 'off') await checkServers(ctx, names, servers);
}

// Where an entry's URL points: its scheme, host, port and socket (a server), and its database.
function serverOf(url: string): { server: string; database: string } | undefined {
  try {
    const u = new URL(url);
    const socket = u.searchParams.get('socket') ?? u.searchParams.get('host') ?? '';
    return { server: `${u.protocol}//${u.hostname}:${u.port}${socket}`, database: decodeURIComponent(u.pathname.slice(1)) };
  } catch {
    return undefined;
  }
}

// The databases of each snapshotted server that no entry of the pipeline (of any step) names, recorded with the
// first entry of that server; strict fails the run.
async function checkServers(ctx: StepContext<SnapshotWith>, names: readonly string[], mode: 'warn' | 'strict'): Promise<void> {
  const named = new Map<string, Set<string>>();
  for (const n of ctx.databaseNames()) {
    const at = serverOf(ctx.database(n).config.url);
    if (at) named.set(at.server, (named.get(at.server) ?? new Set()).add(at.database));
  }
  const seen = new Set<string>();
  for (const name of names) {
    const { config, driver } = ctx.database(name);
    const at = serverOf(config.url);
    if (!driver.serverDatabases || !at || seen.has(at.server)) continue;
    seen.add(at.server);
    const covered = named.get(at.server)!;
    const left = (await driver.serverDatabases(ctx, { db: config })).filter((d) => !covered.has(d));
    if (!left.length) continue;
    const shown = left.slice(0, 20).map((d) => `"${d}"`);
    const detail = `${left.length} ${left.length === 1 ? 'database' : 'databases'} on the server of "${name}" that no entry of the pipeline names: ${shown.join(', ')}${left.length > shown.length ? ` and ${left.length - shown.length} more` : ''}`;
    ctx.report.verification({ database: name, step: ctx.id, check: 'coverage', ok: mode !== 'strict', detail });
    if (mode === 'strict')
      throw new DbflowError(`${detail}; add ${left.length === 1 ? 'it' : 'them'} to databases: (and the steps), or set coverage: warn.`);
    ctx.log.warn(detail);
  }
}

// Each database's data assertions, run inside its snapshot (read-only, each bounded by its timeout).
async function runAssertions(ctx: StepContext<SnapshotWith>, held: SnapshotLease): Promise<Map<string, AssertionResult[]>> {
  const out = new Map<string, AssertionResult[]>();
  for (const [name, snap] of held) {
    const assertions = ctx.database(name).config.assertions ?? [];
    if (!assertions.length) continue;
    if (!snap.query) throw new DbflowError(`database "${name}": its driver cannot run data assertions inside a snapshot.`);
    const results: AssertionResult[] = [];
    for (const a of assertions)
      results.push({ name: a.name, query: a.query, expect: a.expect, result: await snap.query(a.query, a.timeoutMs) });
    ctx.log.info(`${name}: ${results.length} data ${results.length === 1 ? 'assertion' : 'assertions'} run inside the snapshot`);
    out.set(name, results);
  }
  return out;
}

// Independent snapshots, one after the other: each is consistent, together they are not one cut.
async function oneByOne(ctx: StepContext<SnapshotWith>, names: readonly string[]): Promise<SnapshotLease> {
  const held: SnapshotLease = new Map();
  try {
    for (const name of names) {
      const { config, driver } = ctx.database(name);
      held.set(name, await driver.snapshot(ctx, { db: config }));
    }
    return held;
  } catch (err) {
    await releaseAll(held);
    throw err;
  }
}

async function releaseAll(held: SnapshotLease): Promise<void> {
  for (const s of held.values()) await s.release();
}

// A driver that counts while the dumps run reports its counts once they are complete.
function reportWhenCounted(ctx: StepContext<SnapshotWith>, name: string, snap: DriverSnapshot): void {
  const counted = (): void => {
    ctx.report.database(name, snap.info);
    const rows = Object.values(snap.info.tables).reduce((n, t) => n + t.rows, 0);
    ctx.log.info(`${name}: snapshot of ${Object.keys(snap.info.tables).length} tables, ${rows} rows`);
  };
  if (snap.counted) snap.counted.then(counted, () => undefined);
  else counted();
}
