// A receiver program that writes into a spool folder names itself there, so that one left running by a killed dbflow
// (it would hold the server's stream and write into the same files) is stopped before another starts.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResultPromise } from 'execa';
import type { LogReceiver } from './types.js';

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

/** What `superviseReceiver` watches: the receiver program, its spool claim, and how its lines and failures read. */
export interface ReceiverProgram {
  /** The running program (its stderr piped, not buffered). */
  sub: ResultPromise;
  claim: SpoolClaim;
  /** The server's identity (the archive's folder for it). */
  system: string;
  /** The signal on which it stores what it has and exits. */
  stopSignal: 'SIGINT' | 'SIGTERM';
  /** Each non-empty line it writes on stderr; `stopping` once stop() was called. */
  onLine(line: string, stopping: boolean): void;
  /** The error for a failure on its own, given the end of what it wrote. */
  failure(err: unknown, tail: string): Error;
}

/**
 * A receiver of the log from a running program: it keeps the end of what the program writes (for its failure), ends
 * quietly on stop(), and forgets its spool claim once the program has ended, however it ends.
 */
export function superviseReceiver(p: ReceiverProgram): LogReceiver {
  let tail = '';
  let stopping = false;
  p.sub.stderr?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      tail = `${tail}\n${line}`.slice(-4000);
      p.onLine(line, stopping);
    }
  });
  const done = p.sub.then(
    () => undefined,
    (err: unknown) => {
      if (stopping) return;
      throw p.failure(err, tail);
    },
  );
  done.catch(() => undefined).finally(() => p.claim.release());
  return {
    system: p.system,
    done,
    async stop() {
      stopping = true;
      if (p.sub.exitCode === null && p.sub.signalCode === null) p.sub.kill(p.stopSignal);
      await done.catch(() => undefined);
    },
  };
}
