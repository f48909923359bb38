// Atomic writes: a streaming multipart upload that is completed only after the whole body arrived, else aborted.
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as S3 from '@aws-sdk/client-s3';
import { DbflowError, type PutOptions, type StoredObject } from '../../src/plugin-api.js';
import { type S3Config, s3Client, type S3Target, s3Target } from './client.js';
import { networkCode, s3Failure } from './failure.js';
import { gateClient } from './gate.js';
import { MAX_PARTS, partPlan } from './parts.js';
import { writeParams } from './settings.js';
import { parseObjectUrl } from './url.js';

type Sdk = typeof S3;

/**
 * Writes `body` to the object at `url` with lib-storage's Upload, holding about (queue size + 2)
 * parts in memory. The object appears, whole, only after the body ended (CompleteMultipartUpload,
 * or one PutObject for a body smaller than a part). A body that fails, an S3 error or an abort cuts
 * off the part uploads in flight, aborts the multipart upload and rejects once that is done: no
 * object, no unfinished upload.
 */
export async function putObject(url: string, body: Readable, { signal, settings, config }: PutOptions): Promise<StoredObject> {
  // The body may fail while the client is made; the upload reports that error.
  // The body's own error, not one it got because the upload stopped reading (which destroys the stream in between).
  const seen: { bodyError?: Error; between?: Transform } = {};
  body.on('error', (err: Error) => {
    if (!seen.between?.destroyed) seen.bodyError ??= err;
  });
  const { bucket, key } = parseObjectUrl(url);
  const params = writeParams(url, settings);
  // Checked against S3_CONFIG_SCHEMA before any call.
  const s3Config = config as S3Config | undefined;
  const { partSize, queueSize } = partPlan(s3Config);
  const target = s3Target(s3Config);
  const abortError = (): Error => (signal.reason instanceof Error ? signal.reason : new DbflowError(`writing "${url}" was aborted.`));
  if (signal.aborted) {
    body.destroy();
    throw abortError();
  }
  const [{ Upload }, sdk] = await Promise.all([import('@aws-sdk/lib-storage'), import('@aws-sdk/client-s3')]);
  const client = await s3Client(target);
  const stop = new AbortController();
  gateClient(client, stop.signal, sdk);

  let bytes = 0;
  const limit = partSize * MAX_PARTS;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes <= limit) return done(null, chunk);
      const mib = partSize / 2 ** 20;
      done(
        new DbflowError(
          `"${url}" is larger than ${MAX_PARTS} parts of ${mib} MiB, the most one S3 upload takes at this part size; set storage.s3.part_size_mib (or DBFLOW_S3_PART_SIZE_MIB) above ${mib}.`,
        ),
      );
    },
  });
  seen.between = counted;
  // The first failure on dbflow's side (the body, an abort, the size limit) stops everything.
  let failure: Error | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    stop.abort(failure);
    counted.destroy(failure);
  };
  pipeline(body, counted).catch(fail);
  const onAbort = (): void => fail(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  // An abort that came while the SDK loaded.
  if (signal.aborted) onAbort();

  // Upload is never abort()ed: that rejects done() at once while its abort of the multipart upload
  // still runs behind. A stop instead fails the upload from inside, and done() settles after the abort.
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: counted, ...params },
    partSize,
    queueSize,
    leavePartsOnError: false,
  });
  try {
    await upload.done();
    return { url, bytes };
  } catch (err) {
    // The body's own error may reach here before the pipeline reported it.
    // dbflow's side failed first (the body, an abort, the size limit), or else S3 did: then the stream between them
    // only broke because the upload gave up on it, and the SDK's error (a dropped connection, a refusal) is the cause.
    const ours = [failure, counted.errored].find((e) => e && (e === seen.bodyError || e instanceof DbflowError || signal.aborted));
    const cause = ours ?? (await writeFailure(client, sdk, url, err, target));
    fail(cause);
    throw await abortAgain(client, sdk, url, upload.uploadId, cause, target);
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (failure) body.destroy();
    client.destroy();
  }
}

// A server may answer a write to a missing bucket by closing the connection before reading the body
// (the client then sees EPIPE or a reset): after a network failure, the bucket is asked for.
async function writeFailure(client: S3.S3Client, sdk: Sdk, url: string, err: unknown, target: S3Target): Promise<Error> {
  if (!networkCode(err)) return s3Failure(err, 'writing', url, target);
  try {
    await client.send(new sdk.HeadBucketCommand({ Bucket: parseObjectUrl(url).bucket }));
  } catch (probe) {
    const e = probe as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.$metadata?.httpStatusCode === 404 || e.name === 'NotFound' || e.name === 'NoSuchBucket')
      return s3Failure({ Code: 'NoSuchBucket' }, 'writing', url, target);
  }
  return s3Failure(err, 'writing', url, target);
}

// Upload has aborted its multipart upload already; aborting once more catches a part that landed
// meanwhile (S3 advises it) and an abort of Upload's that failed. Returns the error to throw.
async function abortAgain(
  client: S3.S3Client,
  sdk: Sdk,
  url: string,
  uploadId: string | undefined,
  cause: Error,
  target: S3Target,
): Promise<Error> {
  if (!uploadId) return cause;
  const { bucket, key } = parseObjectUrl(url);
  try {
    await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    return cause;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NoSuchUpload' || e.$metadata?.httpStatusCode === 404) return cause;
    const why = s3Failure(err, 'aborting the upload of', url, target).message;
    return new DbflowError(
      `${cause.message}; then ${why} Its unfinished multipart upload ${uploadId} may remain: abort it (aws s3api abort-multipart-upload), or let a lifecycle rule (AbortIncompleteMultipartUpload) remove it.`,
      { cause },
    );
  }
}
