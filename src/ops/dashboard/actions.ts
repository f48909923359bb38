// "Run now" and "verify": dbflow itself in a child process, so that the dashboard never waits on a run.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { readRunJson, runOwner } from '../../engine/run-record.js';

/** How to start dbflow: node's arguments and the entry script (the same one that serves the dashboard). */
export interface DbflowEntry {
  node: string;
  args: string[];
  /** The environment of the runs: the dashboard's, without its token. */
  env: Record<string, string | undefined>;
}

/** Starts `dbflow <args>`; it outlives a request and logs to the state folder like any run. */
export function startDbflow(entry: DbflowEntry, args: string[]): number {
  const child = spawn(entry.node, [...entry.args, ...args], { stdio: 'ignore', env: entry.env, detached: false });
  child.on('error', () => undefined);
  child.unref();
  return child.pid ?? -1;
}

/** The run record a process started, once it appears (undefined after `waitMs`). */
export async function runOf(stateDir: string, pid: number, since: Set<string>, waitMs = 15_000): Promise<string | undefined> {
  const until = Date.now() + waitMs;
  const root = path.join(stateDir, 'runs');
  while (Date.now() < until) {
    let ids: string[] = [];
    try {
      ids = readdirSync(root);
    } catch {
      /* no run yet */
    }
    for (const id of ids) if (!since.has(id) && runOwner(readRunJson(stateDir, id, 'pipeline.json'))?.pid === pid) return id;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** The run ids there are now. */
export function currentRunIds(stateDir: string): Set<string> {
  try {
    return new Set(readdirSync(path.join(stateDir, 'runs')));
  } catch {
    return new Set();
  }
}
