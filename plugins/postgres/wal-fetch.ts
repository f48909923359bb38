// The WAL after a base backup, up to its restore point: fetched with pg_receivewal as whole segment files.
import { mkdirSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DriverContext } from '../../src/plugin-api.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import type { PgConnection } from './url.js';

/** An LSN (`16/B374D848`) as a number of bytes. */
export function lsnBytes(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

/** The name of the WAL segment file holding byte `at` on `timeline`, as pg_walfile_name gives it. */
export function segmentName(timeline: number, at: bigint, segmentSize: number): string {
  const segno = at / BigInt(segmentSize);
  const perId = 0x100000000n / BigInt(segmentSize);
  const hex = (n: bigint | number): string => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / perId)}${hex(segno % perId)}`;
}

/** What `fetchWal` gets. */
export interface WalRange {
  timeline: number;
  segmentSize: number;
  /** The base backup's stop LSN: its own WAL (fetched by pg_basebackup) ends with the segment holding it. */
  after: string;
  /** Stream up to here (the restore point's LSN). */
  until: string;
}

/**
 * Fetches the segments after the base backup's last one up to the one holding `until`, with
 * `pg_receivewal --endpos`. pg_receivewal starts after the last complete segment it finds in its folder,
 * so a sparse placeholder of the base backup's last segment makes it start exactly at the next one (the
 * server switched to it when the backup stopped). The last segment is incomplete (`.partial`): it is
 * kept under its own name, as recovery reads it (it stops at the restore point, before its end).
 */
export async function fetchWal(
  ctx: DriverContext,
  conn: PgConnection,
  binDir: string | undefined,
  range: WalRange,
): Promise<{ name: string; path: string }[]> {
  const dir = path.join(ctx.tmpdir, 'wal');
  mkdirSync(dir, { recursive: true });
  const placeholder = path.join(dir, segmentName(range.timeline, lsnBytes(range.after) - 1n, range.segmentSize));
  writeFileSync(placeholder, '');
  truncateSync(placeholder, range.segmentSize);
  const { env, removeAfter } = toolConnection(ctx, conn, 'dbflow pg_receivewal');
  try {
    const sub = ctx.exec(
      toolPath('pg_receivewal', binDir),
      ['-D', dir, `--endpos=${range.until}`, '--no-loop', '--no-sync', '--no-password', '-v'],
      {
        env,
        stdin: 'ignore',
      },
    );
    removeAfter(sub);
    await sub;
  } catch (err) {
    throw toolError(err, 'pg_receivewal', { binDir, conn, doing: 'fetching the WAL up to the restore point' });
  }
  rmSync(placeholder);
  const files = readdirSync(dir)
    .filter((f) => /^[0-9A-F]{24}(\.partial)?$/.test(f))
    .sort();
  return files.map((f) => {
    const name = f.replace(/\.partial$/, '');
    if (name !== f) renameSync(path.join(dir, f), path.join(dir, name));
    return { name, path: path.join(dir, name) };
  });
}
