// The one rule for relative paths in a pipeline: relative to the folder of the pipeline file.
import path from 'node:path';

const RELATIVE_FILE_URL = /^file:\/\/(\.\.?(?:\/.*)?)$/s;
const SQLITE_URL = /^sqlite:(?:\/\/)?(.*)$/s;

/**
 * A `file://./…`, `file://../…` or relative `sqlite:` URL made absolute against `baseDir` (the
 * pipeline's folder), so that it names the same place from any working directory; any other
 * value is returned as it is.
 */
export function anchorUrl(value: string, baseDir: string): string {
  const file = RELATIVE_FILE_URL.exec(value)?.[1];
  if (file !== undefined) return `file://${resolveKeepingSlash(baseDir, file)}`;
  const sqlite = SQLITE_URL.exec(value)?.[1];
  if (sqlite && !sqlite.startsWith('/') && sqlite !== ':memory:' && !sqlite.includes('\0'))
    return `sqlite:${path.resolve(baseDir, sqlite)}`;
  return value;
}

/** Every string inside `value` through anchorUrl (lists and mappings are walked; a new value is returned). */
export function anchorUrls(value: unknown, baseDir: string): unknown {
  if (typeof value === 'string') return anchorUrl(value, baseDir);
  if (Array.isArray(value)) return value.map((v) => anchorUrls(v, baseDir));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, anchorUrls(v, baseDir)]));
  return value;
}

// Only the leading `.`/`..` segments are resolved against the pipeline's folder; the rest stays as written, so a
// `..` further on (say from a template's value) is still there for the storage to refuse, not silently folded away.
function resolveKeepingSlash(baseDir: string, relative: string): string {
  const segments = relative.split('/');
  let lead = 0;
  while (lead < segments.length && (segments[lead] === '.' || segments[lead] === '..')) lead++;
  const base = path.resolve(baseDir, segments.slice(0, lead).join('/') || '.');
  const rest = segments.slice(lead).join('/');
  if (!rest) return relative.endsWith('/') && base !== '/' ? `${base}/` : base;
  return base === '/' ? `/${rest}` : `${base}/${rest}`;
}
