// How a put cuts its stream into multipart parts: their size, how many go at once, and the largest object that fits.
import { DbflowError } from '../../src/plugin-api.js';
import type { S3Config } from './client.js';

/** S3's limit on the parts of one multipart upload. */
export const MAX_PARTS = 10_000;

/** Default part size: objects up to 156 GiB (10,000 × 16 MiB). */
export const DEFAULT_PART_MIB = 16;

/** Default number of parts uploaded at once. */
export const DEFAULT_QUEUE_SIZE = 4;

/** How a put is cut into parts. */
export interface PartPlan {
  /** Bytes per part (the last one may be smaller). */
  partSize: number;
  /** Parts uploaded at once; about (queueSize + 2) parts are held in memory. */
  queueSize: number;
}

/**
 * The part plan from storage.s3.part_size_mib, else DBFLOW_S3_PART_SIZE_MIB (5 to 5120, default 16), and
 * storage.s3.queue_size, else DBFLOW_S3_QUEUE_SIZE (1 to 16, default 4). The stream's length is unknown when the
 * upload starts, so the part size fixes the largest object (10,000 parts) and, with the queue size, the memory a
 * put holds.
 */
export function partPlan(config: S3Config = {}, env: NodeJS.ProcessEnv = process.env): PartPlan {
  const mib =
    config.part_size_mib ??
    whole(env, 'DBFLOW_S3_PART_SIZE_MIB', DEFAULT_PART_MIB, 5, 5120, 'MiB per part; the largest object is 10,000 parts');
  return {
    partSize: mib * 2 ** 20,
    queueSize: config.queue_size ?? whole(env, 'DBFLOW_S3_QUEUE_SIZE', DEFAULT_QUEUE_SIZE, 1, 16, 'parts uploaded at once'),
  };
}

// A whole number from the environment, within bounds.
function whole(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, what: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new DbflowError(`${name} is "${raw}"; set a whole number from ${min} to ${max} (${what}).`);
  }
  return n;
}
