// What the conformance suites share: running an author's setup in a test, waiting for a condition, recognising errors.
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * An author's setup: called at the start of every test of a suite with that test's context. It returns
 * what the suite needs, or `undefined` after calling `t.skip(reason)` when what it needs is not there
 * (a server, a program). Its `cleanup`, if any, runs after the test.
 */
export type Setup<T extends { cleanup?(): void | Promise<void> }> = (t: TestContext) => T | undefined | Promise<T | undefined>;

/** Runs `setup` for test `t`, registering its cleanup; undefined when the setup skipped the test. */
export async function prepare<T extends { cleanup?(): void | Promise<void> }>(t: TestContext, setup: Setup<T>): Promise<T | undefined> {
  const got = await setup(t);
  if (got?.cleanup) {
    const cleanup = got.cleanup.bind(got);
    t.after(() => cleanup());
  }
  return got;
}

/** Polls `check` every 25 ms until it returns a truthy value, which it resolves to; rejects after `ms`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 15_000): Promise<NonNullable<T>> {
  const deadline = performance.now() + ms;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (performance.now() > deadline) throw new Error(`dbflow/testing: gave up after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * True when `err` is an instance of the dbflow error class named `kind` (or of a subclass), also when it
 * comes from another copy of dbflow's modules (a plugin's own install): classes are compared by name.
 */
export function isKind(err: unknown, kind: string): boolean {
  if (err === null || typeof err !== 'object') return false;
  for (let p: unknown = Object.getPrototypeOf(err); p !== null && typeof p === 'object'; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === kind) return true;
  }
  return false;
}

/** True when `err` or one of its causes is `target` or has a message that contains `text`. */
export function causedBy(err: unknown, target: Error): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e === target || e.message.includes(target.message)) return true;
  }
  return false;
}

/** What an error is, for an assertion message. */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
