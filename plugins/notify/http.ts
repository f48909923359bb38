// One JSON request to a webhook, shared by the `webhook` and `slack` steps. The URL is never shown
// (webhook URLs carry their token in the path): messages name its scheme and host only.
import { CancelledError, DbflowError, type StepContext } from '../../src/plugin-api.js';
import { deadline } from './deadline.js';

/** What to send, and how the step calls itself in messages (`webhook`, `slack`). */
export interface JsonRequest {
  step: string;
  url: string;
  method: 'POST' | 'PUT';
  headers?: Record<string, string>;
  body: unknown;
  /** A duration, e.g. `10s`. */
  timeout: string;
}

/** A 2xx answer. */
export interface JsonResponse {
  status: number;
  text: string;
}

// Sends `body` as JSON; any answer but 2xx, a network failure or the timeout is a DbflowError.
export async function sendJson(ctx: StepContext<unknown>, request: JsonRequest): Promise<JsonResponse> {
  const { step } = request;
  const url = httpUrl(request.url, step);
  const target = `the webhook at ${url.origin}`;
  const headers = new Headers(request.headers);
  if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  if (!headers.has('user-agent')) headers.set('user-agent', 'dbflow');
  const limit = deadline(ctx.signal, request.timeout);
  ctx.log.debug(`${step}: ${request.method} ${url.origin}/…`);
  let response: Response;
  let text: string;
  try {
    // Redirects are not followed: the body (and any Authorization header) stays with the host the user named.
    response = await fetch(url, {
      method: request.method,
      headers,
      body: JSON.stringify(request.body),
      signal: limit.signal,
      redirect: 'manual',
    });
    text = await response.text();
  } catch (err) {
    if (limit.expired())
      throw new DbflowError(`${step}: ${target} did not answer within ${limit.text}; raise "timeout", or check the service.`);
    if (ctx.signal.aborted) throw new CancelledError(`${step}: stopped before ${target} answered.`);
    throw new DbflowError(
      `${step}: could not reach ${target} (${networkReason(err, url)}); check the URL's host and port, and the network.`,
      { cause: err },
    );
  }
  if (response.status < 200 || response.status > 299) {
    const said = snippet(text, url);
    throw new DbflowError(
      `${step}: ${target} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${said ? ` ("${said}")` : ''}; ${statusHint(response.status)}`,
    );
  }
  return { status: response.status, text };
}

// The URL, when it is http(s); the message never quotes it.
function httpUrl(value: string, step: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new DbflowError(
      `${step}: "url" is not an http(s) URL (its value is not shown: webhook URLs carry secrets); write "https://host/path…".`,
    );
  }
  if (url.username || url.password) {
    throw new DbflowError(
      `${step}: "url" carries a user or password before the host; send credentials in "headers" (e.g. Authorization) instead.`,
    );
  }
  return url;
}

// What to do about a non-2xx status.
function statusHint(status: number): string {
  if (status >= 300 && status < 400) return 'redirects are not followed: use the final URL.';
  if (status === 401 || status === 403 || status === 404 || status === 410)
    return 'check the URL (its token) and the credentials in "headers".';
  if (status >= 500) return 'the service failed; "retry:" on the step tries again.';
  return 'check the body and headers the service expects.';
}

// The start of the response body, one line, without the URL's path (which may carry the token).
function snippet(text: string, url: URL): string {
  let out = text;
  for (const part of [url.href, `${url.pathname}${url.search}`]) if (part.length > 1) out = out.split(part).join('…');
  out = out.replace(/\s+/g, ' ').trim();
  return out.length > 200 ? `${out.slice(0, 200)}…` : out;
}

// The system code of a failed connection (fetch wraps it), e.g. ECONNREFUSED; else the innermost message, without the URL.
function networkReason(err: unknown, url: URL): string {
  let message = '';
  for (
    let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0;
    e && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string' && /^E[A-Z_]+$|^UND_ERR/.test(e.code)) return e.code;
    if (typeof e.message === 'string' && e.message) message = e.message;
  }
  return snippet(message, url) || 'no answer';
}
