// The OpenPGP settings that keep output decryptable by stock gpg 2.x, and the stream chunk size.
import { randomBytes } from 'node:crypto';
import type { PartialConfig, PublicKey, SessionKey } from 'openpgp';
import type { Openpgp } from './openpgp-lib.js';

/** Bytes handed to openpgp per chunk: its cost is per chunk, so large chunks are much faster. */
export const CHUNK_BYTES = 256 * 1024;

/** The cipher of every message, as recorded in the artifact's layer. */
export const CIPHER = 'aes256';

// SEIPDv1 (the MDC packet, not AEAD), v4 SKESK with iterated S2K, AES-256, no compression.
export function encryptConfig({ enums }: Openpgp): PartialConfig {
  return {
    aeadProtect: false,
    v6Keys: false,
    s2kType: enums.s2k.iterated,
    preferredSymmetricAlgorithm: enums.symmetric.aes256,
    preferredCompressionAlgorithm: enums.compression.uncompressed,
  };
}

// Plaintext is released while it streams; the MDC failure then errors the stream at its end.
export const decryptConfig: PartialConfig = {
  allowUnauthenticatedStream: true,
};

// A fresh AES-256 session key without an AEAD algorithm: this pins SEIPDv1 whatever a key advertises.
export function sessionKey(): SessionKey {
  return { data: new Uint8Array(randomBytes(32)), algorithm: CIPHER };
}

/** What the session key is encrypted to: passphrases (SKESK packets) or public keys (PKESK packets). */
export type EncryptKeys = { passwords: string[] } | { encryptionKeys: PublicKey[] };
