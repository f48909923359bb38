// Checks of a database file's 100-byte header: is it SQLite, and is it whole.
import { open } from 'node:fs/promises';
import { IntegrityError } from '../../src/plugin-api.js';

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** Refuses a file that is not an SQLite database, or shorter than its header says (a truncated copy). */
export async function checkFileHeader(file: string, what: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const header = Buffer.alloc(100);
    const { bytesRead } = await fh.read(header, 0, 100, 0);
    if (bytesRead < 100 || !header.subarray(0, 16).equals(MAGIC)) {
      throw new IntegrityError(
        `${what} is not an SQLite database (${size} bytes, no SQLite header); was the artifact decoded with the right layers?`,
      );
    }
    const raw = header.readUInt16BE(16);
    const pageSize = raw === 1 ? 65536 : raw;
    // The page count in the header is valid only when its version stamp matches the change counter.
    const pageCount = header.readUInt32BE(24) === header.readUInt32BE(92) ? header.readUInt32BE(28) : 0;
    if (pageCount > 0 && size < pageCount * pageSize) {
      throw new IntegrityError(
        `${what} is truncated: ${size} bytes, but its header says ${pageCount} pages of ${pageSize} bytes (${pageCount * pageSize}); the dump stream ended early.`,
      );
    }
    if (size % pageSize !== 0) {
      throw new IntegrityError(
        `${what} is truncated: ${size} bytes is not a whole number of ${pageSize}-byte pages; the dump stream ended early.`,
      );
    }
  } finally {
    await fh.close();
  }
}
