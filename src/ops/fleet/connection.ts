// The Redis a fleet shares: its URL (`--queue redis://…` or DBFLOW_QUEUE), connections, and the names of dbflow's keys in it.
import { Redis, type RedisOptions } from 'ioredis';
import { UsageError } from '../../errors.js';

/** Where the fleet's Redis is, parsed from a `redis://[user:password@]host[:port][/db]` URL (or `rediss://` for TLS). */
export interface QueueTarget {
  options: RedisOptions;
  /** The URL without its password, for messages. */
  shown: string;
}

/** Parses a queue URL; a usage error names what is wrong. */
export function parseQueueUrl(url: string): QueueTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--queue must be a Redis URL such as redis://127.0.0.1:6379, not "${url.replace(/:[^:@/]*@/, ':***@')}".`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new UsageError(`--queue must be a redis:// or rediss:// URL, not ${u.protocol}//… (e.g. redis://127.0.0.1:6379).`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new UsageError(`--queue: the database of ${u.protocol}//${u.host}/${db} must be a number.`);
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username && { username: decodeURIComponent(u.username) }),
    ...(u.password && { password: decodeURIComponent(u.password) }),
    ...(db !== '' && { db: Number(db) }),
    ...(u.protocol === 'rediss:' && { tls: {} }),
    // Workers and schedulers wait for Redis through a restart instead of failing their commands (BullMQ needs this).
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
  const shown = `${u.protocol}//${u.username ? `${u.username}${u.password ? ':***' : ''}@` : u.password ? ':***@' : ''}${u.host}${u.pathname}`;
  return { options, shown };
}

/** A new connection; errors (Redis restarting) are reported through `warn` once per outage, and the client reconnects. */
export function connect(target: QueueTarget, warn: (message: string) => void, name = 'dbflow'): Redis {
  const redis = new Redis({ ...target.options, connectionName: name });
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    warn(`Redis at ${target.shown}: ${err.message}; reconnecting…`);
  });
  redis.on('ready', () => {
    if (down) warn(`Redis at ${target.shown}: connected again`);
    down = false;
  });
  return redis;
}
