// The S3 storage on the storage conformance suite, against s3rver through the real AWS SDK. Parts of 5 MiB (the
// smallest S3 allows), so that the suite's multi-MiB bodies go up as multipart uploads.
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import s3Plugin from '../../plugins/storage-s3/index.js';
import { describeStorage } from '../../src/testing/index.js';
import { requireS3, setEnv, stopS3 } from '../helpers/s3.js';

after(stopS3);
const storage = s3Plugin.storages!.find((s) => s.scheme === 's3')!;
let bucket: Promise<string> | undefined;

describeStorage('storage-s3 (s3rver, multipart)', async (t) => {
  const s3 = await requireS3(t);
  if (!s3) return undefined;
  t.after(setEnv({ ...s3.env, DBFLOW_S3_PART_SIZE_MIB: '5' }));
  bucket ??= s3.bucket();
  return { storage, prefix: `s3://${await bucket}/${randomBytes(6).toString('hex')}/` };
});
