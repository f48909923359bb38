// An S3 server for tests: s3rver in its own process on 127.0.0.1 (a free port, a temp folder), buckets, and the AWS SDK's environment for it.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { isUpload, uploadsDir } from './s3rver-layout.js';

/** The credentials s3rver accepts (it refuses other access key ids; it does not check V4 signatures). */
export const S3RVER_KEY = 'S3RVER';

/** A running s3rver. */
export interface S3Server {
  port: number;
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Where s3rver keeps buckets, objects and unfinished multipart uploads. */
  dir: string;
  /** What the AWS SDK (and dbflow) need to talk to it, endpoint included. */
  env: Record<string, string>;
  /** Creates a fresh bucket and returns its name. */
  bucket(): Promise<string>;
  /** Unfinished multipart uploads of a bucket, by the S3 API (ListMultipartUploads). */
  multipartUploads(bucket: string): Promise<{ key: string; uploadId: string }[]>;
  /** Unfinished multipart uploads of a bucket, by s3rver's folder: upload id → files (parts) in it. */
  uploadsOnDisk(bucket: string): Record<string, string[]>;
  /** An SDK client for checks that go around dbflow. */
  client(endpoint?: string): S3Client;
  /** Kills the server outright (SIGKILL), as a crash would: its folder stays, for a server started again on it. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** Where a server starts: a folder and a port of a server that was killed (see `kill`), to start it again as it was. */
export interface S3Start {
  dir?: string;
  port?: number;
}

const require = createRequire(import.meta.url);
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-process.ts');

// Why s3rver cannot be used, or undefined.
function missingS3rver(): string | undefined {
  try {
    require.resolve('s3rver');
    return undefined;
  } catch (err) {
    return `s3rver cannot be loaded (${(err as Error).message.split('\n')[0]}); install the devDependencies (npm install, which installs "s3rver")`;
  }
}

/**
 * Starts s3rver in its own process on 127.0.0.1 with a free port and a temp folder (see
 * s3rver-process.ts); `close()` stops it and removes the folder.
 */
export async function startS3(start: S3Start = {}): Promise<S3Server> {
  const missing = missingS3rver();
  if (missing) throw new Error(missing);
  const dir = start.dir ?? mkdtempSync(path.join(os.tmpdir(), 'dbflow-s3rver-'));
  const args = [child, dir, ...(start.port !== undefined ? [String(start.port)] : [])];
  const proc = execa(process.execPath, ['--openssl-legacy-provider', '--import', import.meta.resolve('tsx'), ...args], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    cleanup: true,
  });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /\{"port":(\d+)\}/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      void proc.then((r) => reject(new Error(`s3rver exited (${r.exitCode ?? r.signal}) before listening: ${String(r.stderr)}`)));
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // s3rver ending before close() fails every request after it with ECONNREFUSED: say why, where the test output is.
  let closing = false;
  void proc.then((r) => {
    if (!closing) process.stderr.write(`s3rver on port ${port} ended unexpectedly (${r.exitCode ?? r.signal}):\n${String(r.stderr)}\n`);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ACCESS_KEY_ID: S3RVER_KEY,
    AWS_SECRET_ACCESS_KEY: S3RVER_KEY,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: endpoint,
    DBFLOW_S3_FORCE_PATH_STYLE: '1',
  };
  const client = (at = endpoint): S3Client =>
    new S3Client({
      region: 'us-east-1',
      endpoint: at,
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    });
  const restore = setEnv({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  const admin = client();
  restore();
  return {
    port,
    endpoint,
    dir,
    env,
    client,
    async bucket() {
      const name = `t-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async multipartUploads(bucket) {
      const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (out.Uploads ?? []).map((u) => ({ key: u.Key ?? '', uploadId: u.UploadId ?? '' }));
    },
    uploadsOnDisk(bucket) {
      const root = uploadsDir(dir, bucket);
      if (!existsSync(root)) return {};
      return Object.fromEntries(
        readdirSync(root)
          .filter(isUpload)
          .map((id) => [id, readdirSync(path.join(root, id))]),
      );
    },
    async kill() {
      closing = true;
      admin.destroy();
      proc.kill('SIGKILL');
      await proc;
    },
    async close() {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        rmSync(dir, { recursive: true, force: true });
        return;
      }
      closing = true;
      admin.destroy();
      proc.stdin.end();
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await proc;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let shared: Promise<S3Server> | undefined;

/**
 * The s3rver of this test file (started on first use; stop it with `stopS3` in `after`). Without
 * s3rver, fails under CI=true naming what to install, else skips the test.
 */
export async function requireS3(t: Pick<TestContext, 'skip'>): Promise<S3Server | undefined> {
  const missing = missingS3rver();
  if (missing) {
    if (process.env.CI === 'true') throw new Error(missing);
    t.skip(missing);
    return undefined;
  }
  shared ??= startS3();
  return shared;
}

/** Stops the shared s3rver, if one was started. */
export async function stopS3(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s) await (await s).close();
}

/**
 * Sets `vars` in process.env (undefined removes one) until the returned function restores them:
 * the storage reads the environment on every call, as dbflow does in a run.
 */
export function setEnv(vars: Record<string, string | undefined>): () => void {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>): void => {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) delete process.env[k];
      else process.env[k] = val;
    }
  };
  apply(vars);
  return () => apply(before);
}
