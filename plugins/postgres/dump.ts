// pg_dump of an exported snapshot, streamed: custom format, or directory format shipped as a tar.
import path from 'node:path';
import { checkedStdout, DbflowError, type DriverContext, type DumpOptions, type DumpStream } from '../../src/plugin-api.js';
import { pgOptions } from './options.js';
import { dumpFilters } from './scope.js';
import { isPgSnapshot } from './snapshot.js';
import { checkToolVersion, toolConnection, toolError, toolMajor, toolPath } from './tools.js';

/** Format names recorded in the manifest. */
export const CUSTOM_FORMAT = 'pg_dump-custom';
export const DIRECTORY_FORMAT = 'pg_dump-directory-tar';

// stdout is streamed, never collected; stderr is kept (it is small) for the error message.
const STREAMING = { buffer: { stdout: false, stderr: true }, stdin: 'ignore' } as const;

/** Streams `pg_dump --snapshot=<id>` of the snapshot's database (uncompressed: compression is a later step). */
export async function dumpSnapshot(ctx: DriverContext, { db, snapshot }: DumpOptions): Promise<DumpStream> {
  if (!isPgSnapshot(snapshot)) {
    throw new DbflowError(
      `database "${db.name}" uses the postgres driver, but its snapshot was taken by the "${snapshot.info.driver}" driver; snapshot it with driver: postgres.`,
    );
  }
  const o = pgOptions(db);
  const major = await toolMajor(ctx, 'pg_dump', o.binDir);
  checkToolVersion('pg_dump', major, snapshot.serverVersionNum, o.binDir);
  const { env, removeAfter } = toolConnection(ctx, snapshot.conn, 'dbflow pg_dump');
  const args = [`--snapshot=${snapshot.snapshotId}`, '--no-password', `--lock-wait-timeout=${o.lockTimeoutMs}`, ...dumpFilters(o)];
  const fail = (error: unknown): Error => toolError(error, 'pg_dump', { binDir: o.binDir, conn: snapshot.conn });
  if (o.format === 'custom') {
    const sub = ctx.exec(toolPath('pg_dump', o.binDir), ['--format=custom', '--compress=0', ...args], { ...STREAMING, env });
    removeAfter(sub);
    return { stream: checkedStdout(sub, fail), format: CUSTOM_FORMAT, extension: '.dump' };
  }
  // Directory format: parallel jobs write a folder (each job imports the same snapshot), shipped as one tar.
  const dir = path.join(ctx.tmpdir, 'pg_dump');
  try {
    const sub = ctx.exec(
      toolPath('pg_dump', o.binDir),
      ['--format=directory', '--compress=0', `--jobs=${o.jobs}`, `--file=${dir}`, ...args],
      {
        env,
        stdin: 'ignore',
      },
    );
    removeAfter(sub);
    await sub;
  } catch (error) {
    throw fail(error);
  }
  const tar = ctx.exec('tar', ['-C', dir, '-cf', '-', '.'], STREAMING);
  return {
    stream: checkedStdout(tar, (error) => toolError(error, 'tar', { doing: 'packing the pg_dump directory' })),
    format: DIRECTORY_FORMAT,
    extension: '.dump.tar',
  };
}
