// A receiver program that writes into a spool folder names itself there, so that one left running by a killed dbflow
// (it would hold the server's stream and write into the same files) is stopped before another starts.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What `claimSpool` gives: record the new program's pid, and forget it once the program has ended. */
export interface SpoolClaim {
  record(pid: number | undefined): void;
  release(): void;
}

/**
 * Stops a `program` (matched by its command line) that `<spool>/<program>.pid` names and that is still running
 * (SIGINT, then SIGKILL after 5 s), and returns how to name the next one.
 */
export async function claimSpool(spool: string, program: string): Promise<SpoolClaim> {
  const file = path.join(spool, `${program}.pid`);
  let pid = 0;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    // none recorded
  }
  const running = (): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(program);
    } catch {
      return false;
    }
  };
  if (pid > 0 && running()) {
    process.kill(pid, 'SIGINT');
    for (let i = 0; i < 50 && running(); i++) await sleep(100);
    if (running()) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && running(); i++) await sleep(100);
  }
  return {
    record: (p) => {
      if (p !== undefined) writeFileSync(file, `${p}\n`);
    },
    release: () => rmSync(file, { force: true }),
  };
}
