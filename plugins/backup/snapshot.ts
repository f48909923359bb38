// The `snapshot` step: one consistent snapshot per database, held as a lease for the dumps.
import { defineStep, type DriverSnapshot, type TableCounts } from '../../src/index.js';

interface SnapshotWith {
  databases: string[];
}

/** Open snapshots by database name: what `dump` and `rowcount-check` read. */
export type SnapshotLease = Map<string, DriverSnapshot>;

export const snapshotStep = defineStep<SnapshotWith, { databases: Record<string, { tables?: TableCounts; position: Record<string, unknown> }> }>({
  uses: 'snapshot',
  kind: 'task',
  description: 'Open a consistent snapshot of each database and count rows inside it; held until the dumps finish.',
  with: {
    type: 'object',
    additionalProperties: false,
    required: ['databases'],
    properties: { databases: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string' } } },
  },
  outputs: {
    type: 'object',
    properties: { databases: { type: 'object', description: 'Per database: position, and tables (row counts) where they were taken before the step ended.' } },
  },
  async run(ctx) {
    const held: SnapshotLease = new Map();
    const release = async (): Promise<void> => {
      for (const s of held.values()) await s.release();
    };
    try {
      for (const name of ctx.with.databases) {
        const { config, driver } = ctx.database(name);
        const snap = await driver.snapshot(ctx, config);
        held.set(name, snap);
        // A driver that counts while the dumps run reports its counts once they are complete.
        const counted = (): void => {
          ctx.report.database(name, snap.info);
          const rows = Object.values(snap.info.tables).reduce((n, t) => n + t.rows, 0);
          ctx.log.info(`${name}: snapshot of ${Object.keys(snap.info.tables).length} tables, ${rows} rows`);
        };
        if (snap.counted) snap.counted.then(counted, () => undefined);
        else counted();
      }
    } catch (err) {
      await release();
      throw err;
    }
    ctx.lease(held, release);
    // Counts still being taken are not outputs: rowcount-check reads them from the held snapshot.
    const databases = Object.fromEntries(
      [...held].map(([n, s]) => [n, { position: s.info.position, ...(!s.counted && { tables: s.info.tables }) }]),
    );
    return { outputs: { databases } };
  },
});
