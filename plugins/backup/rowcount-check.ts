// The `rowcount-check` step: restored row counts must equal those taken inside the snapshot.
import {
  compareCounts,
  DbflowError,
  defineStep,
  IntegrityError,
  type DriverSnapshot,
  type StepContext,
  type TableCounts,
} from '../../src/plugin-api.js';
import type { AssertionResult, SnapshotLease } from './snapshot.js';

interface RowcountWith {
  restored: string;
  snapshot: string;
  checksums?: boolean;
}

export const rowcountCheckStep = defineStep<RowcountWith, { tables: number; rows: number }>({
  uses: 'rowcount-check',
  kind: 'task',
  description: "Compare a restore-test's row counts (and checksums) with the snapshot's, table by table.",
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['restored', 'snapshot'],
    properties: {
      restored: { type: 'string', format: 'step-id', description: 'The restore-test step.' },
      snapshot: { type: 'string', format: 'step-id', description: 'The snapshot step.' },
      checksums: { type: 'boolean', default: true, description: 'Also compare content checksums where the driver has them.' },
    },
  },
  outputs: { type: 'object', properties: { tables: { type: 'integer' }, rows: { type: 'integer' } } },
  async run(ctx) {
    const restored = ctx.outputsOf(ctx.with.restored) as {
      database: string;
      tables: TableCounts;
      assertions?: { name: string; result: string }[];
      privileges?: string;
    };
    const held = ctx.resource<SnapshotLease>(ctx.with.snapshot).get(restored.database);
    await held?.counted;
    // A snapshot step's outputs, or another source's (a base backup step's) without per-database ones.
    const snap = ctx.outputsOf(ctx.with.snapshot) as {
      databases?: Record<string, { tables?: TableCounts; assertions?: AssertionResult[] }>;
    };
    const expected = held?.info.tables ?? snap.databases?.[restored.database]?.tables;
    if (!expected) throw new IntegrityError(`snapshot step "${ctx.with.snapshot}" has no counts for database "${restored.database}".`);
    const diffs = compareCounts(expected, restored.tables, ctx.with.checksums !== false);
    const rows = Object.values(expected).reduce((n, t) => n + t.rows, 0);
    const ok = diffs.length === 0;
    const detail = ok
      ? `${Object.keys(expected).length} tables, ${rows} rows equal`
      : diffs
          .map(
            (d) =>
              `${d.table}: snapshot ${d.expected ?? 'missing'}, restored ${d.actual ?? 'missing'}${d.checksum ? ' (checksum differs)' : ''}`,
          )
          .join('; ');
    ctx.report.verification({ database: restored.database, step: ctx.id, check: 'rowcount', ok, detail });
    if (!ok) throw new IntegrityError(`restored "${restored.database}" differs from its snapshot: ${detail}`);
    ctx.log.info(`${restored.database}: ${detail}`);
    checkAssertions(ctx, restored.database, snap.databases?.[restored.database]?.assertions ?? [], restored.assertions ?? []);
    if (restored.privileges !== undefined) await checkPrivileges(ctx, restored.database, held, restored.privileges);
    return { outputs: { tables: Object.keys(expected).length, rows } };
  },
});

// Each data assertion: the restored copy's result equal to the snapshot's, or its single value meeting `expect`.
function checkAssertions(
  ctx: StepContext<RowcountWith>,
  database: string,
  taken: readonly AssertionResult[],
  restored: readonly { name: string; result: string }[],
): void {
  if (!taken.length) return;
  const failed: string[] = [];
  for (const [i, a] of taken.entries()) {
    const got = restored[i]?.result;
    const holds = got !== undefined && (a.expect === 'equal' ? got === a.result : meets(got, a.expect));
    if (!holds)
      failed.push(
        `"${a.name}"${a.name === a.query ? '' : ` (${a.query})`}: in the snapshot ${a.result}, restored ${got ?? 'not run'}${a.expect === 'equal' ? '' : `, expected ${a.expect}`}`,
      );
  }
  const ok = failed.length === 0;
  const detail = ok ? `${taken.length} data ${taken.length === 1 ? 'assertion holds' : 'assertions hold'}` : failed.join('; ');
  ctx.report.verification({ database, step: ctx.id, check: 'assert', ok, detail });
  if (!ok)
    throw new IntegrityError(
      `restored "${database}" fails ${failed.length} data ${failed.length === 1 ? 'assertion' : 'assertions'}: ${detail}`,
    );
  ctx.log.info(`${database}: ${detail}`);
}

// The restored copy's owners and privileges (restored with the server's roles) against the source's, read inside the
// same snapshot as the data: what is missing from the copy and what it has in addition, each fact named.
async function checkPrivileges(
  ctx: StepContext<RowcountWith>,
  database: string,
  held: DriverSnapshot | undefined,
  restored: string,
): Promise<void> {
  const { config, driver } = ctx.database(database);
  if (!held?.query || !driver.privilegesQuery)
    throw new DbflowError(`database "${database}": snapshot step "${ctx.with.snapshot}" cannot read its owners and privileges to compare.`);
  const facts = (rows: string): Set<string> => new Set((JSON.parse(rows) as string[][]).map((r) => r.join(' ')));
  const source = facts(await held.query(driver.privilegesQuery(config), 60_000));
  const copy = facts(restored);
  const missing = [...source].filter((f) => !copy.has(f));
  const added = [...copy].filter((f) => !source.has(f));
  const ok = missing.length === 0 && added.length === 0;
  const detail = ok
    ? `${source.size} owners, grants, default privileges and memberships equal`
    : [
        ...(missing.length
          ? [
              `missing from the restored copy: ${missing.slice(0, 10).join('; ')}${missing.length > 10 ? ` (and ${missing.length - 10} more)` : ''}`,
            ]
          : []),
        ...(added.length
          ? [`only in the restored copy: ${added.slice(0, 10).join('; ')}${added.length > 10 ? ` (and ${added.length - 10} more)` : ''}`]
          : []),
      ].join('; ');
  ctx.report.verification({ database, step: ctx.id, check: 'privileges', ok, detail });
  if (!ok) throw new IntegrityError(`restored "${database}" has other owners or privileges than its snapshot: ${detail}`);
  ctx.log.info(`${database}: ${detail}`);
}

// Whether a result of one row and one value meets a condition such as ">= 1" or "= 0".
function meets(result: string, expect: string): boolean {
  const rows = JSON.parse(result) as unknown[][];
  const value = rows.length === 1 && rows[0]!.length === 1 ? Number(rows[0]![0]) : NaN;
  const m = /^(=|!=|<|<=|>|>=) ?(-?[0-9]+(?:\.[0-9]+)?)$/.exec(expect);
  if (!m || Number.isNaN(value)) return false;
  const bound = Number(m[2]);
  switch (m[1]) {
    case '=':
      return value === bound;
    case '!=':
      return value !== bound;
    case '<':
      return value < bound;
    case '<=':
      return value <= bound;
    case '>':
      return value > bound;
    default:
      return value >= bound;
  }
}
