// Whether a command works with a fleet: its queue URL from --queue or the environment (without loading the Redis client).

/** The environment variable that names the fleet's Redis when `--queue` is not given. */
export const QUEUE_ENV = 'DBFLOW_QUEUE';

/** `--queue`, else DBFLOW_QUEUE, else undefined (the single-machine mode). */
export function queueUrl(flag: string | undefined, env: Record<string, string | undefined> = process.env): string | undefined {
  const url = flag ?? env[QUEUE_ENV];
  return url === undefined || url === '' ? undefined : url;
}
