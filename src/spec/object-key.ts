// The check of a storage URL rendered from templates: it stays inside its repository, whatever a value put in it.
import { UsageError } from '../errors.js';
import { anchorUrls } from './paths.js';
import { renderValue } from './templates.js';

/**
 * What could turn a rendered storage URL outside its repository, in words, or undefined: a `..`, `.` or empty
 * segment (a `/` at the start of a rendered part, `//`), or a NUL or control character. Segments are checked
 * after the URL's root: `file://` `/`, `./` or leading `../`; the bucket of `s3://`; the host (and `~`) of `sftp://`.
 */
export function keyProblem(url: string): string | undefined {
  const control = /\p{Cc}/u.exec(url);
  if (control) return `holds the control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/is.exec(url);
  if (!m) return undefined; // not a storage URL: the storage refuses it with its own message
  const segments = m[1]!.toLowerCase() === 'file' ? fileSegments(m[2]!) : m[2]!.split('/').slice(1);
  if (segments[0] === '~') segments.shift();
  if (segments.includes('..')) return 'has a ".." segment';
  if (segments.includes('.')) return 'has a "." segment';
  if (segments.includes('')) return segments.at(-1) === '' ? 'ends with "/" (it names a folder)' : 'has an empty segment ("//")';
  return undefined;
}

// The segments of a file:// path below its root: `/`, `./`, or the leading `../` of a relative path.
function fileSegments(written: string): string[] {
  const segments = written.split('/');
  if (segments[0] === '') segments.shift();
  else if (segments[0] === '.') segments.shift();
  else while (segments[0] === '..') segments.shift();
  return segments;
}

/** `url` with its control characters written as escapes (the engine masks secrets in a message, so the rest stays as is). */
export function visibleUrl(url: string): string {
  return url.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A storage URL prefix of the pipeline (`archive: to:`, `marks: to:`) rendered from its template and anchored at the
 * pipeline's folder; refused (a usage error naming `what`) when it is no storage URL or a value turned it outside
 * its repository.
 */
export function renderedRoot(template: string, context: Record<string, unknown>, dir: string, what: string): string {
  const to = String(anchorUrls(renderValue(template, context), dir)).replace(/\/+$/, '');
  const problem = /^[a-z][a-z0-9+.-]*:\/\//i.test(to) ? keyProblem(`${to}/x`) : 'is not a storage URL (file://, s3://, sftp://)';
  if (problem)
    throw new UsageError(
      `${what}: "to" renders to "${visibleUrl(to)}", which ${problem}: what it stores could land outside its repository; nothing was stored. Check the values that fill its template (environment variables, vars).`,
    );
  return to;
}
