// Shared helpers of the benchmark: paths, timed child processes, statistics, the build check.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TreeUsage, Watcher } from './cpu-watch.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
/** Generated data (gitignored): cached source databases, outputs while a run lasts, results.json. */
export const DATA = path.join(ROOT, 'bench-data');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const MiB = 1024 * 1024;

/** A benchmark-internal failure: the figures cannot be trusted (exit non-zero). */
export class BenchError extends Error {}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) throw new BenchError('median of nothing');
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** What a process run under `/usr/bin/time` cost. */
export interface Timed {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time measured here with hrtime (includes fork/exec of the program). */
  wallMs: number;
  /** Peak RSS in KiB: the largest of the process and its waited-for children (GNU time %M). */
  maxRssKiB: number;
  userS: number;
  sysS: number;
  /** When the program was started (epoch ms). */
  startedAt: number;
  /** Each process's CPU and peak RSS, and the server's CPU, when a watcher was given. */
  tree?: TreeUsage;
}

export interface RunOpts {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also measure RSS/CPU with /usr/bin/time. */
  time?: boolean;
  /** Samples the process tree (and the server) while the program runs; made just before it starts. */
  watch?: () => Watcher;
}

/** Runs a program (never through an extra shell) and measures its wall time, and RSS/CPU when asked. */
export function run(file: string, args: readonly string[], opts: RunOpts = {}): Promise<Timed> {
  const timeDir = opts.time ? mkdtempSync(path.join(os.tmpdir(), 'dbflow-bench-time-')) : undefined;
  const timeFile = timeDir ? path.join(timeDir, 'time') : undefined;
  const [cmd, argv] = timeFile ? ['/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, file, ...args]] : [file, [...args]];
  return new Promise((resolve, reject) => {
    const watcher = opts.watch?.();
    const startedAt = Date.now();
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) watcher?.attach(child.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      watcher?.stop();
      reject(new BenchError(`cannot start ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const tree = watcher?.stop();
      let maxRssKiB = 0;
      let userS = 0;
      let sysS = 0;
      if (timeFile) {
        // GNU time writes "Command exited with non-zero status N" first when the program failed.
        const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
        const [, rss, user, sys] = last.split(' ').map(Number);
        maxRssKiB = rss ?? 0;
        userS = user ?? 0;
        sysS = sys ?? 0;
        rmSync(timeDir!, { recursive: true, force: true });
      }
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        wallMs,
        maxRssKiB,
        userS,
        sysS,
        startedAt,
        ...(tree && { tree }),
      });
    });
  });
}

/** Like `run`, but a non-zero exit is a benchmark failure. */
export async function runOk(file: string, args: readonly string[], opts: RunOpts = {}): Promise<Timed> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    const tail = `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-25).join('\n');
    throw new BenchError(`${path.basename(file)} ${args.join(' ')} exited with ${r.code}:\n${tail}`);
  }
  return r;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.(ts|json)$/.test(entry.name))
      newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/ or plugins/. */
export function ensureBuild(log: (s: string) => void): void {
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  const source = Math.max(newestMtime(path.join(ROOT, 'src')), newestMtime(path.join(ROOT, 'plugins')));
  if (built >= source) return;
  log(built ? 'dist/ is older than src/ or plugins/: npm run build …' : 'dist/ is missing: npm run build …');
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new BenchError(`npm run build failed:\n${(r.stdout + r.stderr).trim()}`);
}

/** A fresh folder for one piece of the benchmark (removed by the caller). */
export function scratchDir(prefix: string, under: string = os.tmpdir()): string {
  return mkdtempSync(path.join(under, `dbflow-bench-${prefix}-`));
}

export function fileSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

export function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}
