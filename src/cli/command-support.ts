// What the repository commands share: keys from a file or the environment, interrupts, aligned tables.
import { readFileSync } from 'node:fs';
import { CancelledError, ExitCode, UsageError } from '../errors.js';
import type { DecodeKeys } from '../plugins/types.js';
import { parseDuration } from '../spec/duration.js';
import type { Io } from './io.js';

/** The environment variable a passphrase may come from (never argv). */
export const PASSPHRASE_ENV = 'DBFLOW_PASSPHRASE';
/** The environment variable the restore target's password comes from (never argv). */
export const TARGET_PASSWORD_ENV = 'DBFLOW_TARGET_PASSWORD';

/** Options that name key files. */
export interface KeyOptions {
  passphraseFile?: string;
  privateKeyFile?: string;
}

/** Decryption keys: the passphrase from --passphrase-file, else from DBFLOW_PASSPHRASE; a private key from --private-key-file. */
export function readKeys(o: KeyOptions, env: NodeJS.ProcessEnv = process.env): DecodeKeys {
  const passphrase =
    o.passphraseFile !== undefined ? readKeyFile(o.passphraseFile, '--passphrase-file').replace(/\r?\n$/, '') : env[PASSPHRASE_ENV];
  const privateKey = o.privateKeyFile !== undefined ? readKeyFile(o.privateKeyFile, '--private-key-file') : undefined;
  return { ...(passphrase !== undefined && passphrase !== '' && { passphrase }), ...(privateKey !== undefined && { privateKey }) };
}

function readKeyFile(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag} "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
}

/** A hint for a decode failure when no key was given. */
export function keyHint(keys: DecodeKeys): string {
  return keys.passphrase === undefined && keys.privateKey === undefined
    ? `\n(no passphrase was given: dbflow reads it from --passphrase-file F or the ${PASSPHRASE_ENV} environment variable, never from the command line)`
    : '';
}

/**
 * Runs `fn` with a signal that SIGINT/SIGTERM abort (child programs are killed, scratch files
 * removed); a second signal exits at once. An interrupted command ends with a CancelledError.
 */
export async function interruptible<T>(io: Io, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      io.err(`dbflow: ${sig} again: exiting now.`);
      process.exit(ExitCode.interrupted);
    }
    io.err(`dbflow: ${sig}: stopping ${what} (send it again to exit at once)…`);
    controller.abort(new CancelledError(`${what} interrupted`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Rows as aligned columns (the last column is not padded). */
export function table(rows: string[][], indent = ''): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
  );
}

/** A non-negative integer option. */
export function parseCount(value: string | undefined, flag: string): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} must be a whole number (0 or more), not "${value}".`);
  return n;
}

/** A duration flag (`30s`, `10m`, `2h`, `1d`) in milliseconds, or a UsageError naming the flag. */
export function parseDurationFlag(value: string, flag: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`${flag} must be a duration such as 24h, 90m, 30s or 2d, not "${value}".`);
  }
}

/** An ISO time without milliseconds: `2026-11-24 02:00:00Z`. */
export function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** A URL with the password (if any) masked. */
export function displayUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@');
}

/** The keys' values, to mask in what is shown. */
export function secretsOf(keys: DecodeKeys): string[] {
  return [keys.passphrase, keys.privateKey].filter((s): s is string => s !== undefined);
}
