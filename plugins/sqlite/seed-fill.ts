// Fills a database with demo customers, orders and order items, in large transactions.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { Random, customerRow, itemRow, orderRow } from './seed-data.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, country TEXT NOT NULL,
  phone TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
  id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), status TEXT NOT NULL,
  placed_at TEXT NOT NULL, currency TEXT NOT NULL, total_cents INTEGER NOT NULL, shipping_address TEXT NOT NULL, note TEXT);
CREATE TABLE IF NOT EXISTS order_items (
  id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), sku TEXT NOT NULL, product TEXT NOT NULL,
  quantity INTEGER NOT NULL, unit_price_cents INTEGER NOT NULL, discount REAL NOT NULL);`;

const INDEXES = `
CREATE INDEX IF NOT EXISTS orders_customer_id ON orders(customer_id);
CREATE INDEX IF NOT EXISTS order_items_order_id ON order_items(order_id);`;

// Orders per transaction: big enough to be fast, small enough to keep the event loop turning.
const ORDERS_PER_BATCH = 5000;

/** How many rows of each table a fill inserted. */
export interface FillResult {
  customers: number;
  orders: number;
  items: number;
}

/** Inserts `orders` orders (1–5 items each, ~3 on average) and one customer per 8 orders. */
export async function fillDemo(db: Database.Database, orders: number, signal: AbortSignal): Promise<FillResult> {
  db.exec(SCHEMA);
  const maxId = (table: string): number => Number(db.prepare(`SELECT coalesce(max(id), 0) FROM ${table}`).pluck().get());
  const base = { customer: maxId('customers'), order: maxId('orders'), item: maxId('order_items') };
  const r = new Random(0x5eed ^ base.order);
  const insertCustomer = db.prepare('INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)');
  const insertOrder = db.prepare('INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  const insertItem = db.prepare('INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?, ?)');
  const customers = Math.max(1, Math.ceil(orders / 8));
  let items = 0;

  const addCustomers = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) insertCustomer.run(customerRow(r, base.customer + i + 1));
  });
  const addOrders = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const orderId = base.order + i + 1;
      const lines = Array.from({ length: r.int(1, 5) }, () => itemRow(r, base.item + ++items, orderId));
      const total = lines.reduce((sum, l) => sum + Math.round((l[4] as number) * (l[5] as number) * (1 - (l[6] as number) / 100)), 0);
      insertOrder.run(orderRow(r, orderId, base.customer + r.int(1, customers), total));
      for (const line of lines) insertItem.run(line);
    }
  });
  for (let from = 0; from < customers; from += ORDERS_PER_BATCH * 4) {
    addCustomers(from, Math.min(customers, from + ORDERS_PER_BATCH * 4));
    await yieldToLoop();
    signal.throwIfAborted();
  }
  for (let from = 0; from < orders; from += ORDERS_PER_BATCH) {
    addOrders(from, Math.min(orders, from + ORDERS_PER_BATCH));
    await yieldToLoop();
    signal.throwIfAborted();
  }
  db.exec(INDEXES);
  return { customers, orders, items };
}
