// `verify`: every artifact of a backup is read back and decoded to nowhere, and checked against its manifest.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CancelledError, IntegrityError, keyErrorIn, RepositoryError, type KeyError } from '../errors.js';
import type { DecodeKeys, EdgeStats } from '../plugins/types.js';
import { storedArtifact, type Backup } from './backup.js';
import { readArtifact } from './read-artifact.js';
import type { DecodeScope } from './restore.js';

/** What verifying one artifact found. */
export interface ArtifactVerdict {
  path: string;
  url: string;
  database: string;
  ok: boolean;
  /** Stored bytes (as the manifest records them). */
  bytes: number;
  /** The decoded dump, when every check passed. */
  raw?: EdgeStats;
  /** Why it failed: a message that names the object. */
  error?: string;
  /**
   * False when the failure says nothing about the backup (no key, wrong passphrase, a missing
   * program): the object could not be checked. True for a pass, damaged data or a missing object.
   */
  conclusive: boolean;
  /** The key that was missing or wrong, when that is why it could not be checked. */
  key?: KeyError;
}

/**
 * Checks every artifact of `backup`: the stored object's size and sha256, each layer's own integrity
 * check (OpenPGP MDC, zstd frame checksums), and the decoded dump's size and sha256. The plaintext
 * goes nowhere. One verdict per artifact, in manifest order; an interrupt stops at once.
 */
export async function verifyBackup(
  scope: DecodeScope,
  backup: Backup,
  keys: DecodeKeys,
  signal: AbortSignal,
  onVerdict?: (v: ArtifactVerdict) => void,
): Promise<ArtifactVerdict[]> {
  const verdicts: ArtifactVerdict[] = [];
  for (const recorded of backup.manifest.artifacts) {
    const artifact = storedArtifact(backup, recorded);
    const base = { path: recorded.path, url: artifact.url, database: recorded.database, bytes: recorded.bytes };
    let verdict: ArtifactVerdict;
    try {
      const raw = await readArtifact(scope, artifact, keys, (s) => pipeline(s, nowhere()), { signal, settleDigest: true });
      verdict = { ...base, ok: true, raw, conclusive: true };
    } catch (err) {
      if (err instanceof CancelledError || signal.aborted)
        throw err instanceof CancelledError ? err : new CancelledError('verify interrupted');
      const conclusive = err instanceof IntegrityError || err instanceof RepositoryError;
      const key = keyErrorIn(err);
      verdict = {
        ...base,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
        conclusive: conclusive && !key,
        ...(key && { key }),
      };
    }
    verdicts.push(verdict);
    onVerdict?.(verdict);
  }
  return verdicts;
}

// A sink that drops every byte.
function nowhere(): Writable {
  return new Writable({ highWaterMark: 1 << 20, write: (_chunk, _enc, done) => done() });
}
