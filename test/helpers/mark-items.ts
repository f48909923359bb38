// The causal writer's items in restored data directories, and whether three of them are one consistent cut.
import type { TestContext } from 'node:test';
import { myItemIds, pgItemIds } from './causal-writer.js';
import { startedOn, withConnection, withDatabase as myWithDatabase } from './mysql.js';
import { withClient, withDatabase } from './postgres.js';
import { inRestored } from './wal-archive.js';

/**
 * The item ids of `database` in a restored PostgreSQL data directory, started privately with the server binaries in
 * `bin`; `password` is the source cluster's (its pg_hba.conf came with the base backup).
 */
export function pgRestoredItems(datadir: string, bin: string, database: string, password: string): Promise<number[]> {
  return inRestored(datadir, bin, (url) => withClient(withDatabase(url, database), pgItemIds, password));
}

/** The item ids of `database` in a restored MariaDB data directory, started as a DBA would. */
export function myRestoredItems(t: Pick<TestContext, 'after'>, datadir: string, database: string): Promise<number[]> {
  return startedOn(t, datadir, (url) => withConnection(myWithDatabase(url, database), myItemIds));
}

/**
 * How the items of A (db1), M (mq) and B (db2) break what any instant of the causal writer leaves (item i is committed
 * in A, then M, then B): each holds the consecutive ids 1..n; items(A) ⊇ items(M) ⊇ items(B); |A| − |M| and
 * |M| − |B| are 0 or 1, and so |A| − |B| is at most 1 (the writer finishes an item on B before it starts the next on A).
 * Empty when they are one consistent cut.
 */
export function causalViolations(a: readonly number[], m: readonly number[], b: readonly number[]): string[] {
  const named = [
    ['db1', a],
    ['mq', m],
    ['db2', b],
  ] as const;
  const out: string[] = [];
  for (const [name, ids] of named) {
    const sorted = [...ids].sort((x, y) => x - y);
    const off = sorted.findIndex((id, i) => id !== i + 1);
    if (off >= 0)
      out.push(
        `${name}: its ${ids.length} ids are not 1..${ids.length}: position ${off + 1} holds ${sorted[off]} (ids ${sorted.slice(Math.max(0, off - 2), off + 3).join(', ')} …)`,
      );
  }
  const absent = (outer: readonly number[], inner: readonly number[]): number[] => {
    const have = new Set(outer);
    return inner.filter((id) => !have.has(id));
  };
  for (const [[outerName, outer], [innerName, inner]] of [
    [named[0], named[1]],
    [named[1], named[2]],
  ] as const) {
    const extra = absent(outer, inner);
    if (extra.length)
      out.push(
        `${innerName} holds ${extra.length} items ${outerName} lacks (${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''})`,
      );
    const ahead = outer.length - inner.length;
    if (ahead !== 0 && ahead !== 1)
      out.push(`${outerName} holds ${outer.length} items and ${innerName} ${inner.length}: ${ahead} apart, not 0 or 1`);
  }
  if (a.length - b.length > 1) out.push(`db1 holds ${a.length} items and db2 ${b.length}: ${a.length - b.length} apart, more than 1`);
  return out;
}
