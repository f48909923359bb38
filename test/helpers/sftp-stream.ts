// Run as a child process by the SFTP stream test: puts N random bytes at a URL through the public API and reads
// them back, printing one JSON line: sha256 of what was sent and of what came back, timings, and RSS growth.
// Usage: node --import tsx sftp-stream.ts <url> <bytes>   (DBFLOW_SFTP_* in the environment)
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { builtinRegistry } from '../../src/index.js';
import { digest, randomInput } from './step-context.js';

/** What the child prints. */
export interface StreamReport {
  bytes: number;
  sentSha256: string;
  gotSha256: string;
  gotBytes: number;
  putMs: number;
  getMs: number;
  /** CPU time (user + system) this process spent in put and in get. */
  putCpuMs: number;
  getCpuMs: number;
  /** RSS after warming up (library loaded, one session opened), and the highest RSS sampled during put and get. */
  baseRss: number;
  peakRss: number;
  /** The kernel's high-water mark of RSS over the process's life (VmHWM). */
  vmHwm: number;
}

const [url, bytesArg] = process.argv.slice(2);
if (!url || !bytesArg) throw new Error('usage: sftp-stream.ts <url> <bytes>');
const bytes = Number(bytesArg);
const signal = new AbortController().signal;
const storage = (await builtinRegistry()).storages.get('sftp')!;

// Warm up: load ssh2, open one session, so that the baseline includes the library's fixed cost.
const warm = `${url}.warm`;
await storage.put(warm, Readable.from([Buffer.from('warm')]), { signal });
await storage.delete(warm);

const base = process.memoryUsage.rss();
let peak = base;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);

const input = randomInput(bytes, 64 * 1024);
const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return Math.round((used.user + used.system) / 1000);
};
let cpu = process.cpuUsage();
let started = performance.now();
await storage.put(url, input.stream, { signal });
const putMs = performance.now() - started;
const putCpuMs = cpuMs(cpu);

cpu = process.cpuUsage();
started = performance.now();
const got = await digest(await storage.get(url));
const getMs = performance.now() - started;
const getCpuMs = cpuMs(cpu);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage.rss());

const vmHwm = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
const report: StreamReport = {
  bytes,
  sentSha256: await input.sha256,
  gotSha256: got.sha256,
  gotBytes: got.bytes,
  putMs: Math.round(putMs),
  getMs: Math.round(getMs),
  putCpuMs,
  getCpuMs,
  baseRss: base,
  peakRss: peak,
  vmHwm,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
