// Host-key checking against OpenSSH known_hosts files (plain, wildcard and hashed entries, @revoked).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One key recorded for the host. */
export interface KnownKey {
  file: string;
  line: number;
  type: string;
  key: Buffer;
  revoked: boolean;
}

/** What the known_hosts files say about a host key. */
export type HostKeyVerdict =
  | { status: 'known' }
  | { status: 'revoked'; entry: KnownKey }
  | { status: 'changed'; entries: KnownKey[] }
  | { status: 'unknown'; otherTypes: string[] };

/** The name known_hosts records a server under: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa` …). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown';
}

/** `SHA256:…`, the fingerprint `ssh-keygen -lf` and `ssh` show. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Every non-CA key that the known_hosts text `text` (of file `file`) records for `name`. */
export function keysFor(text: string, file: string, name: string): KnownKey[] {
  const found: KnownKey[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith('#')) continue;
    const marker = fields[0].startsWith('@') ? fields.shift() : undefined;
    const [hosts, type, b64] = fields;
    // Certificate authorities sign host certificates, which this client does not use.
    if (marker === '@cert-authority' || !hosts || !type || !b64 || !hostsMatch(hosts, name)) continue;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) continue;
    found.push({ file, line: i + 1, type: keyType(key), key, revoked: marker === '@revoked' });
  }
  return found;
}

/** Checks the key a server presented against the keys recorded for it. */
export function verdictFor(known: readonly KnownKey[], presented: Buffer): HostKeyVerdict {
  const revoked = known.find((k) => k.revoked && k.key.equals(presented));
  if (revoked) return { status: 'revoked', entry: revoked };
  const trusted = known.filter((k) => !k.revoked);
  if (trusted.some((k) => k.key.equals(presented))) return { status: 'known' };
  const type = keyType(presented);
  const sameType = trusted.filter((k) => k.type === type);
  if (sameType.length) return { status: 'changed', entries: sameType };
  return { status: 'unknown', otherTypes: [...new Set(trusted.map((k) => k.type))] };
}

const ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};
const DEFAULT_ORDER = Object.values(ALGORITHMS).flat();

/**
 * The host-key algorithms to offer, those of the recorded keys first (as OpenSSH does), so that a
 * server with several host keys presents one that known_hosts has. `undefined`: the library default.
 */
export function hostKeyAlgorithms(known: readonly KnownKey[]): string[] | undefined {
  const preferred = [...new Set(known.filter((k) => !k.revoked).flatMap((k) => ALGORITHMS[k.type] ?? []))];
  if (!preferred.length) return undefined;
  return [...preferred, ...DEFAULT_ORDER.filter((a) => !preferred.includes(a))];
}

// A host field: `|1|salt|hash` (hashed), or comma-separated patterns with `*`, `?` and `!` negation.
function hostsMatch(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let matched = false;
  for (const pattern of hosts.split(',')) {
    const negated = pattern.startsWith('!');
    if (!patternMatches(negated ? pattern.slice(1) : pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function patternMatches(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}
