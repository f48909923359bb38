// The S3 client: the AWS SDK's own configuration chain, loaded only when an s3:// URL is used.
import type { S3Client } from '@aws-sdk/client-s3';
import { DbflowError } from '../../src/plugin-api.js';

/** The region when neither AWS_REGION nor the profile names one. */
export const DEFAULT_REGION = 'us-east-1';

/** Where requests go, as far as the environment says (credentials are the SDK's business alone). */
export interface S3Target {
  /** AWS_REGION; unset: the profile's region, else us-east-1. */
  region: string | undefined;
  /** AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL: the SDK reads them itself; dbflow only names them in messages. */
  endpoint: string | undefined;
  /** Path-style addressing (`endpoint/bucket/key`): DBFLOW_S3_FORCE_PATH_STYLE, or on by default with a custom endpoint. */
  forcePathStyle: boolean;
}

/** What the environment asks of the client. */
export function s3Target(env: NodeJS.ProcessEnv = process.env): S3Target {
  const ignored = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true';
  const endpoint = ignored ? undefined : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const flag = env.DBFLOW_S3_FORCE_PATH_STYLE?.toLowerCase() ?? '';
  let forcePathStyle = endpoint !== undefined;
  if (['1', 'true', 'yes'].includes(flag)) forcePathStyle = true;
  else if (['0', 'false', 'no'].includes(flag)) forcePathStyle = false;
  else if (flag !== '') {
    throw new DbflowError(
      `DBFLOW_S3_FORCE_PATH_STYLE is "${env.DBFLOW_S3_FORCE_PATH_STYLE}"; set it to 1 (path style) or 0 (virtual-hosted style).`,
    );
  }
  return { region: env.AWS_REGION || undefined, endpoint, forcePathStyle };
}

/** The endpoint requests of `target` go to, for messages. */
export function endpointName(target: S3Target, region = target.region ?? DEFAULT_REGION): string {
  return target.endpoint ?? `https://s3.${region}.amazonaws.com`;
}

/**
 * A new client configured from the environment: credentials from the SDK's default chain (env,
 * profiles, SSO, instance and container roles), custom endpoint from the SDK's own
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL support. The caller destroys it when done.
 */
export async function s3Client(target: S3Target = s3Target()): Promise<S3Client> {
  quietSdkNotice();
  const { S3Client } = await import('@aws-sdk/client-s3');
  const options = {
    forcePathStyle: target.forcePathStyle,
    followRegionRedirects: true,
    // A dead connection fails (and is retried) instead of hanging a backup forever.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  };
  if (target.region) return new S3Client({ ...options, region: target.region });
  const client = new S3Client(options);
  try {
    await client.config.region();
    return client;
  } catch {
    client.destroy();
    return new S3Client({ ...options, region: DEFAULT_REGION });
  }
}

// The SDK's own switch for its notice about the Node versions of its future releases (printed on stderr once per
// process, by every client it makes, credential clients included): a dependency's plan is not the user's news.
// A user who sets the variable keeps their choice; the SDK's real errors are unaffected.
function quietSdkNotice(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
