// pg_restore of a dump stream into a (scratch) database.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DbflowError, feedStdin, programInput, type DriverContext, type RestoreOptions } from '../../src/plugin-api.js';
import { CUSTOM_FORMAT, DIRECTORY_FORMAT } from './dump.js';
import { checkGlobals, restoreGlobals } from './globals.js';
import { pgOptions } from './options.js';
import { toolConnection, toolError, toolPath } from './tools.js';
import { connectionAt } from './url.js';

// --clean --if-exists: a dump of selected schemas creates "public", which a new database already has.
const RESTORE_ARGS = ['--clean', '--if-exists', '--exit-on-error', '--no-password'];
// Without the roles restored first, ownership and grants may name roles the target lacks. With them (a throwaway
// server), owners and privileges come back; tablespaces are the source machine's folders.
const WITHOUT_ROLES = ['--no-owner', '--no-privileges'];
const WITH_ROLES = ['--no-tablespaces'];

/** Restores a `pg_dump-custom` stream (one job, from stdin) or a `pg_dump-directory-tar` stream (unpacked, then `--jobs`). */
export async function restoreDump(ctx: DriverContext, { url, input, format, db, globals }: RestoreOptions): Promise<void> {
  if (format !== CUSTOM_FORMAT && format !== DIRECTORY_FORMAT) {
    input.destroy();
    throw new DbflowError(
      `the postgres driver restores "${CUSTOM_FORMAT}" and "${DIRECTORY_FORMAT}" dumps, not "${format}"; restore this artifact with the driver that made it.`,
    );
  }
  const conn = connectionAt(url, db);
  const o = pgOptions(db);
  const pgRestore = toolPath('pg_restore', o.binDir);
  const fail = (error: unknown): Error => toolError(error, 'pg_restore', { binDir: o.binDir, conn });
  if (globals !== undefined) {
    checkGlobals(globals, db.name);
    await restoreGlobals(ctx, url, db, globals);
  }
  const target = [`--dbname=${conn.database}`, ...RESTORE_ARGS, ...(globals === undefined ? WITHOUT_ROLES : WITH_ROLES)];
  if (format === CUSTOM_FORMAT) {
    const { env, removeAfter } = toolConnection(ctx, conn, 'dbflow pg_restore');
    // pg_restore reads a custom-format stream to its end: it may read its decoder's output directly.
    const source = programInput(input);
    const sub = ctx.exec(pgRestore, ['--format=custom', ...target], {
      env,
      stdin: source.stdin as 'pipe',
      stdout: 'ignore',
      buffer: { stderr: true },
    });
    removeAfter(sub);
    await source.feed(sub, fail);
    return;
  }
  const dir = path.join(ctx.tmpdir, `pg_restore-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  const tar = ctx.exec('tar', ['-C', dir, '-xf', '-'], { stdin: 'pipe', stdout: 'ignore', buffer: { stderr: true } });
  await feedStdin(tar, input, (error) => toolError(error, 'tar', { doing: 'unpacking the pg_dump directory' }));
  const { env, removeAfter } = toolConnection(ctx, conn, 'dbflow pg_restore');
  try {
    const sub = ctx.exec(pgRestore, ['--format=directory', `--jobs=${o.restoreJobs}`, ...target, dir], {
      env,
      stdin: 'ignore',
      stdout: 'ignore',
    });
    removeAfter(sub);
    await sub;
  } catch (error) {
    throw fail(error);
  }
}
