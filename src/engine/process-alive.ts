// Whether a process named by pid and host may still be running, as far as this machine can tell.
import { hostname } from 'node:os';

/** False only when the process is on this machine and gone; a process on another host counts as alive. */
export function processAlive(pid: number, host: string): boolean {
  if (host !== hostname()) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
