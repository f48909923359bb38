// Backups of PostgreSQL through the CLI: the pipeline, the run, its manifest, stock-tools restores, pg_dump processes.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Manifest } from '../../src/index.js';
import { repoRoot, spawnDbflow, type CliResult } from './cli.js';

/** The test plugin with the `pg-sql` and `throttle` steps. */
export const TEST_STEPS_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'postgres-steps.ts');

/** The passphrase of every test backup (the `TEST_PASSPHRASE` secret). */
export const PASSPHRASE = 'dbflow-postgres-test-passphrase';

/** What varies between the test pipelines. */
export interface PipelineOptions {
  url: string;
  /** Adds the `pg_password` secret (env TEST_PG_PASSWORD) as the database's `password`. */
  password?: boolean;
  options?: Record<string, unknown>;
  /** Steps between snapshot and dump (flow mappings as objects); the dump needs them. */
  between?: Record<string, unknown>[];
  /** A `throttle` transform between dump and compress, waiting this long after each chunk. */
  throttleMs?: number;
  /** File name of the artifact (default app.dump.zst.pgp). */
  artifact?: string;
}

/** The YAML of a backup of one database `app`: snapshot → dump → zstd → OpenPGP → file → restore-test → rowcount-check. */
export function backupPipeline(o: PipelineOptions): string {
  const db = {
    driver: 'postgres',
    url: o.url,
    ...(o.password && { password: '{{ secrets.pg_password }}' }),
    ...(o.options && { options: o.options }),
  };
  const plugins = o.between?.length || o.throttleMs !== undefined ? `plugins: ${JSON.stringify([TEST_STEPS_PLUGIN])}\n` : '';
  const between = (o.between ?? []).map((s) => `  - ${JSON.stringify({ needs: ['snapshot'], ...s })}\n`).join('');
  const needs = o.between?.length ? `needs: ${JSON.stringify(o.between.map((s) => s.id))}, ` : '';
  const throttle =
    o.throttleMs !== undefined ? `  - { id: throttle, uses: throttle, input: dump, with: { delay_ms: ${o.throttleMs} } }\n` : '';
  return `version: 1
name: pgtest
timeout: 3m
${plugins}secrets:
  passphrase: { env: TEST_PASSPHRASE }
${o.password ? '  pg_password: { env: TEST_PG_PASSWORD }\n' : ''}databases:
  app: ${JSON.stringify(db)}
steps:
  - { id: snapshot, uses: snapshot, with: { databases: [app] } }
${between}  - { id: dump, uses: dump, ${needs}with: { database: app, snapshot: snapshot } }
${throttle}  - { id: compress, uses: compress, input: ${throttle ? 'throttle' : 'dump'}, with: { algorithm: zstd, level: 3 } }
  - { id: encrypt, uses: encrypt, input: compress, with: { passphrase: "{{ secrets.passphrase }}" } }
  - { id: upload, uses: upload, input: encrypt, with: { to: "file://./backups/{{ run.id }}/${o.artifact ?? 'app.dump.zst.pgp'}" } }
  - { id: restore_test, uses: restore-test, with: { from: upload, passphrase: "{{ secrets.passphrase }}" } }
  - { id: rowcount_check, uses: rowcount-check, with: { restored: restore_test, snapshot: snapshot } }
`;
}

/** Writes `pipeline.yaml` into `dir`; returns its path. */
export function writePipeline(dir: string, yaml: string, name = 'pipeline.yaml'): string {
  const file = path.join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

/** A finished CLI run and the id it printed. */
export interface BackupRun extends CliResult {
  runId: string;
}

/** The environment of a backup run: the passphrase, and the database password when given. */
export function backupEnv(password?: string): Record<string, string> {
  return { TEST_PASSPHRASE: PASSPHRASE, ...(password !== undefined && { TEST_PG_PASSWORD: password }) };
}

/** The run id in the CLI's summary line, e.g. `(run 20261124T030000Z-3fa2)`. */
export function runIdOf(stdout: string): string {
  const id = /\(run ([0-9A-Za-z-]+)\)/.exec(stdout)?.[1];
  if (!id) throw new Error(`no run id in the output:\n${stdout}`);
  return id;
}

/** `dbflow run <file>` in `cwd`, killed after `timeoutMs`. */
export async function runBackup(cwd: string, file: string, env: Record<string, string>, timeoutMs = 120_000): Promise<BackupRun> {
  const sub = spawnDbflow(['run', file], { cwd, env });
  const timer = setTimeout(() => sub.kill('SIGKILL'), timeoutMs);
  try {
    const r = await sub;
    const result = { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    return { ...result, runId: runIdOf(result.stdout) };
  } finally {
    clearTimeout(timer);
  }
}

/** The published manifest of a run. */
export function readManifest(cwd: string, runId: string): Manifest {
  return JSON.parse(readFileSync(path.join(cwd, 'backups', runId, 'manifest.json'), 'utf8')) as Manifest;
}

/** Every `manifest.json` below `dir`. */
export function manifestsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => path.basename(f) === 'manifest.json');
}

