// How a step (or a command outside a run) runs a program: no shell, killed on cancel, a minimal environment, stderr to the log.
import path from 'node:path';
import type { execa as Execa, Options as ExecaOptions, ResultPromise } from 'execa';
import type { Redactor } from './secrets.js';

/** Where a program runs for. */
export interface ProgramScope {
  execa: typeof Execa;
  signal: AbortSignal;
  /** Knows every secret: no variable holding one is inherited by a program. */
  redactor: Redactor;
  /** Variables never passed, not even when the caller sets them (e.g. the one a passphrase came from). */
  hiddenEnv?: readonly string[];
  /** Receives each stderr line, prefixed with the program's name (when the caller does not take stderr). */
  log: (line: string) => void;
}

// What a program inherits: finding programs, the user's home (~/.pgpass, ~/.my.cnf), locale and time zone.
const INHERITED = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR']);
const inherited = (name: string): boolean => INHERITED.has(name) || name.startsWith('LC_');

/**
 * The whole environment of a program: the few inherited variables above plus what the caller sets
 * in `env`. A variable that holds a secret is never inherited, and one copied from dbflow's own
 * environment into `env` is dropped too; names in `hiddenEnv` are never passed.
 */
export function programEnv(
  scope: Partial<Pick<ProgramScope, 'redactor' | 'hiddenEnv'>> = {},
  env: ExecaOptions['env'] = {},
): Record<string, string> {
  const holdsSecret = (v: string | undefined): boolean =>
    v !== undefined && v !== '' && scope.redactor !== undefined && scope.redactor.redact(v) !== v;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && inherited(k) && !holdsSecret(v)) out[k] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else if (!(v === process.env[k] && holdsSecret(v))) out[k] = v;
  }
  for (const k of scope.hiddenEnv ?? []) delete out[k];
  return out;
}

/** Runs `file` with `args` for `scope` (see StepContext.exec). */
export function runProgram(scope: ProgramScope, file: string, args: readonly string[], options: ExecaOptions = {}): ResultPromise {
  const env = programEnv(scope, options.env);
  const sub = scope.execa(file, args, { cancelSignal: scope.signal, forceKillAfterDelay: 2000, ...options, env, extendEnv: false });
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
