// The postgres driver on the driver conformance suite: a scratch database per test on the shared server, checksums
// on, in both dump formats (custom: one pg_dump stream; directory: parallel jobs streamed as a tar).
import postgres from '../../plugins/postgres/index.js';
import { describeDriver } from '../../src/testing/index.js';
import { requireBackupTools, scratchDatabase } from '../helpers/postgres.js';

const driver = postgres.drivers!.find((d) => d.name === 'postgres')!;

const SEED = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, balance numeric(12,2), profile jsonb);
  CREATE TABLE shop."order items" (id bigserial PRIMARY KEY, customer bigint REFERENCES shop.customers (id) ON DELETE CASCADE, note text, data bytea);
  CREATE TABLE public.empty_table (id int PRIMARY KEY);
  INSERT INTO shop.customers (name, balance, profile) SELECT 'customer ' || i || ' ☃', i * 1.5, jsonb_build_object('i', i) FROM generate_series(1, 500) i;
  INSERT INTO shop."order items" (customer, note, data) SELECT 1 + i % 500, 'item ' || i, decode(md5(i::text), 'hex') FROM generate_series(1, 2000) i;
`;

for (const format of ['custom', 'directory']) {
  describeDriver(`postgres (format: ${format})`, async (t) => {
    if (!(await requireBackupTools(t))) return undefined;
    const db = await scratchDatabase(t);
    let n = 0;
    return {
      driver,
      database: { name: 'app', driver: 'postgres', url: db.url, options: { checksums: true, format } },
      seed: async () => void (await db.pool.query(SEED)),
      write: async () => {
        n++;
        await db.pool.query(`INSERT INTO shop."order items" (customer, note) VALUES (1, 'written after the snapshot ${n}')`);
        await db.pool.query(`DELETE FROM shop.customers WHERE id = ${n + 1}`);
      },
    };
  });
}
