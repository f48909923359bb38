// Deleting an object.
import { s3Client } from './client.js';
import { s3Failure } from './failure.js';
import { parseObjectUrl } from './url.js';

/** Removes the object at `url`; an object that is already gone is not an error (S3 says so too). */
export async function deleteObject(url: string): Promise<void> {
  const { bucket, key } = parseObjectUrl(url);
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const client = await s3Client();
  try {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    throw s3Failure(err, 'deleting', url);
  } finally {
    client.destroy();
  }
}
