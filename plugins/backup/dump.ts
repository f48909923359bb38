// The `dump` step: a stream of one database's dump, read from the snapshot step's lease.
import { DbflowError, defineStep } from '../../src/plugin-api.js';
import type { SnapshotLease } from './snapshot.js';

interface DumpWith {
  database: string;
  snapshot: string;
}

export const dumpStep = defineStep<DumpWith>({
  uses: 'dump',
  kind: 'source',
  description: "Stream a database's dump, reading exactly the snapshot taken by a snapshot step.",
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['database', 'snapshot'],
    properties: {
      database: { type: 'string', description: 'A name from databases:.' },
      snapshot: { type: 'string', format: 'step-id', description: 'The snapshot step to read from.' },
    },
  },
  outputs: {
    type: 'object',
    properties: { database: { type: 'string' }, format: { type: 'string' }, extension: { type: 'string' } },
  },
  async run(ctx) {
    const { database, snapshot } = ctx.with;
    const snap = ctx.resource<SnapshotLease>(snapshot).get(database);
    if (!snap) throw new DbflowError(`snapshot step "${snapshot}" did not snapshot database "${database}"; add it to its "databases".`);
    const { config, driver } = ctx.database(database);
    const dump = await driver.dump(ctx, { db: config, snapshot: snap });
    // Counts taken alongside the dump must be complete (and correct) for the dump to count.
    const checks = [snap.counted, dump.final].filter((p) => p !== undefined);
    const final = checks.length ? Promise.all(checks).then(() => ({})) : undefined;
    return { output: dump.stream, outputs: { database, format: dump.format, extension: dump.extension }, ...(final && { final }) };
  },
});
