// Content checksums of PostgreSQL tables: the schemes, which one a server uses, and each table's per-row hash.
import type { Client } from 'pg';
import { DbflowError } from '../../src/plugin-api.js';
import { ident, type PgTable } from './scope.js';

/**
 * The first scheme, and the one of servers before PostgreSQL 14: the sum, as a numeric, of a 64-bit
 * hash of each row's text. Converting every value to text costs about as much server CPU as the dump.
 */
export const ROW_TEXT_SCHEME = 'sum(hashtextextended(row::text, 0))';

/**
 * PostgreSQL 14 and later: the sum, as a numeric, over rows of the XOR of a 64-bit hash of each
 * column, seeded by its position (1, 2, …), NULL giving 0. Built-in types are hashed from their
 * binary value with the type's own extended hash function (the one hash partitioning relies on);
 * a type without one, or whose hash depends on more than the value (json, xml, point, money, bit,
 * enums, domains, composites, ranges, extension types …), is hashed as its text. Text is hashed
 * byte for byte (collation "C"). Like the hash operators, it treats equal values alike: 1.5 and
 * 1.50, 0 and -0, '1 day' and '24 hours', an array and the same elements in another shape.
 */
export const COLUMN_HASH_SCHEME = 'sum(hash_extended(col_1, 1) # … # hash_extended(col_n, n))';

/** A checksum scheme this driver computes. */
export type PgChecksumScheme = typeof ROW_TEXT_SCHEME | typeof COLUMN_HASH_SCHEME;

/** The scheme of a new snapshot on a server of `versionNum` (server_version_num). */
export function schemeFor(versionNum: number): PgChecksumScheme {
  return versionNum >= 140000 ? COLUMN_HASH_SCHEME : ROW_TEXT_SCHEME;
}

/** The scheme `recorded` names (as a snapshot recorded it), checked to be computable on a server of `versionNum`. */
export function recordedScheme(recorded: string, versionNum: number, database: string): PgChecksumScheme {
  if (recorded !== ROW_TEXT_SCHEME && recorded !== COLUMN_HASH_SCHEME) {
    throw new DbflowError(
      `database "${database}": the backup's checksums were computed as "${recorded}", a scheme this version of dbflow does not know. Restore with a dbflow that does, or compare row counts only.`,
    );
  }
  if (recorded === COLUMN_HASH_SCHEME && versionNum < 140000) {
    throw new DbflowError(
      `database "${database}": the backup's checksums ("${recorded}") need PostgreSQL 14 or later to recompute; this server is ${Math.floor(versionNum / 10000)}. Restore into a newer server, or compare row counts only.`,
    );
  }
  return recorded;
}

// Built-in types (by pg_type.typname) hashed from their value: how, given the value and the seed.
const DIRECT: Readonly<Record<string, string>> = {
  int2: 'hashint2extended',
  int4: 'hashint4extended',
  int8: 'hashint8extended',
  float4: 'hashfloat4extended',
  float8: 'hashfloat8extended',
  numeric: 'hash_numeric_extended',
  text: 'hashtextextended',
  varchar: 'hashtextextended',
  bpchar: 'hashbpcharextended',
  name: 'hashnameextended',
  char: 'hashcharextended',
  timestamp: 'timestamp_hash_extended',
  time: 'time_hash_extended',
  timetz: 'timetz_hash_extended',
  interval: 'interval_hash_extended',
  uuid: 'uuid_hash_extended',
  jsonb: 'jsonb_hash_extended',
  inet: 'hashinetextended',
  cidr: 'hashinetextended',
  macaddr: 'hashmacaddrextended',
  macaddr8: 'hashmacaddr8extended',
  oid: 'hashoidextended',
  pg_lsn: 'pg_lsn_hash_extended',
};

// Built-in types with an extended hash that no function takes as they are: through a cast, or a one-column record.
const INDIRECT: Readonly<Record<string, (value: string, seed: number) => string>> = {
  // At TimeZone UTC (pinned on every counting session) the cast is the identity on the stored value.
  timestamptz: (v, s) => `timestamp_hash_extended(${v}::timestamp, ${s})`,
  bool: (v, s) => `hashint4extended(${v}::int4, ${s})`,
  date: (v, s) => `hash_record_extended(ROW(${v}), ${s})`,
  bytea: (v, s) => `hash_record_extended(ROW(${v}), ${s})`,
  xid8: (v, s) => `hash_record_extended(ROW(${v}), ${s})`,
};

/** A column of a table in scope, as the row hash needs it. */
export interface PgColumn {
  name: string;
  /** pg_type.typname of its type. */
  type: string;
  /** The type is in pg_catalog (built in). */
  builtin: boolean;
  notNull: boolean;
  collatable: boolean;
}

/** The hash of one column's value, seeded by its position; NULL when the value is NULL. */
export function columnHash(c: PgColumn, ref: string, seed: number): string {
  const value = c.collatable ? `${ref} COLLATE "C"` : ref;
  const fn = c.builtin ? DIRECT[c.type] : undefined;
  if (fn) return `${fn}(${value}, ${seed})`;
  const indirect = c.builtin ? INDIRECT[c.type] : undefined;
  if (indirect) return indirect(ref, seed);
  const element = c.builtin && c.type.startsWith('_') ? c.type.slice(1) : undefined;
  if (element && (DIRECT[element] || INDIRECT[element])) return `hash_array_extended(${value}, ${seed})`;
  return `hashtextextended((${ref}::text) COLLATE "C", ${seed})`;
}

/** The COLUMN_HASH_SCHEME hash of a row of `columns`, whose values are `<alias>.<column>`. */
export function rowHash(columns: readonly PgColumn[], alias: string): string {
  const terms = columns.map((c, i) => {
    const h = columnHash(c, `${alias}.${ident(c.name)}`, i + 1);
    return c.notNull ? h : `coalesce(${h}, 0)`;
  });
  return terms.length ? terms.join(' # ') : '0::int8';
}

/**
 * The per-row hash expression of each table (by key) under `scheme`, over the alias `dbflow_row`;
 * the column scheme reads the columns (in order, without dropped ones) from the catalog.
 */
export async function rowHashes(client: Client, tables: readonly PgTable[], scheme: PgChecksumScheme): Promise<Map<string, string>> {
  if (scheme === ROW_TEXT_SCHEME) return new Map(tables.map((t) => [t.key, 'hashtextextended(ROW(dbflow_row.*)::text, 0)']));
  const r = await client.query<{ key: string } & PgColumn>(
    `SELECT n.nspname || '.' || c.relname AS key, a.attname AS name, t.typname AS type,
            t.typnamespace = 'pg_catalog'::regnamespace AS builtin, a.attnotnull AS "notNull", a.attcollation <> 0 AS collatable
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = ANY($1::text[]::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY 1, a.attnum`,
    [tables.map((t) => t.sql)],
  );
  const columns = new Map<string, PgColumn[]>(tables.map((t) => [t.key, []]));
  for (const { key, ...c } of r.rows) columns.get(key)?.push(c);
  return new Map([...columns].map(([key, cs]) => [key, rowHash(cs, 'dbflow_row')]));
}
