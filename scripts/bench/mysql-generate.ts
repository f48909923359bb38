// The source database of the MariaDB benchmark: customers / orders / order_items / events (InnoDB)
// with realistic, not trivially compressible rows, generated server-side (INSERT … SELECT … FROM the
// SEQUENCE engine's seq_<a>_to_<b> tables) in batches until data_length + index_length reaches the
// size asked for. Cached between runs as `dbflow_bench_<size>mb`, marked by a database COMMENT
// (MariaDB ≥ 10.5) that records the generator version; the comment is set last, so an interrupted
// build is never taken for a complete one.
import type mysql from 'mysql2/promise';
import {
  myConnect,
  myDatabaseUrl,
  myDropScratch,
  myError,
  myIdent,
  myKeepScratch,
  myRegisterScratch,
  queryRow,
  withMy,
} from './mysql-server.js';
import { MiB } from './util.js';

/** Bump when the schema or the data changes: cached databases of another version are rebuilt. */
export const MY_GENERATOR_VERSION = 2;
const GENERATOR = 'dbflow-bench-mysql';
export const MY_TABLES = ['customers', 'orders', 'order_items', 'events'] as const;

/** Rows per customer of one batch (order_items: 1..5 per order, 3 on average). */
const ORDERS_PER_CUSTOMER = 4;
const EVENTS_PER_CUSTOMER = 10;

const SCHEMA = [
  `CREATE TABLE customers (
  id bigint NOT NULL PRIMARY KEY,
  external_id char(36) CHARACTER SET ascii NOT NULL,
  name varchar(100) NOT NULL,
  email varchar(160) NOT NULL,
  phone varchar(20),
  street varchar(120) NOT NULL,
  city varchar(60) NOT NULL,
  postal_code char(5) NOT NULL,
  country char(2) NOT NULL,
  created_at datetime NOT NULL,
  marketing_opt_in boolean NOT NULL,
  notes text,
  UNIQUE KEY customers_email (email, id)
) ENGINE=InnoDB`,
  `CREATE TABLE orders (
  id bigint NOT NULL PRIMARY KEY,
  customer_id bigint NOT NULL,
  external_id char(36) CHARACTER SET ascii NOT NULL,
  status varchar(12) NOT NULL,
  placed_at datetime(3) NOT NULL,
  shipped_at datetime(3),
  currency char(3) NOT NULL,
  subtotal decimal(12,2) NOT NULL,
  tax decimal(12,2) NOT NULL,
  total decimal(12,2) NOT NULL,
  shipping_address varchar(255) NOT NULL,
  note text,
  KEY orders_customer_id (customer_id),
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB`,
  `CREATE TABLE order_items (
  order_id bigint NOT NULL,
  line int NOT NULL,
  sku varchar(20) NOT NULL,
  description varchar(255) NOT NULL,
  quantity int NOT NULL,
  unit_price decimal(10,2) NOT NULL,
  discount decimal(5,2),
  PRIMARY KEY (order_id, line),
  CONSTRAINT order_items_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE=InnoDB`,
  `CREATE TABLE events (
  id bigint NOT NULL PRIMARY KEY,
  occurred_at datetime(3) NOT NULL,
  kind varchar(16) NOT NULL,
  customer_id bigint,
  order_id bigint,
  session_id char(36) CHARACTER SET ascii NOT NULL,
  payload json NOT NULL,
  user_agent varchar(255),
  KEY events_occurred_at (occurred_at),
  CONSTRAINT events_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT events_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE=InnoDB`,
];

const SYLLABLES = (
  'ka lo mi ren tor sa vel dan mor li an ber cor del en fa gul har is jo kel lum mar nor ol pe qua ri sto tur ' +
  'ul vin wes xa yor zen bri cha dro fle gro ple shi tra ste ath bel cin dor eth fin gal hil ion jas kor lin mel nes'
).split(' ');
const sqlList = (xs: readonly string[]): string => xs.map((x) => `'${x}'`).join(',');
/** One of `xs`, drawn per row and per reference (ELT over constants: no table, no lookup). */
const pick = (xs: readonly string[]): string => `ELT(1 + FLOOR(RAND() * ${xs.length}), ${sqlList(xs)})`;
/** One of `xs`, chosen by a hash of `key`: the same value wherever it is referenced in a row. */
const pickBy = (xs: readonly string[], key: string, salt: string): string =>
  `ELT(1 + CRC32(CONCAT('${salt}', ${key})) % ${xs.length}, ${sqlList(xs)})`;
