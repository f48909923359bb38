// Reaping: what a run that died (SIGKILL, OOM, power cut) left behind — scratch databases, temporary
// folders, a record that reads "running" — removed by the next run and by `dbflow prune`.
//
// Only what provably belongs to a dead run is touched. A run is dead when its record has no result and
// either its process (pid on this host, from the record) is gone, or it held the run lock that the
// caller now holds (same pipeline and repository, another process). Runs of other hosts are never dead
// here. Scratch database names and temporary folder names carry the run id, so nothing of a live run matches.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { processAlive } from '../engine/process-alive.js';
import { PUBLISHING_FILE, readRunJson, runIds, runOwner } from '../engine/run-record.js';
import type { Registry } from '../plugins/registry.js';
import { MANIFEST_NAME } from '../repo/manifest.js';
import { scratchPrefix } from '../plugins/scratch-name.js';
import type { DatabaseConfig } from '../plugins/types.js';

/** The lock the caller holds: runs recorded as holding it, by another process, are dead. */
export interface HeldRunLock {
  pipeline: string;
  repository: string;
}

/** Ids of the runs under `stateDir` that died without finishing (no result.json), oldest first. */
export function deadRuns(stateDir: string, held?: HeldRunLock): string[] {
  return runIds(stateDir).filter((id) => {
    if (readRunJson(stateDir, id, 'result.json')) return false;
    const meta = readRunJson(stateDir, id, 'pipeline.json');
    const owner = runOwner(meta);
    if (!owner || owner.host !== hostname() || owner.pid === process.pid) return false;
    if (!processAlive(owner.pid, owner.host)) return true;
    return held !== undefined && meta?.name === held.pipeline && owner.repository === held.repository;
  });
}

/** Ids of the runs under `stateDir` whose record says `killed` (their scratch databases may still be on a server this caller did not reach). */
export function killedRuns(stateDir: string): string[] {
  return runIds(stateDir).filter((id) => readRunJson(stateDir, id, 'result.json')?.status === 'killed');
}

/** Removes the temporary folders of `ids` (`<tmp>/dbflow-<run id>-*`); returns them. */
export function reapTmpdirs(ids: readonly string[], root = tmpdir()): string[] {
  return ids.length ? removeFoldersWhere(root, (name) => ids.some((id) => name.startsWith(`dbflow-${id}-`))) : [];
}

/** The start of the name of a command's temporary folder (`dbflow restore`, `verify`): it carries the command's pid. */
export function commandTmpPrefix(command: string): string {
  return `dbflow-${command}-pid${process.pid}-`;
}

/** Removes the temporary folders of commands (restore, verify) whose process on this machine is gone; returns them. */
export function reapCommandTmpdirs(root = tmpdir()): string[] {
  return removeFoldersWhere(root, (name) => {
    const pid = /^dbflow-[a-z]+-pid(\d+)-/.exec(name)?.[1];
    return pid !== undefined && !processAlive(Number(pid), hostname());
  });
}

/**
 * The file in a temporary folder that names a process its owner started and must stop (a throwaway server,
 * which outlives a killed dbflow): `{ "pid_file" (whose first line is the pid), "cmdline" (a part of its command
 * line), "signal" }`. Written before the process starts, so that a kill while it starts leaves it named too.
 */
export const HELD_PROCESS_FILE = 'dbflow-process.json';

