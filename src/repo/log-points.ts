// How a point in time or in a log is written on the command line and in records: one parser for every reader.

/** An RFC 3339 time with its zone, e.g. 2026-12-05T14:03:00Z or 2026-12-05T15:03:00.250+01:00. */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$/;

/** A PostgreSQL log position as the server shows it, e.g. 0/3000148. */
export const LSN = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/i;

/** A PostgreSQL LSN as a number, for comparing. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/') as [string, string];
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}