const SYL = pick(SYLLABLES);
const CAP_SYL = pick(SYLLABLES.map((s) => s[0]!.toUpperCase() + s.slice(1)));
// A random pseudo-word: two or three syllables of 59 (~200,000 words); CW capitalized.
const W = `CONCAT(${SYL}, ${SYL}, IF(RAND() < 0.3, ${SYL}, ''))`;
const CW = `CONCAT(${CAP_SYL}, ${SYL}, IF(RAND() < 0.3, ${SYL}, ''))`;
/** `min..max` random words, how many chosen by a hash of `key` (CONCAT_WS skips the NULLs). */
const phrase = (min: number, max: number, key: string): string => {
  const n = `(${min} + CRC32(CONCAT('n', ${key})) % ${max - min + 1})`;
  const words = Array.from({ length: max }, (_, i) => (i < min ? W : `IF(${n} > ${i}, ${W}, NULL)`));
  return `CONCAT_WS(' ', ${words.join(', ')})`;
};
/** A random value in [0, 1) from a hash of `key`: the same wherever it is referenced in a row. */
const hashUnit = (key: string, salt: string): string => `(CRC32(CONCAT('${salt}', ${key})) / 4294967296)`;

const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'NL', 'ES', 'IT', 'SE', 'PL', 'CA', 'BR', 'JP'];
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
  'okhttp/4.12.0',
];
const STATUSES = [
  ...Array<string>(10).fill('delivered'),
  'shipped',
  'shipped',
  'shipped',
  'paid',
  'paid',
  'pending',
  'pending',
  'cancelled',
  'returned',
  'refunded',
];
const KINDS = [
  'page_view',
  'page_view',
  'page_view',
  'page_view',
  'click',
  'click',
  'search',
  'add_to_cart',
  'checkout',
  'payment',
  'shipment',
  'login',
  'logout',
  'refund',
];

/** A random (version 4) UUID as text: MariaDB 10.11's UUID() is version 1 (time and node: mostly constant). */
const hex = (n: number): string => `LEFT(MD5(RAND()), ${n})`;
const UUID4 = `CONCAT(${hex(8)}, '-', ${hex(4)}, '-4', ${hex(3)}, '-', ${pick(['8', '9', 'a', 'b'])}, ${hex(3)}, '-', ${hex(12)})`;

/** A number table of the SEQUENCE engine, `seq_<a>_to_<b>` (its column: `seq`). */
const seq = (a: number, b: number): string => `seq_${a}_to_${b}`;

function insertCustomers(a: number, b: number): string {
  return `INSERT INTO customers
SELECT s.seq, ${UUID4},
  CONCAT(${CW}, ' ', ${CW}),
  CONCAT(${W}, '.', ${W}, s.seq % 1000, '@', ${W}, ${pick(['.com', '.net', '.org', '.io', '.de', '.fr'])}),
  IF(RAND() < 0.2, NULL, CONCAT('+', 1 + FLOOR(RAND() * 98), ' ', LPAD(FLOOR(RAND() * 1e9), 9, '0'))),
  CONCAT(1 + FLOOR(RAND() * 2000), ' ', ${CW}, ' ', ${pick(['Street', 'Road', 'Avenue', 'Lane', 'Way', 'Place'])}),
  ${CW},
  LPAD(FLOOR(RAND() * 100000), 5, '0'),
  ${pick(COUNTRIES)},
  TIMESTAMP '2019-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 157680000) SECOND,
  RAND() < 0.4,
  IF(RAND() < 0.7, NULL, ${phrase(5, 24, 's.seq')})
FROM ${seq(a, b)} s`;
}

