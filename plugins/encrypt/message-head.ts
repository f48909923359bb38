// The start of a binary OpenPGP message: its key packets, and whether a SEIPD v1 packet follows them.
import { readHeader, TAG } from './packet-header.js';

/** What the start of a message tells. */
export type MessageHead =
  /** Too few bytes yet. */
  | { kind: 'more' }
  /** Anything but key packets and a SEIPD v1 packet (AEAD, SEIPD v2, old SED, no key packet, not OpenPGP…). */
  | { kind: 'other' }
  | {
      kind: 'seipd1';
      /** The key packets (PKESK and SKESK), as written. */
      keyPackets: Uint8Array;
      hasPkesk: boolean;
      hasSkesk: boolean;
      /** Offset of the SEIPD packet's tag byte. */
      seipdAt: number;
      /** The first 18 bytes of ciphertext (for the quick check). */
      firstCipher: Uint8Array;
    };

// Key packets with definite lengths, then a SEIPD packet whose first chunk holds its version (1) and 18 bytes.
export function readMessageHead(buf: Uint8Array): MessageHead {
  let at = 0;
  let hasPkesk = false;
  let hasSkesk = false;
  for (;;) {
    let header;
    try {
      header = readHeader(buf, at);
    } catch {
      return { kind: 'other' };
    }
    if (header === undefined) return { kind: 'more' };
    if (header.tag === TAG.pkesk || header.tag === TAG.skesk) {
      if (header.kind !== 'definite') return { kind: 'other' };
      if (at + header.size + header.length > buf.length) return { kind: 'more' };
      hasPkesk ||= header.tag === TAG.pkesk;
      hasSkesk ||= header.tag === TAG.skesk;
      at += header.size + header.length;
      continue;
    }
    if (header.tag !== TAG.seipd || at === 0 || header.kind === 'indeterminate' || header.length < 19) return { kind: 'other' };
    const body = at + header.size;
    if (buf.length < body + 19) return { kind: 'more' };
    if (buf[body] !== 1) return { kind: 'other' };
    return {
      kind: 'seipd1',
      keyPackets: buf.subarray(0, at),
      hasPkesk,
      hasSkesk,
      seipdAt: at,
      firstCipher: buf.subarray(body + 1, body + 19),
    };
  }
}
