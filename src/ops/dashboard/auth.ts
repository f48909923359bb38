// Who may act: a token from a secret, exchanged for a session cookie (HttpOnly, Secure, SameSite=Strict); CSRF tokens on forms.
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';

const SESSION_MS = 12 * 3600_000;

/** Sessions kept in memory: a restart signs everyone out. */
export class Sessions {
  private readonly live = new Map<string, number>();

  constructor(private readonly token: string | undefined) {}

  /** True when `given` is the token (compared in constant time). */
  tokenMatches(given: string | undefined): boolean {
    if (this.token === undefined || given === undefined) return false;
    const [a, b] = [createHash('sha256').update(given).digest(), createHash('sha256').update(this.token).digest()];
    return timingSafeEqual(a, b);
  }

  open(): string {
    const id = randomBytes(32).toString('base64url');
    this.live.set(id, Date.now() + SESSION_MS);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (!id) return false;
    const until = this.live.get(id);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.live.delete(id);
      return false;
    }
    return true;
  }

  close(id: string | undefined): void {
    if (id) this.live.delete(id);
  }
}

/** The bearer token of an Authorization header, if any. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return m?.[1]?.trim();
}

/** True when a request's Origin (or Referer) names another site than the one it was sent to. */
export function crossSite(headers: Record<string, string | string[] | undefined>): boolean {
  const host = String(headers.host ?? '');
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  for (const h of ['origin', 'referer']) {
    const v = headers[h];
    if (typeof v !== 'string' || v === 'null') {
      if (v === 'null') return true;
      continue;
    }
    try {
      return new URL(v).host !== host;
    } catch {
      return true;
    }
  }
  return false;
}
