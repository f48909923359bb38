// Reading an object back as a stream.
import { Readable } from 'node:stream';
import type { GetOptions } from '../../src/plugin-api.js';
import { s3Request } from './failure.js';
import { parseObjectUrl } from './url.js';

/** A stream of the object at `url`; a missing object or bucket is an error that names it. */
export async function getObject(url: string, options: GetOptions = {}): Promise<Readable> {
  const { bucket, key } = parseObjectUrl(url);
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  const aborting = await s3Request(options);
  const { client } = aborting;
  try {
    const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!(Body instanceof Readable)) throw new Error(`GetObject returned no stream for "${url}"`);
    // The client lives as long as the stream it serves; an abort while it is read errors it.
    const onAbort = (): void => void Body.destroy(options.signal?.reason as Error);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    Body.once('close', () => {
      options.signal?.removeEventListener('abort', onAbort);
      aborting.done();
      client.destroy();
    });
    return Body;
  } catch (err) {
    aborting.done();
    client.destroy();
    throw aborting.failure(err, 'reading', url);
  }
}
