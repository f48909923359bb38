// s3: URLs of the S3 storage and the bucket and key they name.
import { DbflowError } from '../../src/plugin-api.js';

/** A parsed `s3://bucket/key` URL. */
export interface S3Location {
  bucket: string;
  /** The key as written after the bucket (may be empty for a prefix). */
  key: string;
}

// Bucket names as S3 allows them, with the legacy upper case and underscores of old us-east-1 buckets.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/i;

/**
 * Parse `s3://bucket/key/prefix/name`. The key is taken literally (no percent-decoding), as for
 * file:// URLs; `s3://bucket` and `s3://bucket/` name the whole bucket (a prefix for list).
 */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/is.exec(url);
  if (!m) throw new DbflowError(`"${url}" is not an S3 storage URL; write s3://bucket/key/prefix/name.`);
  const bucket = m[1]!;
  if (bucket === '') throw new DbflowError(`"${url}" names no bucket; write s3://bucket/key/prefix/name.`);
  if (!BUCKET.test(bucket)) {
    throw new DbflowError(
      `"${url}": "${bucket}" is not a valid S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens); write s3://bucket/key/prefix/name.`,
    );
  }
  return { bucket, key: m[2] ?? '' };
}

/** Parse the URL of one object: it must name a key, not a bucket or a folder. */
export function parseObjectUrl(url: string): S3Location {
  const loc = parseS3Url(url);
  if (loc.key === '' || loc.key.endsWith('/')) {
    throw new DbflowError(`"${url}" names a folder, not an object; add a name, e.g. ${url.replace(/\/*$/, '')}/backup.dump.`);
  }
  return loc;
}

/** The URL of an object. */
export function objectUrl(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
