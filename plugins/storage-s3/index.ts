// The storage-s3 plugin: `s3://bucket/key` URLs on Amazon S3 or an S3-compatible service; the AWS SDK loads on first use.
import { definePlugin, shellQuote } from '../../src/plugin-api.js';
import { S3_CONFIG_SCHEMA, type S3Config } from './client.js';
import { deleteObject } from './delete.js';
import { getObject } from './get.js';
import { listObjects } from './list.js';
import { putObject } from './put.js';
import { parseObjectUrl } from './url.js';

export default definePlugin({
  name: 'storage-s3',
  contract: '2.0',
  storages: [
    {
      scheme: 's3',
      configSchema: S3_CONFIG_SCHEMA,
      put: putObject,
      get: getObject,
      list: listObjects,
      delete: deleteObject,
      // The AWS CLI reads the same environment (credentials, AWS_REGION, AWS_ENDPOINT_URL_S3); the pipeline's settings become options.
      stockRead: (url, options) => {
        const { bucket, key } = parseObjectUrl(url);
        const config = (options?.config ?? {}) as S3Config;
        const flags = [
          ...(config.endpoint ? [`--endpoint-url ${shellQuote(config.endpoint)}`] : []),
          ...(config.region ? [`--region ${shellQuote(config.region)}`] : []),
        ];
        return ['aws s3 cp', ...flags, shellQuote(`s3://${bucket}/${key}`), '-'].join(' ');
      },
    },
  ],
});
