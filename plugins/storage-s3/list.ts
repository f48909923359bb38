// Listing every object under a URL prefix, page after page; and, when asked, the unfinished multipart uploads.
import type { S3Client } from '@aws-sdk/client-s3';
import type { ListOptions, StoredObject } from '../../src/plugin-api.js';
import { s3Request } from './failure.js';
import { objectUrl, parseS3Url } from './url.js';

/**
 * Every object whose URL starts with `prefix`, sorted by URL; a missing bucket is an error that names it.
 * With `unfinished`, also the multipart uploads never completed nor aborted (a run that was killed),
 * marked unfinished with their upload id (their bytes are not known: 0).
 */
export async function listObjects(prefix: string, options: ListOptions = {}): Promise<StoredObject[]> {
  const { bucket, key } = parseS3Url(prefix);
  const { paginateListObjectsV2 } = await import('@aws-sdk/client-s3');
  const aborting = await s3Request(options);
  const { client } = aborting;
  const found: StoredObject[] = [];
  try {
    for await (const page of paginateListObjectsV2({ client, pageSize: 1000 }, { Bucket: bucket, ...(key && { Prefix: key }) })) {
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined)
          found.push({
            url: objectUrl(bucket, o.Key),
            bytes: o.Size ?? 0,
            ...(options.modified && o.LastModified && { modified: o.LastModified.toISOString() }),
          });
      }
    }
    if (options.unfinished) found.push(...(await unfinishedUploads(client, bucket, key, options.modified === true)));
  } catch (err) {
    throw aborting.failure(err, 'listing', prefix);
  } finally {
    aborting.done();
    client.destroy();
  }
  return found.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

// ListMultipartUploads, page after page; a server that does not implement it has none to show.
async function unfinishedUploads(client: S3Client, bucket: string, prefix: string | undefined, modified: boolean): Promise<StoredObject[]> {
  const { ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
  const found: StoredObject[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          ...(prefix && { Prefix: prefix }),
          ...(keyMarker && { KeyMarker: keyMarker }),
          ...(uploadIdMarker && { UploadIdMarker: uploadIdMarker }),
        }),
      );
    } catch (err) {
      if ((err as { name?: string; Code?: string }).name === 'NotImplemented' || (err as { Code?: string }).Code === 'NotImplemented')
        return found;
      throw err;
    }
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined || (prefix && !u.Key.startsWith(prefix))) continue;
      found.push({
        url: objectUrl(bucket, u.Key),
        bytes: 0,
        ...(modified && u.Initiated && { modified: u.Initiated.toISOString() }),
        unfinished: { upload: u.UploadId },
      });
    }
    if (!page.IsTruncated) return found;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}
