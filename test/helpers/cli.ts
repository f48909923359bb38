// Runs the dbflow CLI from source (through tsx) the way a user would, with colour and TTY off.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

/** The repository root (where package.json is). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const main = path.join(repoRoot, 'src', 'cli', 'main.ts');
const tsx = import.meta.resolve('tsx');

/** The node arguments that run `dbflow <args>` from source. */
export const dbflowNodeArgs = (args: readonly string[]): string[] => ['--import', tsx, main, ...args];

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
