// Decryption failures as errors a user can act on: a key that does not fit is a KeyError, damaged data an IntegrityError.
import { DbflowError, IntegrityError, KeyError, type ArtifactLayer } from '../../src/plugin-api.js';
import { firstLine } from './first-line.js';

const WRONG_KEY = /session key|decryption key|no matching|key packet/i;

/** The reason openpgp.js gives for a failed integrity check; the native reader gives the same. */
export const MODIFIED = 'Modification detected.';

/** The reason openpgp.js gives for a message that ends early; the native reader gives the same. */
export const TRUNCATED = 'Unexpected end of packet';

// The passphrase or private key given does not decrypt this artifact.
export function wrongKeyError(layer: ArtifactLayer, cause?: unknown): KeyError {
  const fix = layer.mode === 'public-key' ? 'pass the private key of a recipient' : 'check the passphrase secret';
  return new KeyError(
    `openpgp: cannot decrypt: wrong passphrase or not encrypted for this key; ${fix}.`,
    layer.mode === 'public-key' ? 'private_key' : 'passphrase',
    'wrong',
    cause === undefined ? undefined : { cause },
  );
}

// openpgp's (or the native reader's) failures as messages a user can act on; data problems are IntegrityErrors.
export function decryptError(error: unknown, layer: ArtifactLayer): Error {
  if (error instanceof DbflowError) return error;
  const reason = firstLine(error);
  if (WRONG_KEY.test(reason)) return wrongKeyError(layer, error);
  if (/modification detected/i.test(reason)) {
    return new IntegrityError(
      'openpgp: integrity check (MDC) failed: the encrypted data was modified or corrupted, or this is the wrong passphrase or key; discard everything read from it.',
      { cause: error },
    );
  }
  return new IntegrityError(
    `openpgp: cannot decrypt (${reason}): the data is corrupt, truncated or not OpenPGP, or this is the wrong passphrase or key.`,
    { cause: error },
  );
}
