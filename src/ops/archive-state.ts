// What `dbflow archive` last stored, in the state folder: what `dbflow status` and the metrics read.
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The state of one archived database. */
export interface ArchiveState {
  pipeline: string;
  database: string;
  system: string;
  /** The archive's folder of this system. */
  folder: string;
  /** The last time everything received was stored (the start of that pass): the archive's recovery point. */
  synced_at: string;
  /** The newest log file stored, and when. */
  newest_file?: string;
  newest_stored_at?: string;
  /** The log position the stored files reach. */
  position?: string;
  pid: number;
}

/** The folder of one pipeline's database below the state folder: its spool, state and lock. */
export function archiveDir(stateDir: string, pipeline: string, database: string): string {
  return path.join(stateDir, 'archive', pipeline, database);
}

/** Writes the state (replaced atomically). */
export function writeArchiveState(dir: string, state: ArchiveState): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'state.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/** Every archive state under the state folder (unreadable ones left out). */
export function readArchiveStates(stateDir: string): ArchiveState[] {
  const root = path.join(stateDir, 'archive');
  const out: ArchiveState[] = [];
  const dirs = (d: string): string[] => {
    try {
      return readdirSync(d, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return [];
    }
  };
  for (const pipeline of dirs(root))
    for (const database of dirs(path.join(root, pipeline))) {
      try {
        out.push(JSON.parse(readFileSync(path.join(root, pipeline, database, 'state.json'), 'utf8')) as ArchiveState);
      } catch {
        // no state yet
      }
    }
  return out;
}
