// The record of the last `dbflow verify` of a backup: verify.json, next to its manifest.
import { Readable } from 'node:stream';
import type { Storage } from '../plugins/types.js';
import { readText } from './backup.js';

export const VERIFY_RECORD_NAME = 'verify.json';

/** What `dbflow verify` found, per artifact. */
export interface VerifyRecord {
  format: 'dbflow-verify';
  version: 1;
  /** When the verification finished (ISO 8601, UTC). */
  verified_at: string;
  ok: boolean;
  /** The dbflow version that verified. */
  dbflow: string;
  artifacts: { path: string; ok: boolean; detail: string }[];
}

/** Writes the record (atomically, through the storage's put) into the backup's folder. */
export async function writeVerifyRecord(storage: Storage, folder: string, record: VerifyRecord): Promise<void> {
  const body = Readable.from([Buffer.from(`${JSON.stringify(record, null, 2)}\n`)]);
  await storage.put(`${folder}/${VERIFY_RECORD_NAME}`, body, { signal: new AbortController().signal });
}

/** The record in a backup's folder; undefined when there is none or it is not one. */
export async function readVerifyRecord(storage: Storage, folder: string): Promise<VerifyRecord | undefined> {
  try {
    const data = JSON.parse(await readText(storage, `${folder}/${VERIFY_RECORD_NAME}`, 1024 * 1024)) as Partial<VerifyRecord>;
    if (data.format !== 'dbflow-verify' || typeof data.ok !== 'boolean' || typeof data.verified_at !== 'string') return undefined;
    return data as VerifyRecord;
  } catch {
    return undefined; // a damaged record is no record: the backup is listed without it
  }
}
