// The source database of the PostgreSQL benchmark: customers / orders / order_items / events with
// realistic, not trivially compressible rows, generated server-side (INSERT … SELECT … FROM
// generate_series) in batches until pg_database_size reaches the size asked for. Cached between
// runs as `dbflow_bench_<size>mb`, marked by a database comment that records the generator version.
import pg from 'pg';
import { countRows, databaseUrl, dropScratch, ident, keepScratch, pgError, registerScratch, withClient } from './pg-server.js';
import { MiB } from './util.js';

/** Bump when the schema or the data changes: cached databases of another version are rebuilt. */
export const GENERATOR_VERSION = 1;
const GENERATOR = 'dbflow-bench-pg';
export const PG_TABLES = ['customers', 'orders', 'order_items', 'events'] as const;

/** Rows per customer of one batch (order_items: 1..5 per order, 3 on average). */
const ORDERS_PER_CUSTOMER = 4;
const EVENTS_PER_CUSTOMER = 10;

const SCHEMA = `
CREATE TABLE customers (
  id bigint PRIMARY KEY,
  external_id uuid NOT NULL,
  name text NOT NULL,
  email text NOT NULL,
  phone text,
  street text NOT NULL,
  city text NOT NULL,
  postal_code text NOT NULL,
  country char(2) NOT NULL,
  created_at timestamptz NOT NULL,
  marketing_opt_in boolean NOT NULL,
  notes text
);
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL,
  external_id uuid NOT NULL,
  status text NOT NULL,
  placed_at timestamptz NOT NULL,
  shipped_at timestamptz,
  currency char(3) NOT NULL,
  subtotal numeric(12,2) NOT NULL,
  tax numeric(12,2) NOT NULL,
  total numeric(12,2) NOT NULL,
  shipping_address text NOT NULL,
  note text
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE order_items (
  order_id bigint NOT NULL,
  line int NOT NULL,
  sku text NOT NULL,
  description text NOT NULL,
  quantity int NOT NULL,
  unit_price numeric(10,2) NOT NULL,
  discount numeric(5,2),
  PRIMARY KEY (order_id, line)
);
CREATE TABLE events (
  id bigint PRIMARY KEY,
  occurred_at timestamptz NOT NULL,
  kind text NOT NULL,
  customer_id bigint,
  order_id bigint,
  session_id uuid NOT NULL,
  payload jsonb NOT NULL,
  user_agent text
);
CREATE INDEX events_occurred_at_idx ON events (occurred_at);
`;

// Foreign keys are added after the load (one validating scan each instead of a lookup per row).
const CONSTRAINTS = `
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE order_items ADD FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE events ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE events ADD FOREIGN KEY (order_id) REFERENCES orders (id);
`;

const SYLLABLES = (
  'ka lo mi ren tor sa vel dan mor li an ber cor del en fa gul har is jo kel lum mar nor ol pe qua ri sto tur ' +
  'ul vin wes xa yor zen bri cha dro fle gro ple shi tra ste ath bel cin dor eth fin gal hil ion jas kor lin mel nes'
).split(' ');

// A random pseudo-word: two or three syllables drawn from a constant array of 59 (~200,000 words).
// A vocabulary in a table column would be TOASTed and decompressed on every access (~100× slower).
const SYL = `(ARRAY[${SYLLABLES.map((x) => `'${x}'`).join(',')}])`;
const syllable = `${SYL}[1 + floor(random() * ${SYLLABLES.length})::int]`;
const W = `(${syllable} || ${syllable} || CASE WHEN random() < 0.3 THEN ${syllable} ELSE '' END)`;
/** `min..max` random words; `key` (an outer column) makes the sub-select run once per row, and
 *  `ORDER BY k` keeps the aggregate at the sub-select's level (its argument names outer columns only). */
const phrase = (min: number, max: number, key: string): string =>
  `(SELECT string_agg(${W}, ' ' ORDER BY k) FROM generate_series(1, ${min} + ((${key}) % ${max - min + 1})::int) k)`;
const pick = (xs: readonly string[]): string => `(ARRAY[${xs.map((x) => `'${x}'`).join(',')}])[1 + floor(random() * ${xs.length})::int]`;
const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'NL', 'ES', 'IT', 'SE', 'PL', 'CA', 'BR', 'JP'];
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
  'okhttp/4.12.0',
];

