// Runs the dbflow CLI from source (through tsx) the way a user would, with colour and TTY off.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

/** The repository root (where package.json is). */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const main = path.join(repoRoot, 'src', 'cli', 'main.ts');
const tsx = import.meta.resolve('tsx');

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
  return execa(process.execPath, ['--import', tsx, main, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { NO_COLOR: '1', CI: 'true', FORCE_COLOR: undefined, ...options.env },
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

/** True when text looks like it holds a JavaScript stack trace. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+(\(|:\d+:\d+)/m.test(text) || text.includes('node:internal');
}
