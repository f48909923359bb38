// Reading an object back as a stream.
import { Readable } from 'node:stream';
import { s3Client } from './client.js';
import { s3Failure } from './failure.js';
import { parseObjectUrl } from './url.js';

/** A stream of the object at `url`; a missing object or bucket is an error that names it. */
export async function getObject(url: string): Promise<Readable> {
  const { bucket, key } = parseObjectUrl(url);
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  const client = await s3Client();
  try {
    const { Body } = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!(Body instanceof Readable)) throw new Error(`GetObject returned no stream for "${url}"`);
    // The client lives as long as the stream it serves.
    Body.once('close', () => client.destroy());
    return Body;
  } catch (err) {
    client.destroy();
    throw s3Failure(err, 'reading', url);
  }
}