// $1..$2: the ids to insert.
const INSERT_CUSTOMERS = `
INSERT INTO customers
SELECT g, gen_random_uuid(),
  initcap(${W}) || ' ' || initcap(${W}),
  ${W} || '.' || ${W} || (g % 1000) || '@' || ${W} || ${pick(['.com', '.net', '.org', '.io', '.de', '.fr'])},
  CASE WHEN random() < 0.2 THEN NULL ELSE '+' || (1 + floor(random() * 98))::int || ' ' || lpad(floor(random() * 1e9)::bigint::text, 9, '0') END,
  (1 + floor(random() * 2000))::int || ' ' || initcap(${W}) || ' ' || ${pick(['Street', 'Road', 'Avenue', 'Lane', 'Way', 'Place'])},
  initcap(${W}),
  lpad(floor(random() * 100000)::int::text, 5, '0'),
  ${pick(COUNTRIES)},
  timestamptz '2019-01-01 00:00:00+00' + random() * interval '5 years',
  random() < 0.4,
  CASE WHEN random() < 0.7 THEN NULL ELSE ${phrase(5, 24, 'g')} END
FROM generate_series($1::bigint, $2::bigint) g`;

// $1..$2: the order ids; $3..$4: the customers they belong to.
const INSERT_ORDERS = `
INSERT INTO orders
SELECT g, $3::bigint + floor(random() * ($4::bigint - $3::bigint + 1))::bigint, gen_random_uuid(),
  x.status, x.placed,
  CASE WHEN x.status IN ('shipped', 'delivered', 'returned') THEN x.placed + random() * interval '6 days' END,
  ${pick(['EUR', 'EUR', 'EUR', 'USD', 'USD', 'GBP', 'SEK', 'PLN'])},
  x.subtotal, round(x.subtotal * 0.19, 2), x.subtotal + round(x.subtotal * 0.19, 2),
  (1 + floor(random() * 2000))::int || ' ' || initcap(${W}) || ' ' || ${pick(['Street', 'Road', 'Avenue', 'Lane'])} || ', ' ||
    lpad(floor(random() * 100000)::int::text, 5, '0') || ' ' || initcap(${W}) || ', ' || ${pick(COUNTRIES)},
  CASE WHEN random() < 0.85 THEN NULL ELSE ${phrase(3, 12, 'g')} END
FROM generate_series($1::bigint, $2::bigint) g,
  LATERAL (SELECT
    ${pick(['delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'shipped', 'shipped', 'shipped', 'paid', 'paid', 'pending', 'pending', 'cancelled', 'returned', 'refunded'])} AS status,
    timestamptz '2020-01-01 00:00:00+00' + g * interval '50 seconds' + random() * interval '50 seconds' AS placed,
    round((2 + random() * random() * 900)::numeric * (1 + g % 2), 2) AS subtotal) x`;

// $1..$2: the orders whose items to insert.
const INSERT_ITEMS = `
INSERT INTO order_items
SELECT o, l,
  'SKU-' || lpad(floor(random() * 250000)::int::text, 6, '0') || '-' || ${pick(['S', 'M', 'L', 'XL', 'NA'])},
  initcap(${W}) || ' ' || ${phrase(1, 6, 'o + l')},
  1 + floor(random() * random() * 12)::int,
  round((0.5 + random() * random() * 400)::numeric, 2),
  CASE WHEN random() < 0.8 THEN NULL ELSE round((random() * 40)::numeric, 2) END
FROM generate_series($1::bigint, $2::bigint) o, generate_series(1, 1 + ((o * 7919) % 5)::int) l`;

