// What steps hold past their own end: leased resources and scratch folders, released when dependents finish.
import { rmSync } from 'node:fs';
import { DbflowError } from '../errors.js';

interface Lease {
  resource: unknown;
  release: (r: unknown) => Promise<void> | void;
}

/** Leases and tmpdirs by step instance key. */
export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private readonly tmpdirs = new Map<string, string[]>();
  /** Steps still running after the engine stopped waiting for them (cancelled, timed out): they may still write. */
  private readonly stragglers = new Map<string, Promise<void>>();

  constructor(private readonly log: (key: string, level: 'debug' | 'warn', message: string) => void) {}

  lease(key: string, resource: unknown, release: Lease['release']): void {
    if (this.leases.has(key)) throw new DbflowError(`step "${key}" leased a resource twice; a step holds at most one lease.`);
    this.leases.set(key, { resource, release });
  }

  resourceOf(key: string): { resource: unknown } | undefined {
    return this.leases.get(key);
  }

  /** Records a scratch folder of a step, removed when the step's hold is released. */
  tmpdir(key: string, dir: string): void {
    this.tmpdirs.set(key, [...(this.tmpdirs.get(key) ?? []), dir]);
  }

  /** A step's run that goes on after the engine stopped waiting: its tmpdirs are removed again once it ends. */
  straggler(key: string, running: Promise<unknown>): void {
    this.stragglers.set(
      key,
      running.then(
        () => undefined,
        () => undefined,
      ),
    );
  }

  /**
   * Waits, at most `ms`, for the steps still running after they were abandoned, and removes what they made
   * meanwhile in their tmpdirs (a folder made again by a late `mkdir -p`, say).
   */
  async settleStragglers(ms: number): Promise<void> {
    if (!this.stragglers.size) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.stragglers.values()), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    for (const dir of this.removed) rmSync(dir, { recursive: true, force: true });
  }

  // Every tmpdir removed so far, for a last sweep after stragglers.
  private readonly removed: string[] = [];

  /** Releases a step's lease (a failing release is logged) and removes its tmpdirs. */
  async release(key: string): Promise<void> {
    const lease = this.leases.get(key);
    this.leases.delete(key);
    if (lease) {
      try {
        await lease.release(lease.resource);
        this.log(key, 'debug', 'lease released');
      } catch (err) {
        this.log(key, 'warn', `releasing its lease failed: ${(err as Error).message}`);
      }
    }
    for (const dir of this.tmpdirs.get(key) ?? []) {
      rmSync(dir, { recursive: true, force: true });
      if (this.stragglers.has(key)) this.removed.push(dir);
    }
    this.tmpdirs.delete(key);
  }

  /** Releases every hold for which `due(key)` says so (all of them without `due`). */
  async releaseWhere(due: (key: string) => boolean = () => true): Promise<void> {
    for (const key of new Set([...this.leases.keys(), ...this.tmpdirs.keys()])) if (due(key)) await this.release(key);
  }
}