/** Every file of a run record, as text: `.dbflow/runs/<id>/**`. */
export function runRecordText(cwd: string, runId: string): Record<string, string> {
  const dir = path.join(cwd, '.dbflow', 'runs', runId);
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(dir, f);
    if (statSync(file).isFile()) out[f] = readFileSync(file, 'utf8');
  }
  return out;
}

/** The scratch database restore-test makes for `db` in a run (`dbflow_verify_<run>_<db>`). */
export function verifyDatabaseName(runId: string, db = 'app'): string {
  return `dbflow_verify_${runId}_${db}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

/** The scratch-database prefix of a run: every `dbflow_verify_` database it could have made. */
export function verifyPrefix(runId: string): string {
  return `dbflow_verify_${runId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

/**
 * Restores an artifact with stock tools: `gpg --decrypt | zstd -d | pg_restore`, or for the directory
 * format `… | tar -x` and `pg_restore -Fd`. `work` is a folder for gpg's home and the extracted files.
 */
export async function stockRestore(
  artifact: string,
  targetUrl: string,
  work: string,
  options: { directory?: boolean; password?: string } = {},
): Promise<void> {
  const home = path.join(work, 'gnupg');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const passFile = path.join(work, 'passphrase');
  writeFileSync(passFile, PASSPHRASE, { mode: 0o600 });
  const decrypt = 'gpg --batch --quiet --homedir "$GH" --pinentry-mode loopback --passphrase-file "$PF" --decrypt "$ARTIFACT" | zstd -d -q';
  const env = {
    GH: home,
    PF: passFile,
    ARTIFACT: artifact,
    TARGET: targetUrl,
    ...(options.password !== undefined && { PGPASSWORD: options.password }),
  };
  if (!options.directory) {
    await execa('bash', ['-o', 'pipefail', '-c', `${decrypt} | pg_restore --no-owner --clean --if-exists --exit-on-error -d "$TARGET"`], {
      env,
    });
    return;
  }
  const out = path.join(work, 'extracted');
  mkdirSync(out);
  await execa('bash', ['-o', 'pipefail', '-c', `${decrypt} | tar -x -C "$OUT"`], { env: { ...env, OUT: out } });
  const toc = [out, ...readdirSync(out, { recursive: true, encoding: 'utf8' }).map((f) => path.join(out, f))].find((p) =>
    existsSync(path.join(p, 'toc.dat')),
  );
  if (!toc) throw new Error(`no toc.dat in the extracted artifact: ${readdirSync(out, { recursive: true, encoding: 'utf8' }).join(', ')}`);
  await execa('pg_restore', ['-Fd', '-j', '2', '--no-owner', '--clean', '--if-exists', '--exit-on-error', '-d', targetUrl, toc], { env });
}

/** A process seen below the CLI. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  /** argv joined by spaces. */
  cmdline: string;
  /** The executable (when readable). */
  exe: string;
  /** Its environment, `NAME=value` joined by newlines (empty when unreadable). */
  environ: string;
}

function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // another user's process, or gone
    }
    let environ = '';
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').join('\n');
    } catch {
      // gone
    }
    return { pid, ppid, comm, cmdline, exe, environ };
  } catch {
    return undefined;
  }
}

/** Every process below `root` (children, grandchildren, …) right now. */
export function descendants(root: number): ProcessInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProcess(Number(d)))
    .filter((p): p is ProcessInfo => p !== undefined);
  const out: ProcessInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}

/** Bytes a process has written so far (`wchar` of /proc/<pid>/io), or 0. */
export function bytesWritten(pid: number): number {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Polls `probe` every 20 ms until it returns a value; fails after `timeoutMs` with `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  stop?: () => boolean,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (stop?.()) throw new Error(`gave up waiting for ${what}: the process ended`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The pg_dump that a process started (the leader, not its -j workers), once it runs the real binary. */
export function pgDumpBelow(root: number): ProcessInfo | undefined {
  const procs = descendants(root);
  const dumps = procs.filter((p) => p.comm === 'pg_dump');
  return dumps.find((p) => !dumps.some((q) => q.pid === p.ppid) && path.basename(p.exe) === 'pg_dump');
}
