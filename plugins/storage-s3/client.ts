// The S3 client: the AWS SDK's own configuration chain, loaded only when an s3:// URL is used.
import type { S3Client } from '@aws-sdk/client-s3';
import { DbflowError } from '../../src/plugin-api.js';

/** The region when neither AWS_REGION nor the profile names one. */
export const DEFAULT_REGION = 'us-east-1';

/** The settings of s3:// storage (the pipeline's `storage.s3:`); each wins over its environment variable. */
export interface S3Config {
  endpoint?: string;
  region?: string;
  force_path_style?: boolean;
  part_size_mib?: number;
  queue_size?: number;
}

/** The JSON Schema of `storage.s3:`. */
export const S3_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    endpoint: {
      type: 'string',
      pattern: '^https?://',
      description: 'An S3-compatible service, e.g. http://minio.internal:9000 (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS).',
    },
    region: { type: 'string', minLength: 1, description: "The bucket's region (else AWS_REGION, the profile's, us-east-1)." },
    force_path_style: {
      type: 'boolean',
      description: 'endpoint/bucket/key addressing (else DBFLOW_S3_FORCE_PATH_STYLE; on by default with a custom endpoint).',
    },
    part_size_mib: {
      type: 'integer',
      minimum: 5,
      maximum: 5120,
      description: 'MiB per multipart part; the largest object is 10,000 parts (else DBFLOW_S3_PART_SIZE_MIB, default 16).',
    },
    queue_size: { type: 'integer', minimum: 1, maximum: 16, description: 'Parts uploaded at once (else DBFLOW_S3_QUEUE_SIZE, default 4).' },
  },
} as const;

/** Where requests go, as far as the settings and the environment say (credentials are the SDK's business alone). */
export interface S3Target {
  /** storage.s3.region, else AWS_REGION; unset: the profile's region, else us-east-1. */
  region: string | undefined;
  /** storage.s3.endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL. */
  endpoint: string | undefined;
  /** Where the endpoint and region are set, for messages. */
  setIn: string;
  /** Path-style addressing (`endpoint/bucket/key`): storage.s3.force_path_style, DBFLOW_S3_FORCE_PATH_STYLE, or on by default with a custom endpoint. */
  forcePathStyle: boolean;
}

/** What the settings (`config`, from StorageCallOptions) and the environment ask of the client. */
export function s3Target(config: S3Config = {}, env: NodeJS.ProcessEnv = process.env): S3Target {
  const ignored = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true';
  const endpoint = config.endpoint ?? (ignored ? undefined : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  const setIn =
    config.endpoint !== undefined || config.region !== undefined
      ? "the pipeline's storage.s3 endpoint and region"
      : 'AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION';
  const region = config.region ?? (env.AWS_REGION || undefined);
  if (config.force_path_style !== undefined) return { region, endpoint, setIn, forcePathStyle: config.force_path_style };
  const flag = env.DBFLOW_S3_FORCE_PATH_STYLE?.toLowerCase() ?? '';
  let forcePathStyle = endpoint !== undefined;
  if (['1', 'true', 'yes'].includes(flag)) forcePathStyle = true;
  else if (['0', 'false', 'no'].includes(flag)) forcePathStyle = false;
  else if (flag !== '') {
    throw new DbflowError(
      `DBFLOW_S3_FORCE_PATH_STYLE is "${env.DBFLOW_S3_FORCE_PATH_STYLE}"; set it to 1 (path style) or 0 (virtual-hosted style).`,
    );
  }
  return { region, endpoint, setIn, forcePathStyle };
}

/** The endpoint requests of `target` go to, for messages. */
export function endpointName(target: S3Target, region = target.region ?? DEFAULT_REGION): string {
  return target.endpoint ?? `https://s3.${region}.amazonaws.com`;
}

/**
 * A new client for `target`: credentials from the SDK's default chain (env, profiles, SSO, instance and
 * container roles). The caller destroys it when done.
 */
export async function s3Client(target: S3Target): Promise<S3Client> {
  quietSdkNotice();
  const { S3Client } = await import('@aws-sdk/client-s3');
  const options = {
    ...(target.endpoint && { endpoint: target.endpoint }),
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
