// Data for the MariaDB tests: a seeded shop database, and a writer that keeps changing it.
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { connectionOptions } from './mysql.js';

/** Every customer starts with this balance; the writer's transfers keep the total. */
export const START_BALANCE = 1000;

/** What `seedShop` created. */
export interface Shop {
  customers: number;
  orders: number;
  /** The tables it made (the manifest's keys). */
  tables: string[];
}

const SHOP = `
CREATE TABLE customers (
  id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(200) NOT NULL, email varchar(200), balance decimal(14,2) NOT NULL,
  score double, created_at datetime(6) NOT NULL, profile json, avatar varbinary(32)
) ENGINE=InnoDB;
CREATE TABLE orders (
  id int AUTO_INCREMENT PRIMARY KEY, customer_id bigint NOT NULL, placed_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  status enum('new','paid','shipped','returned','live') NOT NULL, total decimal(14,2) NOT NULL, item_count int NOT NULL, meta json,
  FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE order_items (
  id bigint AUTO_INCREMENT PRIMARY KEY, order_id int NOT NULL, sku varchar(40) NOT NULL, qty int NOT NULL, unit_price decimal(12,2) NOT NULL, weight float,
  KEY (order_id), FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE audit_events (id bigint AUTO_INCREMENT PRIMARY KEY, at datetime NOT NULL, kind varchar(40) NOT NULL, payload json, raw blob) ENGINE=InnoDB;
`;

const fill = (customers: number, orders: number): string => `
SET SESSION max_recursive_iterations = 10000000;
INSERT INTO customers (name, email, balance, score, created_at, profile, avatar)
  WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${customers})
  SELECT CONCAT('Customer ', i, IF(i % 7 = 0, ' ☃ "quoted" o''neil', '')), IF(i % 5 = 0, NULL, CONCAT('c', i, '@example.com')),
         ${START_BALANCE}, i * 0.731 / 3, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL i * 2233 SECOND,
         JSON_OBJECT('tier', i % 4, 'tags', JSON_ARRAY('a', i % 3)), UNHEX(MD5(i)) FROM s;
INSERT INTO orders (customer_id, placed_at, status, total, item_count, meta)
  WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${orders})
  SELECT 1 + i % ${customers}, TIMESTAMP '2024-03-01 12:00:00' + INTERVAL i * 61 SECOND, ELT(1 + i % 4, 'new', 'paid', 'shipped', 'returned'),
         (i % 1000) * 1.37, 1 + i % 3, IF(i % 3 = 0, NULL, JSON_OBJECT('channel', ELT(1 + i % 3, 'web', 'app', 'phone'))) FROM s;
INSERT INTO order_items (order_id, sku, qty, unit_price, weight)
  SELECT o.id, CONCAT('SKU-', (o.id * 31 + k.k) % 5000), 1 + (o.id + k.k) % 5, 0.5 + ((o.id * k.k) % 400) * 0.25, (o.id % 17) / 7.0
  FROM orders o JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) k ON k.k <= o.item_count;
INSERT INTO audit_events (at, kind, payload, raw)
  WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${Math.ceil(orders / 2)})
  SELECT TIMESTAMP '2024-03-01 00:00:00' + INTERVAL i SECOND, CONCAT('seed-', i % 5), IF(i % 4 = 0, NULL, JSON_OBJECT('i', i)),
         IF(i % 2 = 0, NULL, CONCAT(X'00FF', UNHEX(LPAD(HEX(i), 8, '0')))) FROM s;
`;

const EDGE_CASES = `
CREATE TABLE \`Mixed Case Table\` (\`Id\` int PRIMARY KEY, \`Value\` text) ENGINE=InnoDB;
INSERT INTO \`Mixed Case Table\` VALUES (1, 'v1'), (2, 'v2'), (3, NULL);
CREATE TABLE empty_table (id int PRIMARY KEY, note text) ENGINE=InnoDB;
CREATE TABLE odd_values (
  id int PRIMARY KEY, f float, d double, n decimal(40,20), t longtext, b longblob, ts timestamp(6) NULL, dt datetime, dd date, tm time(3),
  y year, bits bit(10), e enum('a','b'), st set('x','y','z'), j json, u bigint unsigned, g varchar(10) AS (LEFT(t, 3)) VIRTUAL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO odd_values (id, f, d, n, t, b, ts, dt, dd, tm, y, bits, e, st, j, u) VALUES
  (1, 0.1, 0.1, 0.1, '', X'', '1970-01-01 00:00:01', '1000-01-01 00:00:00', '1000-01-01', '-838:59:59', 1901, b'0', 'a', '', '{}', 0),
  (2, 1.17549435e-38, 2.2250738585072014e-308, -12345678901234567890.12345678901234567890, 'line1\\nline2\\ttab \\\\ back', X'0000000000', '2038-01-19 03:14:07.999999', '9999-12-31 23:59:59', '9999-12-31', '838:59:59.999', 2155, b'1111111111', 'b', 'x,z', '{"ü": "😀", "n": null}', 18446744073709551615),
  (3, -0.0, 0.30000000000000004, 0, 'it''s "quoted" ☃ 😀', UNHEX(REPEAT('ab', 3000)), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 3.4028234e38, 1e308, 99999999999999999999.99999999999999999999, REPEAT('x', 70000), X'DEADBEEF00', '2024-02-29 23:59:59.5', '2024-02-29 12:00:00', '2024-02-29', '00:00:00', 2000, b'101', NULL, 'y', '[1, 2.50, "x"]', 42);
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW SET @dbflow_last_customer = NEW.id;
CREATE FUNCTION order_total(o int) RETURNS decimal(14,2) READS SQL DATA RETURN (SELECT SUM(qty * unit_price) FROM order_items WHERE order_id = o);
CREATE EVENT nightly_noop ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;
CREATE VIEW paid_orders AS SELECT id, total FROM orders WHERE status = 'paid';
`;

