// gzip through node:zlib: the compress stage of the step and the decode codec.
import { pipeline, type Duplex, type Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { IntegrityError, type Codec } from '../../src/plugin-api.js';
import { mappedDuplex } from './mapped-duplex.js';

// zlib's default 16 KiB output chunks cost throughput; 64 KiB matches a pipe's buffer.
const CHUNK = 64 * 1024;

// Compresses `input` with gzip at `level` (1..9).
export function gzipCompress(input: Readable, level: number): Readable {
  const gzip = createGzip({ level, chunkSize: CHUNK });
  pipeline(input, gzip, () => undefined); // errors reach the output through `gzip`
  return gzip;
}

// The reverse of the gzip layer; corrupt or truncated input errors the stream.
export const gzipCodec: Codec = {
  name: 'gzip',
  decode(): Duplex {
    const gunzip = createGunzip({ chunkSize: CHUNK });
    return mappedDuplex(gunzip, {
      mapError: (error) =>
        new IntegrityError(`gzip cannot decompress: ${(error as Error).message}. The data is corrupt, truncated or not gzip.`, {
          cause: error,
        }),
    });
  },
};
