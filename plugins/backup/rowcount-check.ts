// The `rowcount-check` step: restored row counts must equal those taken inside the snapshot.
import { compareCounts, defineStep, IntegrityError, type TableCounts } from '../../src/plugin-api.js';
import type { SnapshotLease } from './snapshot.js';

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
    const restored = ctx.outputsOf(ctx.with.restored) as { database: string; tables: TableCounts };
    const held = ctx.resource<SnapshotLease>(ctx.with.snapshot).get(restored.database);
    await held?.counted;
    const snap = ctx.outputsOf(ctx.with.snapshot) as { databases: Record<string, { tables?: TableCounts }> };
    const expected = held?.info.tables ?? snap.databases[restored.database]?.tables;
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
    return { outputs: { tables: Object.keys(expected).length, rows } };
  },
});
