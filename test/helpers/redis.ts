// A private redis-server for a test: its own port and folder, stopped (and restartable) by the test.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { freePort } from '../../src/plugins/free-port.js';
import { tmpDir } from './tmp.js';

export interface RedisServer {
  port: number;
  url: string;
  /** A client for the test's own reads (closed after the test). */
  client: Redis;
  /** Stops the server (SIGTERM; with `persistent`, what it holds is on disk and comes back on start). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
}

/** Starts redis-server; without it, CI=true fails naming the package, elsewhere the test is skipped (undefined). */
export async function startRedis(t: TestContext, o: { persistent?: boolean } = {}): Promise<RedisServer | undefined> {
  if (spawnSync('redis-server', ['--version']).error) {
    const message = 'redis-server is not installed: apt-get install redis-server';
    if (process.env.CI === 'true') throw new Error(message);
    t.skip(message);
    return undefined;
  }
  const dir = tmpDir(t, 'dbflow-redis-');
  const port = await freePort();
  // Without persistence unless asked: a restart test keeps every write in the append-only file, as a production Redis should.
  const persistence = o.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  let proc: ResultPromise | undefined;
  const start = async (): Promise<void> => {
    proc = execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir], {
      reject: false,
      stdout: 'pipe',
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}:\n${out}`)), 10_000);
      proc!.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void proc!.then((r) => reject(new Error(`redis-server ended (${String(r.exitCode)}):\n${out}`)));
    });
  };
  const stop = async (): Promise<void> => {
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGTERM');
    await proc;
  };
  await start();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null, lazyConnect: false });
  client.on('error', () => undefined);
  t.after(async () => {
    client.disconnect();
    await stop();
  });
  return { port, url: `redis://127.0.0.1:${port}`, client, stop, start };
}

/** Every value in the Redis: strings, hashes, lists, sets, sorted sets and stream entries, as text. */
export async function everyValue(redis: Redis): Promise<{ keys: number; text: string }> {
  const parts: string[] = [];
  let n = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      n++;
      parts.push(key);
      const type = await redis.type(key);
      if (type === 'string') parts.push((await redis.get(key)) ?? '');
      else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else parts.push(`(${type})`);
    }
  } while (cursor !== '0');
  return { keys: n, text: parts.join('\n') };
}
