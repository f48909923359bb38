// A put's client: its part uploads stop with the put, and nothing is published after a stop.
import type * as S3 from '@aws-sdk/client-s3';

type Sdk = typeof S3;
type Send = (command: unknown, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;

/**
 * Routes the requests that `Upload` sends through `client.send`:
 * - an UploadPart gets `stop` as its abort signal, so a stop cuts parts off mid-body (S3 stores a
 *   part only once its whole body arrived, so a part cut off is never stored);
 * - a CompleteMultipartUpload or PutObject is refused once `stop` fired, so an object never appears
 *   after a stop; one already sent is let finish (the object is then whole).
 * Every other request (CreateMultipartUpload, AbortMultipartUpload) goes through untouched.
 */
export function gateClient(client: S3.S3Client, stop: AbortSignal, sdk: Sdk): void {
  const send = client.send.bind(client) as Send;
  const gated: Send = (command, options) => {
    if (command instanceof sdk.UploadPartCommand) return send(command, { ...options, abortSignal: stop });
    if ((command instanceof sdk.CompleteMultipartUploadCommand || command instanceof sdk.PutObjectCommand) && stop.aborted) {
      return Promise.reject(stop.reason instanceof Error ? stop.reason : new Error('put stopped'));
    }
    return send(command, options);
  };
  client.send = gated as S3.S3Client['send'];
}
