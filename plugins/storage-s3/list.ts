// Listing every object under a URL prefix, page after page.
import type { StoredObject } from '../../src/index.js';
import { s3Client } from './client.js';
import { s3Failure } from './failure.js';
import { objectUrl, parseS3Url } from './url.js';

/** Every object whose URL starts with `prefix`, sorted by URL; a missing bucket is an error that names it. */
export async function listObjects(prefix: string): Promise<StoredObject[]> {
  const { bucket, key } = parseS3Url(prefix);
  const { paginateListObjectsV2 } = await import('@aws-sdk/client-s3');
  const client = await s3Client();
  const found: StoredObject[] = [];
  try {
    for await (const page of paginateListObjectsV2({ client, pageSize: 1000 }, { Bucket: bucket, ...(key && { Prefix: key }) })) {
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined) found.push({ url: objectUrl(bucket, o.Key), bytes: o.Size ?? 0 });
      }
    }
  } catch (err) {
    throw s3Failure(err, 'listing', prefix);
  } finally {
    client.destroy();
  }
  return found.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}
