// Backup repositories for the repo-command tests: a quickstart backup, copies of it as fake history, damage.
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../../src/index.js';
import { runIdOf } from './backup-run.js';
import { dbflow, repoRoot, type CliResult } from './cli.js';

/** A quickstart backup made in a folder of its own. */
export interface QuickstartBackup {
  cwd: string;
  runId: string;
  /** `file://./backups/quickstart` (relative to `cwd`). */
  repo: string;
  /** `file://./backups/quickstart/<run id>`. */
  url: string;
  /** The backup's folder on disk. */
  dir: string;
  passphraseFile: string;
  passphrase: string;
}

/** Copies the quickstart pipeline and its passphrase into `cwd` and runs it there. */
export async function quickstartBackup(cwd: string): Promise<QuickstartBackup> {
  for (const f of ['quickstart.yaml', 'quickstart.passphrase']) copyFileSync(path.join(repoRoot, 'pipelines', f), path.join(cwd, f));
  const run = await dbflow(['run', 'quickstart.yaml'], { cwd });
  if (run.exitCode !== 0) throw new Error(`the quickstart failed:\n${run.stdout}\n${run.stderr}`);
  const runId = runIdOf(run.stdout);
  const passphraseFile = path.join(cwd, 'quickstart.passphrase');
  return {
    cwd,
    runId,
    repo: 'file://./backups/quickstart',
    url: `file://./backups/quickstart/${runId}`,
    dir: path.join(cwd, 'backups', 'quickstart', runId),
    passphraseFile,
    passphrase: readFileSync(passphraseFile, 'utf8').trim(),
  };
}

/** The manifest in a backup folder. */
export function manifestIn(dir: string): Manifest {
  return JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** Copies a backup folder to `to` (made relative to nothing: absolute), then lets `edit` change its manifest. */
export function copyBackup(from: string, to: string, edit?: (m: Manifest) => void): string {
  cpSync(from, to, { recursive: true });
  if (edit) {
    const m = manifestIn(to);
    edit(m);
    writeFileSync(path.join(to, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
  }
  return to;
}

/** A backup copy that looks like a run started at `iso` (its run id and times rewritten). */
export function fakeRun(from: string, repoDir: string, iso: string, status: Manifest['status']): { runId: string; dir: string } {
  const runId = `${new Date(iso)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-f00d`;
  const dir = copyBackup(from, path.join(repoDir, runId), (m) => {
    m.run = { id: runId, started_at: new Date(iso).toISOString(), finished_at: new Date(Date.parse(iso) + 5000).toISOString() };
    m.status = status;
  });
  return { runId, dir };
}

/** Flips the lowest bit of the byte at `at` (default: the middle) of a file. */
export function flipByte(file: string, at?: number): void {
  const bytes = readFileSync(file);
  const i = at ?? Math.floor(bytes.length / 2);
  bytes[i] = bytes[i]! ^ 0x01;
  writeFileSync(file, bytes);
}

/** Cuts `n` bytes off the end of a file. */
export function truncateBy(file: string, n: number): void {
  truncateSync(file, statSync(file).size - n);
}

/** Every file below `dir`, relative to it, sorted. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(path.join(dir, f)).isFile())
    .sort();
}

/** The stdout of a command that must succeed (its stderr in the failure message). */
export function ok(r: CliResult, what: string): string {
  if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
