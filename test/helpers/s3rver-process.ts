// The s3rver process of the S3 tests: s3rver on 127.0.0.1 with a free port, completed with the multipart operations it lacks.
// Usage: node --openssl-legacy-provider --import tsx s3rver-process.ts <folder> [port]
// (s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 offers only through its legacy provider.)
// Prints {"port": N} once listening; when its stdin closes (the test process ended) or on SIGTERM, stops and removes the folder.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ABORTED_PREFIX, isUpload, uploadsDir } from './s3rver-layout.js';

// s3rver's own types (it ships none), as far as this file uses them.
interface S3rverApp {
  middleware: unknown[];
  store: { putPart(bucket: string, uploadId: string, partNumber: string, content: Readable): Promise<{ size: number; md5: string }> };
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverApp;
type S3ErrorClass = new (code: string, message: string, detail?: Record<string, unknown>) => Error;
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: s3rver-process.ts <folder> [port]');
// A port of its own: a server restarted on the folder of one that was killed answers where the first one did.
const wantedPort = Number(process.argv[3] ?? 0);
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverClass;
const S3Error = require('s3rver/lib/models/error') as S3ErrorClass;

/**
 * The multipart operations s3rver 3.7 lacks, done on its own folder the way S3 does them:
 * AbortMultipartUpload (DELETE ?uploadId) removes the upload and its parts; ListMultipartUploads
 * (GET ?uploads) lists them; UploadPart to an upload that does not exist (aborted) is NoSuchUpload
 * instead of recreating its folder. Everything else is s3rver's. Runs before s3rver's router.
 */
function multipartCompletion(root: string) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
    if (!m) return next();
    const bucket = decodeURIComponent(m[1]!);
    const key = m[2] ? decodeURIComponent(m[2]) : undefined;
    const uploadId = typeof ctx.query.uploadId === 'string' ? ctx.query.uploadId : undefined;
    const uploadDir = uploadId ? path.join(uploadsDir(root, bucket), path.basename(uploadId)) : undefined;
    const known =
      uploadDir !== undefined && existsSync(path.join(uploadDir, 'key')) && readFileSync(path.join(uploadDir, 'key'), 'utf8') === key;
    if (key !== undefined && uploadDir && ctx.method === 'DELETE') {
      if (!known) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
      // At once, as S3 does: the folder leaves the listing in one rename. Removed in place, a part still being
      // written could land between the removal of its files and of the folder, which then stayed without its key
      // (a ghost upload that no abort can reach). A tombstone that cannot be removed yet is left, out of the listing.
      const tombstone = path.join(path.dirname(uploadDir), `${ABORTED_PREFIX}${path.basename(uploadDir)}`);
      renameSync(uploadDir, tombstone);
      try {
        rmSync(tombstone, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // a part written into it meanwhile: the tombstone stays, out of the listing
      }
      ctx.status = 204;
      return;
    }
    if (key !== undefined && uploadDir && ctx.method === 'PUT' && 'partNumber' in ctx.query && !known) {
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
    }
    if (key === undefined && ctx.method === 'GET' && 'uploads' in ctx.query) {
      const uploads = uploadsDir(root, bucket);
      const found = (existsSync(uploads) ? readdirSync(uploads) : []).filter(isUpload).map((id) => ({
        Key: existsSync(path.join(uploads, id, 'key')) ? readFileSync(path.join(uploads, id, 'key'), 'utf8') : '',
        UploadId: id,
        Initiated: new Date().toISOString(),
      }));
      ctx.body = {
        ListMultipartUploadsResult: { Bucket: bucket, MaxUploads: 1000, IsTruncated: false, ...(found.length > 0 && { Upload: found }) },
      };
      return;
    }
    return next();
  };
}

/**
 * UploadPart into the upload's folder, which must still be there. s3rver's own creates the folder when it is
 * missing: a part whose request was under way while its upload was aborted brought the upload back, without its
 * key (a ghost in ListMultipartUploads). S3 answers such a part NoSuchUpload, and so does this one.
 */
function putPart(root: string): S3rverApp['store']['putPart'] {
  return async (bucket, uploadId, partNumber, content) => {
    const part = path.join(uploadsDir(root, bucket), path.basename(uploadId), path.basename(partNumber));
    const hash = createHash('md5');
    let size = 0;
    try {
      await pipeline(
        content,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(part),
      );
      const md5 = hash.digest('hex');
      writeFileSync(`${part}.md5`, md5);
      return { size, md5 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
      }
      throw err;
    }
  };
}

// An error that escapes s3rver's request handling (under load, once, right after a test cut off a put) would end
// the server for every test after it, which then fail with ECONNREFUSED: print it on stderr and keep serving.
process.on('uncaughtException', (err) => process.stderr.write(`s3rver: uncaught ${err.stack ?? String(err)}\n`));

const server = new S3rver({ address: '127.0.0.1', port: wantedPort, directory: dir, silent: true, vhostBuckets: false });
server.store.putPart = putPart(dir);
// Before s3rver's router, its last middleware.
server.middleware.splice(server.middleware.length - 1, 0, multipartCompletion(dir));
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

// Stops and removes the folder, also when the test process died without closing it.
const stop = (): void =>
  void server.close().finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
process.stdin.on('end', stop).on('close', stop).resume();
process.on('SIGTERM', stop);