// $1..$2: the event ids; $3: customers so far; $4..$5: the orders of this batch.
const INSERT_EVENTS = `
INSERT INTO events
SELECT g, timestamptz '2020-01-01 00:00:00+00' + g * interval '20 seconds' + random() * interval '20 seconds', x.kind,
  CASE WHEN random() < 0.15 THEN NULL ELSE 1 + floor(random() * $3::bigint)::bigint END,
  CASE WHEN x.kind IN ('checkout', 'payment', 'shipment', 'refund') THEN $4::bigint + floor(random() * ($5::bigint - $4::bigint + 1))::bigint END,
  gen_random_uuid(),
  jsonb_build_object(
    'path', '/' || ${W} || '/' || ${W},
    'referrer', CASE WHEN random() < 0.5 THEN NULL ELSE 'https://' || ${W} || '.example/' || ${W} || '?q=' || ${W} END,
    'duration_ms', floor(random() * random() * 20000)::int,
    'viewport', jsonb_build_object('w', ${pick(['1280', '1366', '1440', '1920', '390', '414'])}::int, 'h', ${pick(['720', '768', '900', '1080', '844', '896'])}::int),
    'tags', to_jsonb(ARRAY[${W}, ${W}, ${W}]),
    'amount', CASE WHEN x.kind IN ('checkout', 'payment', 'refund') THEN round((random() * 900)::numeric, 2) END,
    'search', CASE WHEN x.kind = 'search' THEN ${phrase(1, 5, 'g')} END,
    'experiment', jsonb_build_object('id', 'exp-' || (g % 37), 'variant', ${pick(['control', 'a', 'b'])}),
    'consent', random() < 0.8),
  CASE WHEN random() < 0.1 THEN NULL ELSE ${pick(USER_AGENTS)} END
FROM generate_series($1::bigint, $2::bigint) g,
  LATERAL (SELECT g AS key, ${pick(['page_view', 'page_view', 'page_view', 'page_view', 'click', 'click', 'search', 'add_to_cart', 'checkout', 'payment', 'shipment', 'login', 'logout', 'refund'])} AS kind) x`;

interface Marker {
  generator: string;
  version: number;
  sizeMiB: number;
  bytes: number;
  rows: Record<string, number>;
  builtAt: string;
  buildSeconds: number;
}

export interface SourceDatabase {
  name: string;
  url: string;
  bytes: number;
  rows: Record<string, number>;
  /** Set when it was generated by this run. */
  builtMs?: number;
  /** When it was built (from its marker). */
  builtAt: string;
}

/** The cached database's name for a size: `dbflow_bench_<size>mb`. */
export const benchDatabaseName = (sizeMiB: number): string => `dbflow_bench_${sizeMiB}mb`;

async function readMarker(name: string): Promise<{ marker?: Marker; exists: boolean }> {
  const { rows } = await withClient((c) =>
    c.query<{ c: string | null }>("SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1", [name]),
  );
  if (!rows.length) return { exists: false };
  try {
    const m = JSON.parse(rows[0]!.c ?? '') as Partial<Marker>;
    return m.generator === GENERATOR ? { marker: m as Marker, exists: true } : { exists: true };
  } catch {
    return { exists: true };
  }
}

const sizeOf = async (c: pg.Client): Promise<number> =>
  Number((await c.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]!.s);

/** Generates into `name` (which exists and is empty) until it holds `sizeMiB` MiB. */
async function generate(name: string, sizeMiB: number, log: (s: string) => void): Promise<Record<string, number>> {
  const url = databaseUrl(name);
  const want = sizeMiB * MiB;
  // Two connections: events on one, customers → orders → order_items on the other (2 backends).
  const a = new pg.Client({ connectionString: url });
  const b = new pg.Client({ connectionString: url });
  for (const c of [a, b]) c.on('error', () => undefined);
  await Promise.all([a.connect(), b.connect()]);
  try {
    const setup = "SET synchronous_commit = off; SET work_mem = '64MB'";
    await a.query(SCHEMA);
    await Promise.all([a.query(setup), b.query(setup)]);
    let customers = 0;
    let orders = 0;
    let events = 0;
    let items = 0;
    const t0 = performance.now();
    let perCustomer = 0;
    let size = await sizeOf(a);
    const base = size;
    const batchBytes = Math.max(16 * MiB, want / 12);
    while (size < want) {
      // The first batch calibrates bytes per customer; the next ones aim at ~1/12 of the size each.
      const c = perCustomer ? Math.max(500, Math.ceil(Math.min(batchBytes, (want - size) * 1.02) / perCustomer)) : 1000;
      const o = c * ORDERS_PER_CUSTOMER;
      const e = c * EVENTS_PER_CUSTOMER;
      const [c1, o1, e1] = [customers + 1, orders + 1, events + 1];
      await Promise.all([
        a.query(INSERT_EVENTS, [e1, events + e, customers + c, o1, orders + o]),
        (async () => {
          await b.query(INSERT_CUSTOMERS, [c1, customers + c]);
          await b.query(INSERT_ORDERS, [o1, orders + o, c1, customers + c]);
          items += (await b.query(INSERT_ITEMS, [o1, orders + o])).rowCount ?? 0;
        })(),
      ]);
      customers += c;
      orders += o;
      events += e;
      size = await sizeOf(a);
      perCustomer = (size - base) / customers;
      const s = (performance.now() - t0) / 1000;
      const done = Math.min(1, size / want);
      log(
        `  generating ${name}: ${(size / MiB).toFixed(0)}/${sizeMiB} MiB (${(done * 100).toFixed(0)}%), ${customers} customers, ${s.toFixed(0)} s${done < 1 && done > 0 ? `, ~${((s / done) * (1 - done)).toFixed(0)} s to go` : ''}`,
      );
    }
    log(`  generating ${name}: foreign keys, VACUUM (FREEZE, ANALYZE) …`);
    await a.query(CONSTRAINTS);
    // Frozen and hinted: the first dump of a fresh table would otherwise write hint bits and be slower than the next.
    await a.query('VACUUM (FREEZE, ANALYZE)');
    return { customers, orders, order_items: items, events };
  } finally {
    await Promise.all([a.end().catch(() => undefined), b.end().catch(() => undefined)]);
  }
}

