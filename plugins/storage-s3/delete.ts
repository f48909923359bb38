// Deleting an object, or aborting an unfinished multipart upload of it.
import { s3Client } from './client.js';
import { s3Failure } from './failure.js';
import { parseObjectUrl } from './url.js';

/** Removes the object at `url` (with `upload`: aborts that multipart upload); one already gone is not an error. */
export async function deleteObject(url: string, options: { upload?: string } = {}): Promise<void> {
  const { bucket, key } = parseObjectUrl(url);
  const { AbortMultipartUploadCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const client = await s3Client();
  try {
    if (options.upload !== undefined) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: options.upload })).catch((err: unknown) => {
        if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
      });
    } else await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    throw s3Failure(err, 'deleting', url);
  } finally {
    client.destroy();
  }
}
