// Secret values: read from env or file, and masked in every line dbflow writes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DbflowError } from '../errors.js';
import type { DatabaseConfig } from '../plugins/types.js';
import type { SecretSource } from '../spec/pipeline.js';

/** Reads each declared secret; an unreadable one is an error that names it, never its value. */
export function readSecrets(
  sources: Record<string, SecretSource>,
  env: Record<string, string | undefined>,
  baseDir: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, src] of Object.entries(sources)) {
    if ('env' in src) {
      const v = env[src.env];
      if (v === undefined) throw new DbflowError(`secret "${name}": environment variable "${src.env}" is not set.`);
      if (v === '') throw new DbflowError(`secret "${name}": environment variable "${src.env}" is empty.`);
      out[name] = v;
    } else {
      try {
        out[name] = readSecretFile(path.resolve(baseDir, src.file));
      } catch (err) {
        throw new DbflowError(`secret "${name}": cannot read file "${src.file}" (${(err as NodeJS.ErrnoException).code}).`);
      }
      if (out[name] === '') throw new DbflowError(`secret "${name}": file "${src.file}" is empty.`);
    }
  }
  return out;
}

// A secret file's value: its text without one final line break.
function readSecretFile(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}

/** Whether a secret file can be read and holds a value (validation reads it as a run would). */
export function secretFileState(file: string): 'readable' | 'empty' | 'unreadable' {
  try {
    return readSecretFile(file) === '' ? 'empty' : 'readable';
  } catch {
    return 'unreadable';
  }
}

/**
 * Replaces every known secret value (and its URL-encoded form) by `***` in text shown to people: logs,
 * errors, events, summaries. Never applied to data: a manifest, an object key or a count.
 */
export class Redactor {
  private values: string[] = [];

  add(value: string): void {
    if (value.length < 3) return; // masking one or two characters would garble every line
    for (const v of new Set([value, encodeURIComponent(value)])) if (!this.values.includes(v)) this.values.push(v);
    this.values.sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const v of this.values) out = out.split(v).join('***');
    return out;
  }

  /** A copy of a JSON-like value for display: every string value redacted; keys, numbers and booleans as they are. */
  redactValue<T>(value: T): T {
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.walk(v));
    if (value instanceof Date || value === null || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.walk(v)]));
  }
}

/** The passwords a database entry carries: its `password` and one written into its URL. */
export function passwordsOf(db: Pick<DatabaseConfig, 'url' | 'password'>): string[] {
  const out = db.password ? [db.password] : [];
  const inUrl = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:([^/?#@]*)@/i.exec(db.url)?.[1];
  if (inUrl) {
    out.push(inUrl);
    try {
      out.push(decodeURIComponent(inUrl));
    } catch {
      // a malformed escape: the raw form is masked
    }
  }
  return out;
}
