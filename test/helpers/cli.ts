// Runs the dbflow CLI the way a user would, with colour and TTY off: the build when it is up to date, else the source.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

/** The repository root (where package.json is). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const builtMain = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

// The newest modification time of the files under `dir` (0 when it does not exist).
function newestUnder(dir: string): number {
  let newest = 0;
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return 0;
  }
  for (const name of names) {
    const stats = statSync(path.join(dir, name));
    if (stats.isFile()) newest = Math.max(newest, stats.mtimeMs);
  }
  return newest;
}

/**
 * How the tests start the CLI. `npm test` builds first, and the build starts in a third of the time the source takes
 * through tsx (0.25 against 0.75 CPU-s), which adds up over a thousand runs; a build older than any source file (a
 * test run by hand after an edit) is passed over for the source. DBFLOW_TEST_CLI=source or =build decides instead.
 */
function cliEntry(): string[] {
  const source = ['--import', import.meta.resolve('tsx'), path.join(repoRoot, 'src', 'cli', 'main.ts')];
  const chosen = process.env.DBFLOW_TEST_CLI;
  if (chosen === 'source') return source;
  if (chosen === 'build') return [builtMain];
  let built: number;
  try {
    built = statSync(builtMain).mtimeMs;
  } catch {
    return source;
  }
  const fresh = ['src', 'plugins', 'schemas'].every((dir) => newestUnder(path.join(repoRoot, dir)) <= built);
  return fresh ? [builtMain] : source;
}

const entry = cliEntry();

/** The node arguments that run `dbflow <args>`. */
export const dbflowNodeArgs = (args: readonly string[]): string[] => [...entry, ...args];

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Added to (or, with `undefined`, removed from) the inherited environment. */
  env?: Record<string, string | undefined>;
}

/** Start `dbflow <args>`; the returned subprocess can be signalled. */
export function spawnDbflow(args: readonly string[], options: CliOptions = {}): ResultPromise<{ reject: false; stripFinalNewline: false }> {
  return execa(process.execPath, dbflowNodeArgs(args), {
    cwd: options.cwd ?? repoRoot,
    // The state folder defaults to `.dbflow` in the test's folder, never the real home ('' for the real default).
    env: {
      NO_COLOR: '1',
      CI: 'true',
      FORCE_COLOR: undefined,
      ...options.env,
      DBFLOW_STATE_DIR: options.env?.DBFLOW_STATE_DIR ?? path.join(options.cwd ?? repoRoot, '.dbflow'),
    },
    reject: false,
    stripFinalNewline: false,
  });
}

/** Run `dbflow <args>` to the end; exact stdout and stderr (final newline kept). */
export async function dbflow(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const r = await spawnDbflow(args, options);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Map `items` through `fn` with at most `limit` calls running at once, keeping order. */
export { mapLimit } from '../../src/repo/repository.js';

/** `text` with every character a regular expression gives a meaning to escaped, to match it literally. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True when text looks like it holds a JavaScript stack trace. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+(\(|:\d+:\d+)/m.test(text) || text.includes('node:internal');
}

/** Run `dbflow <args>` with stdout and stderr appended to one file, as `2>&1` gives them: the exit code and every line in the order written. */
export async function dbflowInterleaved(args: readonly string[], options: CliOptions = {}): Promise<{ exitCode: number; output: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-out-'));
  const file = path.join(dir, 'output');
  try {
    const r = await execa(process.execPath, dbflowNodeArgs(args), {
      cwd: options.cwd ?? repoRoot,
      env: { NO_COLOR: '1', CI: 'true', FORCE_COLOR: undefined, ...options.env },
      reject: false,
      stdin: 'ignore',
      stdout: { file, append: true },
      stderr: { file, append: true },
    });
    return { exitCode: r.exitCode ?? -1, output: readFileSync(file, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