// Orders a..b, of customers c1..c2.
function insertOrders(a: number, b: number, c1: number, c2: number): string {
  const status = pickBy(STATUSES, 's.seq', 'st');
  const placed = `(TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (s.seq * 50000 + FLOOR(${hashUnit('s.seq', 'pl')} * 50000)) * 1000 MICROSECOND)`;
  const subtotal = `ROUND((2 + ${hashUnit('s.seq', 'a')} * ${hashUnit('s.seq', 'b')} * 900) * (1 + s.seq % 2), 2)`;
  return `INSERT INTO orders
SELECT s.seq, ${c1} + FLOOR(RAND() * ${c2 - c1 + 1}), ${UUID4},
  ${status}, ${placed},
  IF(${status} IN ('shipped', 'delivered', 'returned'), ${placed} + INTERVAL FLOOR(RAND() * 518400000) * 1000 MICROSECOND, NULL),
  ${pick(['EUR', 'EUR', 'EUR', 'USD', 'USD', 'GBP', 'SEK', 'PLN'])},
  ${subtotal}, ROUND(${subtotal} * 0.19, 2), ${subtotal} + ROUND(${subtotal} * 0.19, 2),
  CONCAT(1 + FLOOR(RAND() * 2000), ' ', ${CW}, ' ', ${pick(['Street', 'Road', 'Avenue', 'Lane'])}, ', ',
    LPAD(FLOOR(RAND() * 100000), 5, '0'), ' ', ${CW}, ', ', ${pick(COUNTRIES)}),
  IF(RAND() < 0.85, NULL, ${phrase(3, 12, 's.seq')})
FROM ${seq(a, b)} s`;
}

// The items of orders a..b: 1..5 lines each.
function insertItems(a: number, b: number): string {
  return `INSERT INTO order_items
SELECT o.seq, l.seq,
  CONCAT('SKU-', LPAD(FLOOR(RAND() * 250000), 6, '0'), '-', ${pick(['S', 'M', 'L', 'XL', 'NA'])}),
  CONCAT(${CW}, ' ', ${phrase(1, 6, 'o.seq + l.seq')}),
  1 + FLOOR(RAND() * RAND() * 12),
  ROUND(0.5 + RAND() * RAND() * 400, 2),
  IF(RAND() < 0.8, NULL, ROUND(RAND() * 40, 2))
FROM ${seq(a, b)} o JOIN seq_1_to_5 l ON l.seq <= 1 + (o.seq * 7919) % 5`;
}

// Events a..b; customers 1..customers exist (or will, by the end of the batch); orders o1..o2 are this batch's.
function insertEvents(a: number, b: number, customers: number, o1: number, o2: number): string {
  const kind = pickBy(KINDS, 's.seq', 'k');
  return `INSERT INTO events
SELECT s.seq, TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (s.seq * 20000 + FLOOR(RAND() * 20000)) * 1000 MICROSECOND, ${kind},
  IF(RAND() < 0.15, NULL, 1 + FLOOR(RAND() * ${customers})),
  IF(${kind} IN ('checkout', 'payment', 'shipment', 'refund'), ${o1} + FLOOR(RAND() * ${o2 - o1 + 1}), NULL),
  ${UUID4},
  JSON_OBJECT(
    'path', CONCAT('/', ${W}, '/', ${W}),
    'referrer', IF(RAND() < 0.5, NULL, CONCAT('https://', ${W}, '.example/', ${W}, '?q=', ${W})),
    'duration_ms', FLOOR(RAND() * RAND() * 20000),
    'viewport', JSON_OBJECT('w', ${pick(['1280', '1366', '1440', '1920', '390', '414'])} + 0, 'h', ${pick(['720', '768', '900', '1080', '844', '896'])} + 0),
    'tags', JSON_ARRAY(${W}, ${W}, ${W}),
    'amount', IF(${kind} IN ('checkout', 'payment', 'refund'), ROUND(RAND() * 900, 2), NULL),
    'search', IF(${kind} = 'search', ${phrase(1, 5, 's.seq')}, NULL),
    'experiment', JSON_OBJECT('id', CONCAT('exp-', s.seq % 37), 'variant', ${pick(['control', 'a', 'b'])}),
    'consent', JSON_EXTRACT('[true, false]', IF(RAND() < 0.8, '$[0]', '$[1]'))),
  IF(RAND() < 0.1, NULL, ${pick(USER_AGENTS)})
FROM ${seq(a, b)} s`;
}

