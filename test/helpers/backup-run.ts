// Backups through the CLI, for any driver: the pipeline file, the run, its manifest and run record.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDatabaseName, scratchPrefix, type Manifest } from '../../src/index.js';
import { repoRoot, spawnDbflow, type CliResult } from './cli.js';

/** The test plugin with the `pg-sql` and `throttle` steps. */
export const TEST_STEPS_PLUGIN = path.join(repoRoot, 'test', 'fixtures', 'plugins', 'postgres-steps.ts');

/** The passphrase of every test backup (the `TEST_PASSPHRASE` secret). */
export const PASSPHRASE = 'dbflow-postgres-test-passphrase';

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
  return scratchDatabaseName(runId, db);
}

/** The scratch-database prefix of a run: every `dbflow_verify_` database it could have made. */
export function verifyPrefix(runId: string): string {
  return scratchPrefix(runId);
}