/**
 * The cached bench database of `sizeMiB` MiB: reused when its marker is current and its row counts
 * match the marker (counted by sequential scans, which also warms the page cache), else rebuilt
 * under a temporary name and renamed, so that an interrupted build never looks complete.
 */
export async function benchDatabase(sizeMiB: number, o: { rebuild: boolean; log: (s: string) => void }): Promise<SourceDatabase> {
  const name = benchDatabaseName(sizeMiB);
  const url = databaseUrl(name);
  try {
    const { marker, exists } = await readMarker(name);
    let why = o.rebuild ? 'BENCH_PG_REBUILD=1' : !exists ? 'not there yet' : !marker ? 'no generator marker' : '';
    if (!why && marker!.version !== GENERATOR_VERSION) why = `generator version ${marker!.version}, now ${GENERATOR_VERSION}`;
    if (!why && marker!.bytes < sizeMiB * MiB) why = `${(marker!.bytes / MiB).toFixed(0)} MiB is short of ${sizeMiB} MiB`;
    if (!why) {
      const t0 = performance.now();
      const rows = await countRows(url, PG_TABLES);
      const changed = PG_TABLES.filter((t) => rows[t] !== marker!.rows[t]);
      if (!changed.length) {
        const bytes = await withClient(sizeOf, url);
        o.log(
          `  cached ${name} (${(bytes / MiB).toFixed(0)} MiB, generator v${marker!.version}, built ${marker!.builtAt}); counted and warmed in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        return { name, url, bytes, rows, builtAt: marker!.builtAt };
      }
      why = `row counts of ${changed.join(', ')} differ from its marker`;
    }
    o.log(`  building ${name} (${why}) …`);
    const building = `${name}_building`;
    registerScratch(building);
    await dropScratch(building);
    registerScratch(building);
    const t0 = performance.now();
    await withClient((c) => c.query(`CREATE DATABASE ${ident(building)}`));
    const rows = await generate(building, sizeMiB, o.log);
    const bytes = await withClient(sizeOf, databaseUrl(building));
    const builtMs = performance.now() - t0;
    const m: Marker = {
      generator: GENERATOR,
      version: GENERATOR_VERSION,
      sizeMiB,
      bytes,
      rows,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round(builtMs / 1000),
    };
    await withClient(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
      await c.query(`ALTER DATABASE ${ident(building)} RENAME TO ${ident(name)}`);
      keepScratch(building);
      // Set last: a database without it is rebuilt.
      await c.query(`COMMENT ON DATABASE ${ident(name)} IS ${pg.escapeLiteral(JSON.stringify(m))}`);
    });
    o.log(
      `  built ${name}: ${(bytes / MiB).toFixed(0)} MiB, ${Object.entries(rows)
        .map(([t, n]) => `${n} ${t}`)
        .join(', ')} in ${(builtMs / 1000).toFixed(1)} s`,
    );
    await countRows(url, PG_TABLES); // warm the page cache for the timed runs
    return { name, url, bytes, rows, builtMs, builtAt: m.builtAt };
  } catch (err) {
    throw pgError(`building the ${sizeMiB} MiB PostgreSQL bench database`, err);
  }
}
