// Realistic demo rows for the sqlite-seed step: names, addresses, products, timestamps.

const FIRST = [
  'Ada',
  'Bruno',
  'Chloé',
  'Dmitri',
  'Elena',
  'Farid',
  'Grace',
  'Hiro',
  'Ingrid',
  'Jamal',
  'Kofi',
  'Lena',
  'Mateo',
  'Nadia',
  'Oskar',
  'Priya',
  'Quentin',
  'Rosa',
  'Sven',
  'Tariq',
  'Uma',
  'Viktor',
  'Wen',
  'Ximena',
  'Yusuf',
  'Zoë',
];
const LAST = [
  'Almeida',
  'Berg',
  'Chen',
  'Dubois',
  'Eriksen',
  'Fischer',
  'García',
  'Haddad',
  'Ivanova',
  'Jensen',
  'Kowalski',
  'Lindqvist',
  'Moreau',
  'Nakamura',
  'Okafor',
  'Petrov',
  'Quinn',
  'Rossi',
  'Schmidt',
  'Tanaka',
  'Urquhart',
  'Varga',
  'Weber',
  'Xu',
  'Yilmaz',
  'Zimmermann',
];
const DOMAINS = ['example.com', 'mail.example.org', 'corp.example.net', 'post.example', 'inbox.example.io'];
const COUNTRIES = ['DE', 'FR', 'US', 'JP', 'BR', 'IN', 'NG', 'SE', 'PL', 'CA', 'AU', 'ES', 'IT', 'KR', 'MX'];
const STREETS = ['Maple', 'Harbor', 'Linden', 'Station', 'Mill', 'Church', 'Garden', 'River', 'Castle', 'Market', 'Orchard', 'Bridge'];
const SUFFIXES = ['Street', 'Avenue', 'Road', 'Lane', 'Way', 'Platz', 'Boulevard', 'Allee'];
const CITIES = [
  'Berlin',
  'Lyon',
  'Austin',
  'Osaka',
  'Recife',
  'Pune',
  'Lagos',
  'Malmö',
  'Kraków',
  'Halifax',
  'Perth',
  'Sevilla',
  'Torino',
  'Busan',
  'Puebla',
];
const ADJECTIVES = [
  'compact',
  'ergonomic',
  'rugged',
  'wireless',
  'recycled',
  'modular',
  'insulated',
  'foldable',
  'heavy-duty',
  'organic',
  'smart',
  'vintage',
];
const NOUNS = [
  'kettle',
  'backpack',
  'desk lamp',
  'keyboard',
  'water bottle',
  'headphones',
  'chair',
  'notebook',
  'drill',
  'tent',
  'blender',
  'jacket',
];
const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'delivered', 'delivered', 'cancelled', 'refunded'];
const CURRENCIES = ['EUR', 'USD', 'JPY', 'GBP', 'SEK'];
const WORDS =
  'please leave the parcel at the back door ring twice gift wrap deliver after six call on arrival fragile handle with care no plastic bag invoice to company address weekend delivery preferred'.split(
    ' ',
  );

/** A small fast deterministic PRNG (mulberry32), so a seeded database is reproducible. */
export class Random {
  constructor(private state: number) {}

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }

  /** `n` random base-36 characters. */
  token(n: number): string {
    let s = '';
    while (s.length < n) s += Math.floor(this.next() * 2176782336).toString(36);
    return s.slice(0, n);
  }
}

const EPOCH = Date.UTC(2019, 0, 1);
const SPAN = Date.UTC(2026, 0, 1) - EPOCH;

/** An ISO timestamp between 2019 and 2026. */
export function timestamp(r: Random): string {
  return new Date(EPOCH + Math.floor(r.next() * SPAN)).toISOString();
}

/** A customer row: id, name, email, country, phone, created_at. */
export function customerRow(r: Random, id: number): unknown[] {
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const email = `${first}.${last}.${r.token(4)}@${r.pick(DOMAINS)}`.toLowerCase();
  const phone = `+${r.int(1, 99)} ${r.int(100, 999)} ${r.int(1000000, 9999999)}`;
  return [id, `${first} ${last}`, email, r.pick(COUNTRIES), phone, timestamp(r)];
}

/** An order row: id, customer_id, status, placed_at, currency, total_cents, shipping_address, note. */
export function orderRow(r: Random, id: number, customerId: number, totalCents: number): unknown[] {
  const address = `${r.int(1, 400)} ${r.pick(STREETS)} ${r.pick(SUFFIXES)}, ${r.int(10000, 99999)} ${r.pick(CITIES)}`;
  const note = r.next() < 0.3 ? Array.from({ length: r.int(3, 9) }, () => r.pick(WORDS)).join(' ') : null;
  return [id, customerId, r.pick(STATUSES), timestamp(r), r.pick(CURRENCIES), totalCents, address, note];
}

/** An order item row: id, order_id, sku, product, quantity, unit_price_cents, discount. */
export function itemRow(r: Random, id: number, orderId: number): unknown[] {
  const product = `${r.pick(ADJECTIVES)} ${r.pick(NOUNS)} ${r.token(3).toUpperCase()}-${r.int(100, 999)}`;
  const discount = r.next() < 0.2 ? Math.round(r.next() * 3000) / 100 : 0;
  return [id, orderId, `SKU-${r.token(10).toUpperCase()}`, product, r.int(1, 5), r.int(199, 49999), discount];
}
