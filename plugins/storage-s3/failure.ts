// SDK and network errors turned into dbflow errors that name the URL and say what to do, never a credential; and aborts.
import type { S3Client } from '@aws-sdk/client-s3';
import { DbflowError, RepositoryError, type StorageCallOptions } from '../../src/plugin-api.js';
import { endpointName, s3Client, type S3Target, s3Target } from './client.js';
import { parseS3Url } from './url.js';

/** What an SDK error carries that matters here. */
interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

const ACCESS = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'AllAccessDisabled',
  'AccountProblem',
  'Forbidden',
]);
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
]);

/**
 * A DbflowError for an S3 error while doing `action` (e.g. "writing") on `url`. A missing object is a
 * RepositoryError. The SDK's own message is kept only where it cannot hold a credential.
 */
export function s3Failure(err: unknown, action: string, url: string, target: S3Target): DbflowError {
  if (err instanceof DbflowError) return err;
  const e = (err ?? {}) as SdkError;
  const code = e.Code ?? e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const { bucket } = parseS3Url(url);
  const network = networkCode(err);
  if (code === 'NoSuchBucket') {
    return new RepositoryError(
      `bucket "${bucket}" does not exist (${action} "${url}" at ${endpointName(target)}); create it, or fix the bucket in the URL.`,
    );
  }
  if (code === 'NoSuchKey' || (code === 'NotFound' && status === 404)) {
    return new RepositoryError(`object "${url}" does not exist; check the URL, or list the repository.`);
  }
  if (code === 'InvalidObjectState') {
    return new RepositoryError(`object "${url}" is archived (GLACIER or DEEP_ARCHIVE) and must be restored in S3 before it can be read.`);
  }
  if (ACCESS.has(code) || status === 403) {
    return new DbflowError(
      `access to "${url}" was denied (${code}) while ${action} it; check the credentials the AWS SDK found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role) and the bucket's policy.`,
    );
  }
  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(e.message ?? '')) {
    return new DbflowError(
      `no AWS credentials for ${action} "${url}"; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance or container role is available.`,
    );
  }
  if (network) {
    return new DbflowError(
      `the S3 endpoint ${endpointName(target)} could not be reached or dropped the connection while ${action} "${url}" (${network}); check ${target.setIn} and the network.`,
      { cause: err },
    );
  }
  const detail = e.message && e.message !== code ? `${code}: ${e.message}` : code;
  return new DbflowError(`S3 failed while ${action} "${url}" (${status ? `HTTP ${status}, ` : ''}${detail}).`, { cause: err });
}

/** The system or SDK code of a network failure, also when the SDK wrapped it. */
export function networkCode(err: unknown): string | undefined {
  for (let e = err as SdkError | undefined, depth = 0; e && depth < 5; e = e.cause as SdkError | undefined, depth++) {
    for (const c of [e.code, e.name]) if (c && NETWORK.has(c)) return c;
  }
  return undefined;
}

/** A client for the requests of one storage call, tied to its signal. */
export interface S3Request {
  client: S3Client;
  target: S3Target;
  /** In the request's catch, throw this: the signal's reason when the abort was the cause, else the SDK's error in the user's terms (s3Failure). */
  failure(err: unknown, action: string, url: string): unknown;
  /** Unties the signal; the caller destroys the client. */
  done(): void;
}

/**
 * A client for the settings of `options` (StorageCallOptions' `config`), tied to its `signal`: an abort ends its
 * requests in flight, without retries, and destroys the client.
 */
export async function s3Request(options: StorageCallOptions & { signal?: AbortSignal | undefined }): Promise<S3Request> {
  const { signal } = options;
  // Checked against S3_CONFIG_SCHEMA before any call.
  const target = s3Target(options.config);
  const client = await s3Client(target);
  if (signal?.aborted) {
    client.destroy();
    signal.throwIfAborted();
  }
  if (signal) {
    // Each request is aborted with the call (the SDK retries a request whose connection was only cut).
    const send = client.send.bind(client) as (command: unknown, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;
    client.send = ((command: unknown, options?: { abortSignal?: AbortSignal }) =>
      send(command, { ...options, abortSignal: signal })) as S3Client['send'];
  }
  const onAbort = (): void => client.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    client,
    target,
    failure: (err, action, url) => (signal?.aborted ? (signal.reason as unknown) : s3Failure(err, action, url, target)),
    done: () => signal?.removeEventListener('abort', onAbort),
  };
}
