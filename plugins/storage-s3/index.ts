// The storage-s3 plugin: `s3://bucket/key` URLs on Amazon S3 or an S3-compatible service; the AWS SDK loads on first use.
import { definePlugin, shellQuote } from '../../src/plugin-api.js';
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
      put: putObject,
      get: getObject,
      list: listObjects,
      delete: deleteObject,
      // The AWS CLI reads the same environment (credentials, AWS_REGION, AWS_ENDPOINT_URL_S3).
      stockRead: (url) => {
        const { bucket, key } = parseObjectUrl(url);
        return `aws s3 cp ${shellQuote(`s3://${bucket}/${key}`)} -`;
      },
    },
  ],
});
