// pg_restore of a dump stream into a (scratch) database.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DbflowError, feedStdin, type DatabaseConfig, type DriverContext } from '../../src/index.js';
import { CUSTOM_FORMAT, DIRECTORY_FORMAT } from './dump.js';
import { pgOptions } from './options.js';
import { toolEnv, toolError, toolPath } from './tools.js';
import { parsePgUrl } from './url.js';

// Restores of verification copies: ownership and grants may name roles the target lacks.
// --clean --if-exists: a dump of selected schemas creates "public", which a new database already has.
const RESTORE_ARGS = ['--no-owner', '--no-privileges', '--clean', '--if-exists', '--exit-on-error', '--no-password'];

/** Restores a `pg_dump-custom` stream (one job, from stdin) or a `pg_dump-directory-tar` stream (unpacked, then `--jobs`). */
export async function restoreDump(ctx: DriverContext, url: string, input: Readable, format: string, db: DatabaseConfig): Promise<void> {
  if (format !== CUSTOM_FORMAT && format !== DIRECTORY_FORMAT) {
    input.destroy();
    throw new DbflowError(
      `the postgres driver restores "${CUSTOM_FORMAT}" and "${DIRECTORY_FORMAT}" dumps, not "${format}"; restore this artifact with the driver that made it.`,
    );
  }
  const conn = parsePgUrl(url, db.password);
  const o = pgOptions(db);
  const env = toolEnv(ctx, conn, 'dbflow pg_restore');
  const pgRestore = toolPath('pg_restore', o.binDir);
  const fail = (error: unknown): Error => toolError(error, 'pg_restore', { binDir: o.binDir, conn });
  const target = [`--dbname=${conn.database}`, ...RESTORE_ARGS];
  if (format === CUSTOM_FORMAT) {
    const sub = ctx.exec(pgRestore, ['--format=custom', ...target], { env, stdin: 'pipe', stdout: 'ignore', buffer: { stderr: true } });
    await feedStdin(sub, input, fail);
    return;
  }
  const dir = path.join(ctx.tmpdir, `pg_restore-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  const tar = ctx.exec('tar', ['-C', dir, '-xf', '-'], { stdin: 'pipe', stdout: 'ignore', buffer: { stderr: true } });
  await feedStdin(tar, input, (error) => toolError(error, 'tar', { doing: 'unpacking the pg_dump directory' }));
  try {
    await ctx.exec(pgRestore, ['--format=directory', `--jobs=${o.restoreJobs}`, ...target, dir], {
      env,
      stdin: 'ignore',
      stdout: 'ignore',
    });
  } catch (error) {
    throw fail(error);
  }
}
