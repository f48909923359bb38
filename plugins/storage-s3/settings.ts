// The per-write settings of an S3 put (the upload step's `with.storage`), checked and turned into request parameters.
import type { ServerSideEncryption, StorageClass } from '@aws-sdk/client-s3';
import { distance } from 'fastest-levenshtein';
import { DbflowError } from '../../src/plugin-api.js';

/** What an S3 write may set, in the SDK's parameter names. */
export interface WriteParams {
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
  StorageClass?: StorageClass;
}

const ENCRYPTIONS = ['AES256', 'aws:kms'] as const satisfies readonly ServerSideEncryption[];

/** The storage classes of S3; GLACIER and DEEP_ARCHIVE objects cannot be read back until restored. */
export const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'GLACIER_IR',
  'SNOW',
  'EXPRESS_ONEZONE',
] as const satisfies readonly StorageClass[];

const KEYS = ['server_side_encryption', 'kms_key_id', 'storage_class'] as const;

/**
 * Checks `settings` for a write to `url` and maps them to request parameters. An unknown key or a
 * wrong value is a DbflowError that quotes it and lists what is valid.
 */
export function writeParams(url: string, settings: Record<string, unknown> = {}): WriteParams {
  const where = `in the upload's storage settings for "${url}"`;
  for (const key of Object.keys(settings)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      const near = closest(key, KEYS);
      throw new DbflowError(
        `unknown S3 setting "${key}" ${where}.${near ? ` Did you mean "${near}"?` : ''} Valid settings: ${KEYS.join(', ')}.`,
      );
    }
  }
  const params: WriteParams = {};
  const sse = settings.server_side_encryption;
  if (sse !== undefined) {
    if (!ENCRYPTIONS.includes(sse as never)) {
      throw new DbflowError(`server_side_encryption ${where} is ${JSON.stringify(sse)}; write one of ${ENCRYPTIONS.join(', ')}.`);
    }
    params.ServerSideEncryption = sse as ServerSideEncryption;
  }
  const kmsKey = settings.kms_key_id;
  if (kmsKey !== undefined) {
    if (typeof kmsKey !== 'string' || kmsKey === '') {
      throw new DbflowError(`kms_key_id ${where} is ${JSON.stringify(kmsKey)}; write a KMS key id, alias or ARN.`);
    }
    if (sse !== 'aws:kms') {
      throw new DbflowError(
        `kms_key_id ${where} needs server_side_encryption: aws:kms (it is ${sse === undefined ? 'not set' : JSON.stringify(sse)}).`,
      );
    }
    params.SSEKMSKeyId = kmsKey;
  }
  const storageClass = settings.storage_class;
  if (storageClass !== undefined) {
    if (!STORAGE_CLASSES.includes(storageClass as never)) {
      const near = typeof storageClass === 'string' ? closest(storageClass, STORAGE_CLASSES) : undefined;
      throw new DbflowError(
        `storage_class ${where} is ${JSON.stringify(storageClass)}.${near ? ` Did you mean "${near}"?` : ''} Valid classes: ${STORAGE_CLASSES.join(', ')}.`,
      );
    }
    params.StorageClass = storageClass as StorageClass;
  }
  return params;
}

// The candidate closest to a misspelled name, when it is close enough to be a typo.
function closest(wrong: string, candidates: readonly string[]): string | undefined {
  const scored = candidates.map((c) => ({ c, d: distance(wrong.toLowerCase(), c.toLowerCase()) })).sort((a, b) => a.d - b.d);
  const best = scored[0];
  return best && best.d <= Math.max(2, Math.floor(wrong.length / 3)) ? best.c : undefined;
}
