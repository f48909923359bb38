// The tables a backup covers: what pg_dump dumps and what is counted, from the same filters.
import type { Client } from 'pg';
import type { LeftOut } from '../../src/plugin-api.js';
import type { PgOptions } from './options.js';

/** A table in scope. */
export interface PgTable {
  schema: string;
  name: string;
  /** `schema.table`: the key in the manifest's counts. */
  key: string;
  /** Quoted for SQL: `"schema"."table"`. */
  sql: string;
}

/** A quoted SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Ordinary tables (leaf partitions included, parents not: their rows are the leaves') outside
 * the system schemas, not owned by an extension, filtered by the options.
 */
export async function tablesInScope(client: Client, o: PgOptions): Promise<PgTable[]> {
  const r = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence <> 't'
        AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1))
        AND NOT (n.nspname = ANY($2))
        AND (cardinality($3::text[]) = 0 OR n.nspname || '.' || c.relname = ANY($3))
        AND NOT (n.nspname || '.' || c.relname = ANY($4))
      ORDER BY 1, 2`,
    [o.schemas, o.excludeSchemas, o.tables, o.excludeTables],
  );
  return r.rows.map(({ schema, name }) => ({ schema, name, key: `${schema}.${name}`, sql: `${ident(schema)}.${ident(name)}` }));
}

/** pg_dump's filter options for the same scope; names are quoted so pg_dump takes them literally. */
export function dumpFilters(o: PgOptions): string[] {
  const quoteTable = (t: string): string => {
    const dot = t.indexOf('.');
    return dot < 0 ? ident(t) : `${ident(t.slice(0, dot))}.${ident(t.slice(dot + 1))}`;
  };
  return [
    ...o.schemas.map((s) => `--schema=${ident(s)}`),
    ...o.excludeSchemas.map((s) => `--exclude-schema=${ident(s)}`),
    ...o.tables.map((t) => `--table=${quoteTable(t)}`),
    ...o.excludeTables.map((t) => `--exclude-table=${quoteTable(t)}`),
  ];
}

/** The ordinary tables of the database (as `tablesInScope` finds them) that the options leave out, with why. */
export async function leftOut(client: Client, o: PgOptions): Promise<LeftOut[]> {
  const every = await tablesInScope(client, { ...o, schemas: [], excludeSchemas: [], tables: [], excludeTables: [] });
  const inScope = new Set((await tablesInScope(client, o)).map((t) => t.key));
  return every
    .filter((t) => !inScope.has(t.key))
    .map((t) => {
      const why = o.excludeTables.includes(t.key)
        ? 'excluded by options.exclude_tables'
        : o.excludeSchemas.includes(t.schema)
          ? 'excluded by options.exclude_schemas'
          : o.schemas.length && !o.schemas.includes(t.schema)
            ? 'not in options.schemas'
            : 'not in options.tables';
      return { table: t.key, why, excluded: why.startsWith('excluded') };
    });
}
