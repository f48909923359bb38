// Deleting an object, or aborting an unfinished multipart upload of it.
import type { DeleteOptions } from '../../src/plugin-api.js';
import { s3Request } from './failure.js';
import { parseObjectUrl } from './url.js';

/** Removes the object at `url` (with `upload`: aborts that multipart upload); one already gone is not an error. */
export async function deleteObject(url: string, options: DeleteOptions = {}): Promise<void> {
  const { bucket, key } = parseObjectUrl(url);
  const { AbortMultipartUploadCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const aborting = await s3Request(options);
  const { client } = aborting;
  try {
    if (options.upload !== undefined) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: options.upload })).catch((err: unknown) => {
        if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
      });
    } else await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    throw aborting.failure(err, 'deleting', url);
  } finally {
    aborting.done();
    client.destroy();
  }
}
