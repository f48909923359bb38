// Where s3rver keeps unfinished multipart uploads, as the s3rver process and the tests' checks both read it.
import path from 'node:path';

/** The parts of an unfinished multipart upload are in <folder>/<bucket>/._S3rver_uploads/<upload id>/. */
export function uploadsDir(root: string, bucket: string): string {
  return path.join(root, bucket, '._S3rver_uploads');
}

/** The name an aborted upload's folder gets on its way out (AbortMultipartUpload in s3rver-process.ts). */
export const ABORTED_PREFIX = '.aborted-';

/** Whether an entry of uploadsDir is an upload, and not what an abort leaves while it removes one. */
export function isUpload(name: string): boolean {
  return !name.startsWith(ABORTED_PREFIX);
}
