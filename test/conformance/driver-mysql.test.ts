// The mysql driver on the driver conformance suite: a scratch database per test on the shared MariaDB, checksums on.
import mysql from '../../plugins/mysql/index.js';
import { describeDriver } from '../../src/testing/index.js';
import { requireMyBackupTools, scratchDatabase } from '../helpers/mysql.js';

const driver = mysql.drivers!.find((d) => d.name === 'mysql')!;

const SEED = `
  CREATE TABLE customers (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, balance DECIMAL(12,2), profile JSON) ENGINE=InnoDB;
  CREATE TABLE \`order items\` (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer BIGINT, note TEXT, data VARBINARY(64),
    FOREIGN KEY (customer) REFERENCES customers (id) ON DELETE CASCADE) ENGINE=InnoDB;
  CREATE TABLE empty_table (id INT PRIMARY KEY) ENGINE=InnoDB;
`;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describeDriver('mysql (MariaDB)', async (t) => {
  if (!(await requireMyBackupTools(t))) return undefined;
  const db = await scratchDatabase(t);
  let n = 0;
  return {
    driver,
    database: { name: 'app', driver: 'mysql', url: db.url, options: { checksums: true } },
    seed: async () => {
      await db.pool.query(SEED);
      await db.pool.query('INSERT INTO customers (name, balance, profile) VALUES ?', [
        range(500).map((i) => [`customer ${i} ☃`, i * 1.5, JSON.stringify({ i })]),
      ]);
      await db.pool.query('INSERT INTO `order items` (customer, note, data) VALUES ?', [
        range(2000).map((i) => [1 + (i % 500), `item ${i}`, Buffer.from([i % 256, 7])]),
      ]);
    },
    write: async () => {
      n++;
      await db.pool.query(`INSERT INTO \`order items\` (customer, note) VALUES (1, 'written after the snapshot ${n}')`);
      await db.pool.query(`DELETE FROM customers WHERE id = ${n + 1}`);
    },
  };
});
