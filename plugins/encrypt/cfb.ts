// OpenPGP's CFB mode (zero IV, no resync) in large in-place steps, built on node:crypto's AES.
import { createCipheriv, type Cipher } from 'node:crypto';

/** AES key sizes by OpenPGP algorithm name. */
const AES_BITS: Record<string, number> = { aes128: 128, aes192: 192, aes256: 256 };

/** Whether `algorithm` (an openpgp.js symmetric algorithm name) is an AES this module handles. */
export function isAes(algorithm: string | null | undefined): boolean {
  return algorithm !== null && algorithm !== undefined && algorithm in AES_BITS;
}

// CFB: C[i] = P[i] ^ E(C[i-1]). OpenSSL runs CFB one block at a time; instead, every keystream
// block E(C[i-1]) is computed in one native call: when encrypting, as the CBC encryption of the
// plaintext with IV E(0) (its output block i is E(P[i] ^ E(C[i-1])) = E(C[i])); when decrypting,
// as the ECB encryption of the ciphertext (ECB runs several blocks at once). The XOR with the
// input, one block behind, then runs on 64-bit words, in place in the buffer OpenSSL returned:
// that buffer becomes the output, and the input buffer can be reused at once.

/** A CFB encryptor or decryptor over a whole message body, fed in order. */
export class OpenpgpCfb {
  private readonly cipher: Cipher;
  /** The keystream block for the next data block, as two words. */
  private readonly next = new BigUint64Array(2);

  constructor(algorithm: string, key: Uint8Array, direction: 'encrypt' | 'decrypt') {
    const bits = AES_BITS[algorithm];
    if (bits === undefined) throw new Error(`unsupported cipher ${algorithm}`);
    const first = aligned(aesBlock(bits, key, Buffer.alloc(16)));
    this.cipher = direction === 'encrypt' ? createCipheriv(`aes-${bits}-cbc`, key, first) : createCipheriv(`aes-${bits}-ecb`, key, null);
    this.cipher.setAutoPadding(false);
    this.next.set(words(first));
  }

  /** The next blocks of the body, encrypted or decrypted, as a new buffer; `data` (whole blocks, at an 8-byte aligned offset) is left as it was. */
  blocks(data: Buffer): Buffer {
    if (data.length % 16 !== 0 || data.byteOffset % 8 !== 0) throw new Error('cfb: misaligned blocks');
    if (data.length === 0) return Buffer.alloc(0);
    const out = aligned(this.cipher.update(data));
    xorBehind(words(out), words(data), this.next);
    return out;
  }

  /** The body's last, partial block (under 16 bytes), encrypted or decrypted, as a new buffer. */
  tail(data: Buffer): Buffer {
    if (data.length >= 16) throw new Error('cfb: the tail is a partial block');
    const out = Buffer.from(data);
    const key = Buffer.from(this.next.buffer);
    for (let i = 0; i < out.length; i++) out[i]! ^= key[i]!;
    return out;
  }
}

// out[i] = input[i] ^ out[i - 2] (one block behind), from the end so that out[i - 2] is still the keystream;
// the first block takes `next`, and `next` becomes the last keystream block.
function xorBehind(out: BigUint64Array, input: BigUint64Array, next: BigUint64Array): void {
  const n = out.length;
  const last0 = out[n - 2]!;
  const last1 = out[n - 1]!;
  let i = n - 1;
  for (; i >= 5; i -= 4) {
    out[i] = input[i]! ^ out[i - 2]!;
    out[i - 1] = input[i - 1]! ^ out[i - 3]!;
    out[i - 2] = input[i - 2]! ^ out[i - 4]!;
    out[i - 3] = input[i - 3]! ^ out[i - 5]!;
  }
  for (; i >= 2; i--) out[i] = input[i]! ^ out[i - 2]!;
  out[1] = input[1]! ^ next[1]!;
  out[0] = input[0]! ^ next[0]!;
  next[0] = last0;
  next[1] = last1;
}

function aesBlock(bits: number, key: Uint8Array, block: Buffer): Buffer {
  const ecb = createCipheriv(`aes-${bits}-ecb`, key, null);
  ecb.setAutoPadding(false);
  return ecb.update(block);
}

function words(b: Buffer): BigUint64Array {
  return new BigUint64Array(b.buffer, b.byteOffset, b.length >> 3);
}

// `b`, or a copy of it that starts at an offset that is a multiple of 8.
function aligned(b: Buffer): Buffer {
  if (b.byteOffset % 8 === 0) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

/** A buffer of `size` bytes whose start is 8-byte aligned (its own memory, never a pool's). */
export function alignedBuffer(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

/** The bytes a CFB stream encrypts or decrypts per native call: small enough to stay in cache. */
export const CFB_SLICE = 64 * 1024;

/**
 * OpenPGP's quick check (RFC 4880 §5.13): with the right key, the first 18 bytes of a SEIPD body
 * decrypt to 16 random bytes whose last two repeat. False means a wrong key (or damaged data).
 */
export function quickCheck(algorithm: string, key: Uint8Array, first: Uint8Array): boolean {
  const bits = AES_BITS[algorithm];
  if (bits === undefined || first.length < 18) throw new Error('cfb: quick check needs an AES key and 18 bytes');
  const stream = aesBlock(bits, key, Buffer.concat([Buffer.alloc(16), first.subarray(0, 16)]));
  return (first[14]! ^ stream[14]!) === (first[16]! ^ stream[16]!) && (first[15]! ^ stream[15]!) === (first[17]! ^ stream[17]!);
}
