// Runs the dbflow CLI at a real pseudo-terminal (util-linux `script`), so a test can press Ctrl-C like a user.
import { execa, type ResultPromise } from 'execa';
import { dbflowNodeArgs, repoRoot } from './cli.js';

/** A word for `sh -c`, single-quoted. */
function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** `dbflow <args>` started at a pseudo-terminal; its output, as the terminal received it, is the subprocess's stdout. */
export interface PtyDbflow {
  child: ResultPromise<{ reject: false; stripFinalNewline: false }>;
  /** Ctrl-C: the terminal sends SIGINT to its foreground process group (dbflow and the programs it runs). */
  interrupt: () => void;
}

/** Start `dbflow <args>` at a 120×40 terminal, without CI (so the live view is on). */
export function dbflowAtTerminal(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): PtyDbflow {
  const command = ['exec', process.execPath, ...dbflowNodeArgs(args)].map((w, i) => (i === 0 ? w : quote(w))).join(' ');
  const child = execa('script', ['-qfec', `stty cols 120 rows 40; ${command}`, '/dev/null'], {
    cwd: options.cwd ?? repoRoot,
    env: { NO_COLOR: '1', CI: undefined, FORCE_COLOR: undefined, TERM: 'xterm', ...options.env },
    extendEnv: true,
    reject: false,
    stripFinalNewline: false,
    stdin: 'pipe',
  });
  return { child, interrupt: () => void child.stdin.write('\x03') };
}