/** The shop tables with `rows` orders (customers a tenth, items about twice, audit events half); `edgeCases` adds awkward tables, values, a trigger, a function, an event and a view. */
export async function seedShop(db: mysql.Pool, options: { rows: number; edgeCases?: boolean }): Promise<Shop> {
  const orders = options.rows;
  const customers = Math.max(1, Math.ceil(orders / 10));
  await db.query(SHOP);
  await db.query(fill(customers, orders));
  const tables = ['audit_events', 'customers', 'order_items', 'orders'];
  if (options.edgeCases) {
    await db.query(EDGE_CASES);
    tables.push('Mixed Case Table', 'empty_table', 'odd_values');
  }
  return { customers, orders, tables: tables.sort() };
}

/** `COUNT(*)` of each table. */
export async function countRows(db: mysql.Pool | mysql.Connection, tables: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of tables) {
    const [rows] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${table.replace(/`/g, '``')}\``);
    out[table] = Number(rows[0]!.n);
  }
  return out;
}

/** What the writer keeps true: the balance total, and each order's item count. */
export async function shopInvariants(
  db: mysql.Pool | mysql.Connection,
  customers: number,
): Promise<{ balanceTotal: number; expectedTotal: number; badOrders: number }> {
  const [[sum]] = await db.query<mysql.RowDataPacket[]>('SELECT SUM(balance) AS total FROM customers');
  const [[bad]] = await db.query<mysql.RowDataPacket[]>(
    'SELECT COUNT(*) AS n FROM orders o WHERE o.item_count <> (SELECT COUNT(*) FROM order_items i WHERE i.order_id = o.id)',
  );
  return { balanceTotal: Number(sum!.total), expectedTotal: customers * START_BALANCE, badOrders: Number(bad!.n) };
}

/** A connection writing to the shop in a loop until stopped. */
export interface Writer {
  commits(): number;
  /** Resolves once at least `n` transactions committed in total. */
  committed(n: number, timeoutMs?: number): Promise<void>;
  /** Stops the writer; resolves with the number of commits, rejects if it had failed. */
  stop(): Promise<number>;
}

// One transaction: an order with its items, a transfer between two customers, sometimes an update and the deletion of the oldest order.
function transaction(n: number, customers: number): string {
  const k = 1 + (n % 3);
  const from = 1 + ((n * 7) % customers);
  const to = 1 + ((n * 13 + 5) % customers);
  const amount = (1 + (n % 17)) / 4;
  return `START TRANSACTION;
INSERT INTO orders (customer_id, status, total, item_count, meta) VALUES (${from}, 'live', ${amount}, ${k}, '{"writer": ${n}}');
SET @o = LAST_INSERT_ID();
INSERT INTO order_items (order_id, sku, qty, unit_price, weight) SELECT @o, CONCAT('LIVE-', g), g, 9.99, g * 0.25 FROM (SELECT 1 AS g UNION ALL SELECT 2 UNION ALL SELECT 3) s WHERE g <= ${k};
UPDATE customers SET balance = balance - ${amount} WHERE id = ${from};
UPDATE customers SET balance = balance + ${amount} WHERE id = ${to};
${n % 3 === 0 ? "UPDATE orders SET status = 'paid' WHERE id = @o - 3;" : ''}
${n % 2 === 0 ? 'DELETE FROM orders ORDER BY id LIMIT 1;' : ''}
INSERT INTO audit_events (at, kind, payload) VALUES (NOW(), 'writer', '{"n": ${n}}');
COMMIT;`;
}

/** Starts a writer on the shop at `url`; it stops by itself after `maxMs` (default 90 s), and after the test at the latest. */
export async function startWriter(
  t: Pick<TestContext, 'after'>,
  url: string,
  options: { customers: number; pauseMs?: number; maxMs?: number },
): Promise<Writer> {
  const client = await mysql.createConnection(connectionOptions(url));
  client.on('error', () => undefined);
  let count = 0;
  let stopping = false;
  let failure: Error | undefined;
  const deadline = setTimeout(() => (stopping = true), options.maxMs ?? 90_000);
  deadline.unref();
  const loop = (async () => {
    try {
      while (!stopping) {
        await client.query(transaction(count + 1, options.customers));
        count++;
        await sleep(options.pauseMs ?? 2);
      }
    } catch (err) {
      if (!stopping) failure = new Error(`the writer failed after ${count} transactions: ${(err as Error).message}`);
    } finally {
      stopping = true;
      clearTimeout(deadline);
      await client.end().catch(() => client.destroy());
    }
  })();
  const stop = async (): Promise<number> => {
    stopping = true;
    await loop;
    if (failure) throw failure;
    return count;
  };
  t.after(() => stop().catch(() => undefined));
  return {
    commits: () => count,
    async committed(n, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      while (count < n) {
        if (failure) throw failure;
        if (stopping) throw new Error(`the writer stopped after ${count} transactions, before ${n}`);
        if (Date.now() > until) throw new Error(`the writer committed ${count} transactions in ${timeoutMs} ms, not ${n}`);
        await sleep(10);
      }
    },
    stop,
  };
}
