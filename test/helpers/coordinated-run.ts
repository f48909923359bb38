// Coordinated snapshots through the CLI: three seeded databases (PostgreSQL db1, MariaDB mq, PostgreSQL db2), the pipeline over them, what the manifest says.
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { CoordinationRecord, Manifest } from '../../src/index.js';
import { ITEMS_MY, ITEMS_PG, type CausalTargets } from './causal-writer.js';
import { connectionOptions, scratchDatabase as myScratchDatabase, type ScratchDatabase as MyScratch } from './mysql.js';
import { seedShop as mySeedShop } from './mysql-data.js';
import { scratchDatabase as pgScratchDatabase, type ScratchDatabase as PgScratch } from './postgres.js';
import { seedShop as pgSeedShop } from './postgres-data.js';

/** The participants, in the writer's order. */
export const PARTICIPANTS = ['db1', 'mq', 'db2'] as const;
export type Participant = (typeof PARTICIPANTS)[number];

/** The three scratch databases of a test, each with a small shop and an empty `items` table. */
export interface CausalDatabases {
  db1: PgScratch;
  mq: MyScratch;
  db2: PgScratch;
  /** Where a causal writer writes. */
  targets: CausalTargets;
}

/** Creates and seeds the three databases (dropped after the test). */
export async function causalDatabases(t: Pick<TestContext, 'after'>, rows = 300): Promise<CausalDatabases> {
  const [db1, mq, db2] = await Promise.all([pgScratchDatabase(t), myScratchDatabase(t), pgScratchDatabase(t)]);
  await Promise.all([
    pgSeedShop(db1.pool, { rows }).then(() => db1.pool.query(ITEMS_PG)),
    mySeedShop(mq.pool, { rows }).then(() => mq.pool.query(ITEMS_MY)),
    pgSeedShop(db2.pool, { rows }).then(() => db2.pool.query(ITEMS_PG)),
  ]);
  return { db1, mq, db2, targets: { db1: db1.url, mq: connectionOptions(mq.url), db2: db2.url } };
}

export interface CoordinatedPipelineOptions {
  urls: Record<Participant, string>;
  /** `with.coordinated` of the snapshot step (left out: the default). */
  coordinated?: boolean;
  /** `with.barrier_timeout`, e.g. `2s` (left out: the default). */
  barrierTimeout?: string;
  /** `with.lock_timeout`: how long one try waits for its locks before it lets go of every barrier and tries again (left out: the default). */
  lockTimeout?: string;
  /** The order of `with.databases` (default db1, mq, db2). */
  order?: readonly Participant[];
}

/** The YAML of a backup of db1, mq and db2 from one snapshot step: dump → zstd → OpenPGP → file → restore-test (target: scratch, the scratch database these tests follow; the throwaway default has its own tests) → rowcount-check, as a matrix. */
export function coordinatedPipeline(o: CoordinatedPipelineOptions): string {
  const list = `[${(o.order ?? PARTICIPANTS).join(', ')}]`;
  const matrix = `matrix: { db: [${PARTICIPANTS.join(', ')}] }`;
  const snapshotWith = [
    `databases: ${list}`,
    ...(o.coordinated !== undefined ? [`coordinated: ${o.coordinated}`] : []),
    ...(o.barrierTimeout !== undefined ? [`barrier_timeout: ${o.barrierTimeout}`] : []),
    ...(o.lockTimeout !== undefined ? [`lock_timeout: ${o.lockTimeout}`] : []),
  ].join(', ');
  return `version: 1
name: crossdb
timeout: 3m
secrets:
  passphrase: { env: TEST_PASSPHRASE }
databases:
  db1: ${JSON.stringify({ driver: 'postgres', url: o.urls.db1 })}
  mq: ${JSON.stringify({ driver: 'mysql', url: o.urls.mq })}
  db2: ${JSON.stringify({ driver: 'postgres', url: o.urls.db2 })}
steps:
  - { id: snapshot, uses: snapshot, with: { ${snapshotWith} } }
  - { id: dump, ${matrix}, uses: dump, with: { database: "{{ matrix.db }}", snapshot: snapshot } }
  - { id: compress, ${matrix}, uses: compress, input: dump, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, ${matrix}, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, ${matrix}, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/{{ matrix.db }}.dump.zst.pgp" } }
  - { id: restore_test, ${matrix}, uses: restore-test, with: { from: upload, target: scratch, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, ${matrix}, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

/** The URLs of the three databases, for `coordinatedPipeline`. */
export function urlsOf(dbs: CausalDatabases): Record<Participant, string> {
  return { db1: dbs.db1.url, mq: dbs.mq.url, db2: dbs.db2.url };
}

/** An entry of the manifest's `coordination`. */
export type Coordination = CoordinationRecord;

/** The manifest's `coordination` array (empty when it has none). */
export function coordinationOf(m: Manifest): Coordination[] {
  return m.coordination ?? [];
}

/** The stored artifact of `db` in a run in `cwd`. */
export function artifactOf(cwd: string, m: Manifest, db: string): string {
  const a = m.artifacts.find((x) => x.database === db);
  if (!a)
    throw new Error(`the manifest of run ${m.run.id} has no artifact of "${db}": ${JSON.stringify(m.artifacts.map((x) => x.database))}`);
  return path.join(cwd, 'backups', m.run.id, a.path);
}

/** The `items` row count the snapshot of `db` took (its manifest entry). */
export function itemsCounted(m: Manifest, db: Participant): number {
  const tables = m.databases[db]?.tables ?? {};
  const count = tables[db === 'mq' ? 'items' : 'public.items']?.rows;
  if (count === undefined) throw new Error(`the manifest has no items count of "${db}": ${JSON.stringify(Object.keys(tables))}`);
  return count;
}
