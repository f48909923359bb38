// How a step (or a command outside a run) runs a program: no shell, killed on cancel, no inherited secrets, stderr to the log.
import path from 'node:path';
import type { execa as Execa, Options as ExecaOptions, ResultPromise } from 'execa';
import type { Redactor } from './secrets.js';

/** Where a program runs for. */
export interface ProgramScope {
  execa: typeof Execa;
  signal: AbortSignal;
  /** Knows every secret: inherited variables holding one stay out of the program's environment. */
  redactor: Redactor;
  /** Variables left out besides those (e.g. the one a passphrase came from). */
  hiddenEnv?: readonly string[];
  /** Receives each stderr line, prefixed with the program's name (when the caller does not take stderr). */
  log: (line: string) => void;
}

/** Runs `file` with `args` for `scope` (see StepContext.exec). */
export function runProgram(scope: ProgramScope, file: string, args: readonly string[], options: ExecaOptions = {}): ResultPromise {
  const hidden = Object.keys(process.env).filter((k) => {
    const v = process.env[k];
    return scope.hiddenEnv?.includes(k) || (v !== undefined && v !== '' && scope.redactor.redact(v) !== v);
  });
  const env = { ...Object.fromEntries(hidden.map((k) => [k, undefined])), ...options.env };
  const sub = scope.execa(file, args, { cancelSignal: scope.signal, forceKillAfterDelay: 2000, ...options, env });
  const stderr = sub.stderr;
  if (stderr && options.stderr === undefined) {
    stderr.setEncoding('utf8');
    let buf = '';
    stderr.on('data', (chunk: string) => {
      const lines = (buf += chunk).split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) scope.log(`${path.basename(file)}: ${l}`);
    });
  }
  return sub;
}
