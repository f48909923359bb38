// A fleet on this machine for the tests: daemons and workers as separate dbflow processes around a private Redis.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { Redis } from 'ioredis';
import { readResults, type FleetResult } from '../../src/ops/fleet/streams.js';
import { spawnDbflow } from './cli.js';
import { onceAt, OPS_PASSPHRASE, OPS_STEPS_PLUGIN, sqlitePipeline } from './ops.js';
import { waitFor } from './processes.js';
import { startRedis, type RedisServer } from './redis.js';
import { tmpDir } from './tmp.js';

/** What every fleet test starts from: a private Redis, a folder, and how to stop what it starts when the test ends. */
export interface FleetSetup {
  redis: RedisServer;
  dir: string;
  cleanup: (fn: () => void) => void;
}

/** A private Redis and a folder for a fleet test; undefined when there is no redis-server and the test was skipped. */
export async function fleetSetup(t: TestContext): Promise<FleetSetup | undefined> {
  const redis = await startRedis(t);
  if (!redis) return undefined;
  return { redis, dir: tmpDir(t), cleanup: (fn) => void t.after(fn) };
}

/** A dbflow process of the fleet and everything it printed. */
export interface FleetProcess {
  name: string;
  proc: ReturnType<typeof spawnDbflow>;
  output: () => string;
  /** Waits until it printed a line matching `re`. */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<void>;
}

/** Starts `dbflow <args>` in `dir`; killed (SIGKILL) when `cleanup` runs, if still alive. */
export function startProcess(
  name: string,
  args: string[],
  o: { dir: string; env?: Record<string, string | undefined>; cleanup: (fn: () => void) => void },
): FleetProcess {
  const proc = spawnDbflow(args, { cwd: o.dir, env: { DBFLOW_LOCK_DIR: path.join(o.dir, 'locks'), ...o.env } });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
  o.cleanup(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  });
  return {
    name,
    proc,
    output: () => out,
    waitFor: async (re, timeoutMs = 60_000) => {
      await waitFor(
        `${name} to print ${re}`,
        () => re.test(out),
        timeoutMs,
        () => (proc.exitCode !== null ? `exit ${proc.exitCode}:\n${out}` : false),
      ).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${name} said:\n${out}`)));
    },
  };
}

/** A worker with its own state folder (as on its own machine); the passphrase secret is in its environment only. */
export function startWorker(
  dir: string,
  redisUrl: string,
  id: string,
  labels: string,
  cleanup: (fn: () => void) => void,
  o: { extra?: string[]; stateDir?: string } = {},
): FleetProcess {
  const args = ['worker', '--queue', redisUrl, '--id', id, ...(labels ? ['--labels', labels] : []), '--lease', '3s', ...(o.extra ?? [])];
  return startProcess(id, args, {
    dir,
    cleanup,
    env: { TEST_PASSPHRASE: OPS_PASSPHRASE, DBFLOW_STATE_DIR: o.stateDir ?? path.join(dir, `state-${id}`) },
  });
}

/** A daemon scheduling `pipelines/` into the queue; its environment has no secret. */
export function startDaemon(dir: string, redisUrl: string, name: string, cleanup: (fn: () => void) => void): FleetProcess {
  return startProcess(name, ['daemon', 'pipelines', '--queue', redisUrl, '--listen', '127.0.0.1:0'], {
    dir,
    cleanup,
    env: { TEST_PASSPHRASE: undefined, DBFLOW_STATE_DIR: path.join(dir, `state-${name}`) },
  });
}

/** Writes `pipelines/<name>.yaml`: the SQLite backup of the operations tests, due by `schedule` (UTC), with `runs_on` labels when given. */
export function writeSqlitePipeline(
  dir: string,
  name: string,
  schedule: string,
  labels: Record<string, string> = {},
  verify = false,
): void {
  mkdirSync(path.join(dir, 'pipelines'), { recursive: true });
  const runsOn = Object.keys(labels).length ? `runs_on: { labels: ${JSON.stringify(labels)} }\n` : '';
  writeFileSync(
    path.join(dir, 'pipelines', `${name}.yaml`),
    sqlitePipeline(name, `schedule: "${schedule}"\ntimezone: UTC\n${runsOn}`, verify),
  );
}

/** Every result in the stream, oldest first. */
export async function allResults(redis: Redis): Promise<FleetResult[]> {
  return (await readResults(redis, 100_000)).reverse();
}

/** The due times a daemon's log says were enqueued (by it or by another daemon before it), as `pipeline@ms` job ids. */
export function enqueuedIds(output: string): string[] {
  return [...output.matchAll(/(?:enqueued|already enqueued by another daemon:) (\S+@\d+) /g)].map((m) => m[1]!);
}

/**
 * Writes `pipelines/<name>.yaml`: the SQLite backup, then a step that sleeps `holdMs` after the upload, before the manifest
 * is published (what a kill or a pause interrupts); due once, `inMs` from now (or by `schedule`).
 */
export function writeHoldingPipeline(
  dir: string,
  name: string,
  o: { holdMs: number; schedule?: string; inMs?: number; untilFile?: string },
): string {
  mkdirSync(path.join(dir, 'pipelines'), { recursive: true });
  const log = path.join(dir, `${name}.hold.log`);
  // Far enough ahead for a daemon on a loaded machine to notice the file, validate it and schedule it (3 s was not).
  const at = new Date(Date.now() + (o.inMs ?? 10_000));
  const schedule = o.schedule ?? onceAt(at);
  writeFileSync(
    path.join(dir, 'pipelines', `${name}.yaml`),
    `${sqlitePipeline(name, `schedule: "${schedule}"\ntimezone: UTC\nplugins: [${JSON.stringify(OPS_STEPS_PLUGIN)}]`, false)}  - id: hold
    uses: sleep
    needs: upload
    with: { ms: ${o.holdMs}, log: ${JSON.stringify(log)}${o.untilFile ? `, until_file: ${JSON.stringify(o.untilFile)}` : ''} }
`,
  );
  return log;
}