interface Marker {
  generator: string;
  version: number;
  sizeMiB: number;
  bytes: number;
  rows: Record<string, number>;
  builtAt: string;
  buildSeconds: number;
}

export interface MySourceDatabase {
  name: string;
  url: string;
  /** data_length + index_length of its tables (information_schema, after ANALYZE TABLE). */
  bytes: number;
  rows: Record<string, number>;
  /** Set when it was generated by this run. */
  builtMs?: number;
  /** When it was built (from its marker). */
  builtAt: string;
}

/** The cached database's name for a size: `dbflow_bench_<size>mb`. */
export const myBenchDatabaseName = (sizeMiB: number): string => `dbflow_bench_${sizeMiB}mb`;

async function readMarker(name: string): Promise<{ marker?: Marker; exists: boolean }> {
  const row = await withMy((c) =>
    queryRow<{ c: string } | undefined>(c, 'SELECT SCHEMA_COMMENT AS c FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [name]),
  );
  if (!row) return { exists: false };
  try {
    const m = JSON.parse(row.c) as Partial<Marker>;
    return m.generator === GENERATOR ? { marker: m as Marker, exists: true } : { exists: true };
  } catch {
    return { exists: true };
  }
}

/** data_length + index_length of the database's tables, with fresh statistics. */
async function sizeOf(c: mysql.Connection, name: string): Promise<number> {
  await c.query(`ANALYZE TABLE ${MY_TABLES.map((t) => `${myIdent(name)}.${myIdent(t)}`).join(', ')}`);
  const r = await queryRow<{ s: string | null }>(
    c,
    'SELECT SUM(DATA_LENGTH + INDEX_LENGTH) AS s FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
    [name],
  );
  return Number(r.s ?? 0);
}

/** Row counts by full scans (which also bring the tables into the buffer pool as far as it holds them). */
export async function myCountRows(url: string, tables: readonly string[]): Promise<Record<string, number>> {
  return withMy(async (c) => {
    const counts: Record<string, number> = {};
    for (const t of tables) counts[t] = Number((await queryRow<{ n: string }>(c, `SELECT COUNT(*) AS n FROM ${myIdent(t)}`)).n);
    return counts;
  }, url);
}

/** Generates into `name` (which exists and is empty) until it holds `sizeMiB` MiB. */
async function generate(name: string, sizeMiB: number, log: (s: string) => void): Promise<Record<string, number>> {
  const url = myDatabaseUrl(name);
  const want = sizeMiB * MiB;
  // Two connections: events on one, customers → orders → order_items on the other.
  const [a, b] = await Promise.all([myConnect(url), myConnect(url)]);
  try {
    for (const s of SCHEMA) await a.query(s);
    // Foreign keys are declared, not checked row by row while loading (every referenced row exists at the end).
    const setup = 'SET SESSION foreign_key_checks = 0, unique_checks = 0';
    await Promise.all([a.query(setup), b.query(setup)]);
    let customers = 0;
    let orders = 0;
    let events = 0;
    let items = 0;
    const t0 = performance.now();
    let perCustomer = 0;
    let size = await sizeOf(a, name);
    const base = size;
    const batchBytes = Math.max(16 * MiB, want / 12);
    while (size < want) {
      // The first batch calibrates bytes per customer; the next ones aim at ~1/12 of the size each.
      const c = perCustomer ? Math.max(500, Math.ceil(Math.min(batchBytes, (want - size) * 1.02) / perCustomer)) : 1000;
      const o = c * ORDERS_PER_CUSTOMER;
      const e = c * EVENTS_PER_CUSTOMER;
      const [c1, o1, e1] = [customers + 1, orders + 1, events + 1];
      await Promise.all([
        a.query(insertEvents(e1, events + e, customers + c, o1, orders + o)),
        (async () => {
          await b.query(insertCustomers(c1, customers + c));
          await b.query(insertOrders(o1, orders + o, c1, customers + c));
          const [r] = await b.query<mysql.ResultSetHeader>(insertItems(o1, orders + o));
          items += r.affectedRows;
        })(),
      ]);
      customers += c;
      orders += o;
      events += e;
      size = await sizeOf(a, name);
      perCustomer = (size - base) / customers;
      const s = (performance.now() - t0) / 1000;
      const done = Math.min(1, size / want);
      log(
        `  generating ${name}: ${(size / MiB).toFixed(0)}/${sizeMiB} MiB (${(done * 100).toFixed(0)}%), ${customers} customers, ${s.toFixed(0)} s${done < 1 && done > 0 ? `, ~${((s / done) * (1 - done)).toFixed(0)} s to go` : ''}`,
      );
    }
    return { customers, orders, order_items: items, events };
  } finally {
    await Promise.all([a.end().catch(() => a.destroy()), b.end().catch(() => b.destroy())]);
  }
}

/**
 * The cached bench database of `sizeMiB` MiB: reused when its marker is current and its row counts
 * match the marker (counted by full scans), else dropped and rebuilt; the marker is written last.
 */
export async function myBenchDatabase(sizeMiB: number, o: { rebuild: boolean; log: (s: string) => void }): Promise<MySourceDatabase> {
  const name = myBenchDatabaseName(sizeMiB);
  const url = myDatabaseUrl(name);
  let building = false;
  try {
    const { marker, exists } = await readMarker(name);
    let why = o.rebuild ? 'BENCH_MYSQL_REBUILD=1' : !exists ? 'not there yet' : !marker ? 'no generator marker' : '';
    if (!why && marker!.version !== MY_GENERATOR_VERSION) why = `generator version ${marker!.version}, now ${MY_GENERATOR_VERSION}`;
    if (!why && marker!.bytes < sizeMiB * MiB) why = `${(marker!.bytes / MiB).toFixed(0)} MiB is short of ${sizeMiB} MiB`;
    if (!why) {
      const t0 = performance.now();
      const rows = await myCountRows(url, MY_TABLES);
      const changed = MY_TABLES.filter((t) => rows[t] !== marker!.rows[t]);
      if (!changed.length) {
        const bytes = await withMy((c) => sizeOf(c, name));
        o.log(
          `  cached ${name} (${(bytes / MiB).toFixed(0)} MiB, generator v${marker!.version}, built ${marker!.builtAt}); counted in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        return { name, url, bytes, rows, builtAt: marker!.builtAt };
      }
      why = `row counts of ${changed.join(', ')} differ from its marker`;
    }
    o.log(`  building ${name} (${why}) …`);
    // Built under its own name: until the marker is set it is a scratch database (dropped on SIGINT or failure).
    myRegisterScratch(name);
    building = true;
    const t0 = performance.now();
    await withMy(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${myIdent(name)}`);
      await c.query(`CREATE DATABASE ${myIdent(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    });
    const rows = await generate(name, sizeMiB, o.log);
    const bytes = await withMy((c) => sizeOf(c, name));
    const builtMs = performance.now() - t0;
    const m: Marker = {
      generator: GENERATOR,
      version: MY_GENERATOR_VERSION,
      sizeMiB,
      bytes,
      rows,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round(builtMs / 1000),
    };
    // Set last: a database without it is rebuilt.
    await withMy((c) => c.query(`ALTER DATABASE ${myIdent(name)} COMMENT = ${c.escape(JSON.stringify(m))}`));
    myKeepScratch(name);
    building = false;
    o.log(
      `  built ${name}: ${(bytes / MiB).toFixed(0)} MiB, ${Object.entries(rows)
        .map(([t, n]) => `${n} ${t}`)
        .join(', ')} in ${(builtMs / 1000).toFixed(1)} s`,
    );
    return { name, url, bytes, rows, builtMs, builtAt: m.builtAt };
  } catch (err) {
    if (building) await myDropScratch(name).catch(() => undefined);
    throw myError(`building the ${sizeMiB} MiB MariaDB bench database`, err);
  }
}