// The process a dead owner left running from `dir`, stopped: only while its command line still names what it was.
function stopHeldProcess(dir: string): void {
  let pid: number;
  let held: { pid_file?: unknown; cmdline?: unknown; signal?: unknown };
  try {
    held = JSON.parse(readFileSync(path.join(dir, HELD_PROCESS_FILE), 'utf8')) as typeof held;
    if (typeof held.pid_file !== 'string' || typeof held.cmdline !== 'string' || !held.cmdline) return;
    pid = Number(readFileSync(held.pid_file, 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return;
  }
  if (!(pid > 0) || !cmdline.includes(held.cmdline)) return;
  const signal = held.signal === 'SIGQUIT' || held.signal === 'SIGKILL' ? held.signal : 'SIGTERM';
  try {
    process.kill(pid, signal);
  } catch {
    return; // gone meanwhile
  }
  // Removed only once it is gone: a server that is still stopping writes into its folder (and would recreate it).
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; existsSync(`/proc/${pid}`) && waited < 10_000; waited += 50) Atomics.wait(nap, 0, 0, 50);
  if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
}

// Removes the entries of `root` whose name matches (stopping a process one names); an unreadable root removes nothing.
function removeFoldersWhere(root: string, match: (name: string) => boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!match(name)) continue;
    const dir = path.join(root, name);
    stopHeldProcess(dir);
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/** Drops the scratch databases of `ids` on the servers of `databases` whose driver can reap; a server that fails is reported, not thrown. */
export async function reapScratchDatabases(
  registry: Registry,
  databases: Record<string, DatabaseConfig>,
  ids: readonly string[],
  o: { signal: AbortSignal; log: (message: string) => void },
): Promise<string[]> {
  if (!ids.length) return [];
  const prefixes = ids.map(scratchPrefix);
  const dropped: string[] = [];
  for (const db of Object.values(databases)) {
    const driver = registry.drivers.get(db.driver);
    if (!driver?.reap) continue;
    try {
      dropped.push(...(await driver.reap({ db, prefixes, signal: o.signal, log: o.log })));
    } catch (err) {
      o.log(`warning: scratch databases of dead runs on database "${db.name}" could not be reaped: ${(err as Error).message}`);
    }
  }
  return dropped;
}

/** Writes the result.json of a dead run: status `killed`, ended at its last recorded event. */
export function markKilled(stateDir: string, id: string, by: string): void {
  const dir = path.join(stateDir, 'runs', id);
  const meta = readRunJson(stateDir, id, 'pipeline.json');
  const owner = runOwner(meta);
  const started = typeof meta?.started_at === 'string' ? meta.started_at : new Date(0).toISOString();
  let last = Date.parse(started);
  for (const f of ['events.jsonl', 'pipeline.json']) {
    try {
      last = Math.max(last, statSync(path.join(dir, f)).mtimeMs);
    } catch {
      // not written
    }
  }
  const who = owner ? `its process (pid ${owner.pid} on ${owner.host})` : 'its process';
  const result = {
    run_id: id,
    pipeline: typeof meta?.name === 'string' ? meta.name : '?',
    status: 'killed',
    started_at: started,
    finished_at: new Date(last).toISOString(),
    duration_ms: Math.max(0, Math.round(last - Date.parse(started))),
    error: `killed: ${who} ended without finishing the run; what it left was reaped by ${by}`,
    steps: {},
    summary: { steps: {}, artifacts: [], verifications: [] },
  };
  // Whole or absent, for the readers of records.
  const tmp = path.join(dir, 'result.json.tmp');
  writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
  renameSync(tmp, path.join(dir, 'result.json'));
}

/**
 * Withdraws the manifests of runs stopped between writing two of them (their record still holds the note of
 * publishing.json): a backup is published in every repository that holds a copy of it, or in none. `dead` are the
 * runs that died; runs that ended with the note (they could not withdraw them themselves) are tried too. Only runs of
 * `pipeline` when given (the caller has its storages' settings and credentials), and only manifests in its
 * `repositories`. A manifest that cannot be reached now keeps the note, for the next reaper.
 */
export async function withdrawHalfPublished(o: {
  stateDir: string;
  dead: readonly string[];
  pipeline?: string;
  repositories: readonly string[];
  registry: Registry;
  signal: AbortSignal;
  log: (message: string) => void;
}): Promise<string[]> {
  const withdrawn: string[] = [];
  for (const id of runIds(o.stateDir)) {
    const note = readRunJson(o.stateDir, id, PUBLISHING_FILE);
    if (!note || (!o.dead.includes(id) && !readRunJson(o.stateDir, id, 'result.json'))) continue;
    if (o.pipeline !== undefined && readRunJson(o.stateDir, id, 'pipeline.json')?.name !== o.pipeline) continue;
    try {
      withdrawn.push(...(await withdrawUnlessWhole(note.manifests, `run ${id}`, o)));
      rmSync(path.join(o.stateDir, 'runs', id, PUBLISHING_FILE), { force: true });
    } catch (err) {
      o.log(
        `warning: the manifests run ${id} was publishing when it stopped could not be checked (${(err as Error).message}); the next run tries again`,
      );
    }
  }
  return withdrawn;
}

/**
 * The manifests of one backup that `who` (a run that stopped) was publishing, as its note lists them (`manifests`):
 * when some exist and others do not, the existing ones are deleted (a backup is published in every repository of its
 * copies or in none); returns them. Only a `manifest.json` below one of `repositories` (the caller's pipeline's) is
 * looked at: a note is data, and whatever else it names is left alone, said so. Throws when a storage cannot be read.
 */
export async function withdrawUnlessWhole(
  manifests: unknown,
  who: string,
  o: { repositories: readonly string[]; registry: Registry; signal: AbortSignal; log: (message: string) => void },
): Promise<string[]> {
  const named = Array.isArray(manifests) ? manifests.filter((u): u is string => typeof u === 'string') : [];
  const inRepository = (url: string): boolean =>
    url.endsWith(`/${MANIFEST_NAME}`) && o.repositories.some((r) => url.startsWith(r.endsWith('/') ? r : `${r}/`));
  for (const url of named.filter((u) => !inRepository(u)))
    o.log(`warning: ${who} noted ${url} among its manifests, which is no manifest in this pipeline's repositories: left alone`);
  const urls = named.filter(inRepository);
  const present: string[] = [];
  for (const url of urls) {
    const listed = await o.registry.storageFor(url).list(url, { signal: o.signal });
    if (listed.some((x) => x.url === url)) present.push(url);
  }
  const missing = urls.filter((u) => !present.includes(u));
  if (!present.length || !missing.length) return [];
  for (const url of present) {
    await o.registry.storageFor(url).delete(url, { signal: o.signal });
    o.log(`withdrew ${url}: ${who} stopped while publishing its backup, before ${missing.join(', ')} was written`);
  }
  return present;
}

/** What a reaping did. */
export interface Reaped {
  runs: string[];
  databases: string[];
  tmpdirs: string[];
  /** Manifests withdrawn because their run stopped before it had written them all. */
  manifests?: string[];
}

/**
 * Reaps the dead runs under `stateDir`: withdraws a backup they published in only some of its repositories, drops their scratch databases (and those of runs marked killed
 * earlier) on the servers of `databases`, removes their temporary folders, marks them killed.
 */
export async function reapDeadRuns(o: {
  stateDir: string;
  held?: HeldRunLock;
  /** The held pipeline's upload repositories: a half publication is withdrawn only there (without them, not at all). */
  repositories?: readonly string[];
  registry: Registry;
  databases: Record<string, DatabaseConfig>;
  signal: AbortSignal;
  by: string;
  log: (message: string) => void;
}): Promise<Reaped> {
  const dead = deadRuns(o.stateDir, o.held);
  const repositories = o.repositories;
  const manifests = repositories
    ? await withdrawHalfPublished({ ...o, repositories, dead, ...(o.held && { pipeline: o.held.pipeline }) })
    : [];
  const databases = await reapScratchDatabases(o.registry, o.databases, [...dead, ...killedRuns(o.stateDir)], o);
  const tmpdirs = [...reapTmpdirs(dead), ...reapCommandTmpdirs()];
  for (const id of dead) {
    markKilled(o.stateDir, id, o.by);
    o.log(`run ${id} died without finishing (no result): marked killed`);
  }
  for (const dir of tmpdirs) o.log(`removed ${dir}, a temporary folder of a run or command that died`);
  return { runs: dead, databases, tmpdirs, manifests };
}

/** Reaps what needs no database connection — temporary folders, records — of the dead runs under `stateDir` (`dbflow prune`). */
export function reapDeadRunsHere(o: { stateDir: string; by: string; log: (message: string) => void }): Reaped {
  const dead = deadRuns(o.stateDir);
  const tmpdirs = [...reapTmpdirs(dead), ...reapCommandTmpdirs()];
  for (const id of dead) {
    markKilled(o.stateDir, id, o.by);
    o.log(`run ${id} died without finishing (no result): marked killed`);
  }
  for (const dir of tmpdirs) o.log(`removed ${dir}, a temporary folder of a run or command that died`);
  return { runs: dead, databases: [], tmpdirs };
}
