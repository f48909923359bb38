// The error of a data assertion's query, the same for every driver.
import { DbflowError } from '../errors.js';

/** A data assertion's query failed on `database`: ran over `timeoutMs` (`timedOut`), or the server's own words. */
export function assertionError(database: string, sql: string, err: unknown, timedOut: boolean, timeoutMs: number): DbflowError {
  const why = timedOut ? `it ran longer than its timeout of ${timeoutMs} ms` : ((err as { message?: string }).message ?? String(err));
  return new DbflowError(`database "${database}": the assertion query "${sql}" failed: ${why}.`, { cause: err });
}
