// FNV-1a 64 of a row's canonical text, and the order-independent sum of those hashes.

/**
 * Adds FNV-1a 64 hashes (over UTF-8 bytes) of strings, modulo 2^64. A sum does not depend on
 * the order of the rows and counts duplicates. The arithmetic runs in 16-bit limbs, because
 * BigInt is an order of magnitude slower on millions of rows.
 */
export class Fnv64Sum {
  private hi = 0;
  private lo = 0;
  private h0 = 0;
  private h1 = 0;
  private h2 = 0;
  private h3 = 0;

  /** Adds the hash of one row's text. */
  add(text: string): void {
    this.h0 = 0x2325;
    this.h1 = 0x8422;
    this.h2 = 0x9ce4;
    this.h3 = 0xcbf2;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) {
        this.byte(c);
        continue;
      }
      let cp = c;
      if (c >= 0xd800 && c < 0xe000) {
        const d = text.charCodeAt(i + 1);
        // A surrogate pair is one code point; a lone surrogate is U+FFFD, as Buffer.from encodes it.
        if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
          cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else {
          cp = 0xfffd;
        }
      }
      if (cp < 0x800) {
        this.byte(0xc0 | (cp >> 6));
      } else if (cp < 0x10000) {
        this.byte(0xe0 | (cp >> 12));
        this.byte(0x80 | ((cp >> 6) & 0x3f));
      } else {
        this.byte(0xf0 | (cp >> 18));
        this.byte(0x80 | ((cp >> 12) & 0x3f));
        this.byte(0x80 | ((cp >> 6) & 0x3f));
      }
      this.byte(0x80 | (cp & 0x3f));
    }
    this.lo += this.h1 * 0x10000 + this.h0;
    if (this.lo >= 0x1_0000_0000) {
      this.lo -= 0x1_0000_0000;
      this.hi += 1;
    }
    this.hi = (this.hi + this.h3 * 0x10000 + this.h2) % 0x1_0000_0000;
  }

  /** The sum as 16 lowercase hex digits. */
  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }

  // h = (h ^ b) * 0x100000001b3 mod 2^64, where the multiply is h * 0x1b3 + (h << 40).
  private byte(b: number): void {
    const h0 = this.h0 ^ b;
    const t0 = h0 * 0x1b3;
    const t1 = this.h1 * 0x1b3 + (t0 >>> 16);
    const t2 = this.h2 * 0x1b3 + (h0 << 8) + (t1 >>> 16);
    const t3 = this.h3 * 0x1b3 + (this.h1 << 8) + (t2 >>> 16);
    this.h0 = t0 & 0xffff;
    this.h1 = t1 & 0xffff;
    this.h2 = t2 & 0xffff;
    this.h3 = t3 & 0xffff;
  }
}
