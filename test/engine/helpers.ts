// Shared by the engine tests: load inline YAML with the fake plugin and run it in a temp state dir.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createFake, type FakeState } from '../helpers/fake-plugin.js';
import { tmpDir } from '../helpers/tmp.js';
import {
  loadPipelineText,
  runPipeline,
  type Clock,
  type EngineEvent,
  type LoadedPipeline,
  type RunOptions,
  type RunResult,
} from '../../src/index.js';

export interface Prepared {
  loaded: LoadedPipeline;
  state: FakeState;
  stateDir: string;
  env: Record<string, string | undefined>;
}

export interface Ran extends Prepared {
  result: RunResult;
  events: EngineEvent[];
}

/** Load `yaml` (as `engine.yaml`) with a fresh fake plugin and a temp state dir. */
export async function prepare(t: TestContext, yaml: string, env: Record<string, string | undefined> = {}): Promise<Prepared> {
  const fake = createFake();
  const stateDir = tmpDir(t);
  const loaded = await loadPipelineText('engine.yaml', yaml, stateDir, { plugins: [fake.plugin], env });
  return { loaded, state: fake.state, stateDir, env };
}

/** Run a prepared pipeline to the end, collecting its events. */
export async function run(p: Prepared, options: Omit<RunOptions, 'stateDir' | 'env' | 'onEvent'> = {}): Promise<Ran> {
  const events: EngineEvent[] = [];
  const result = await runPipeline(p.loaded, { ...options, stateDir: p.stateDir, env: p.env, onEvent: (e) => events.push(e) });
  return { ...p, result, events };
}

/** Load and run `yaml`. */
export async function runYaml(
  t: TestContext,
  yaml: string,
  options: Omit<RunOptions, 'stateDir' | 'env' | 'onEvent'> & { env?: Record<string, string | undefined> } = {},
): Promise<Ran> {
  const { env, ...rest } = options;
  return run(await prepare(t, yaml, env), rest);
}

/** `version: 1`, a name, and the given `steps:` lines (plus optional extra top-level lines). */
export function yaml(steps: string, head = ''): string {
  return `version: 1\nname: engine\n${head}steps:\n${steps}`;
}

/** Status of every step instance, as a plain object. */
export function statuses(result: RunResult): Record<string, string> {
  return Object.fromEntries([...result.steps].map(([k, s]) => [k, s.status]));
}

/** The state of one step instance. */
export function stepState(result: RunResult, key: string): NonNullable<ReturnType<RunResult['steps']['get']>> {
  const s = result.steps.get(key);
  assert.ok(s, `the run has a step "${key}"`);
  return s;
}

/** Events of one type. */
export function ofType<T extends EngineEvent['type']>(events: EngineEvent[], type: T): Extract<EngineEvent, { type: T }>[] {
  return events.filter((e): e is Extract<EngineEvent, { type: T }> => e.type === type);
}

/** Wait until `check` is true (polling), or fail after `ms`. */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A clock a test controls: it records every wait the engine asks for; waits that `due` picks end at once, others never. */
export interface TestClock {
  clock: Clock;
  /** Every wait asked for, in milliseconds, in order. */
  waits: number[];
}

/** A clock on which the waits `due(ms)` picks end on the next turn of the event loop, and the others never do. */
export function testClock(due: (ms: number) => boolean): TestClock {
  const waits: number[] = [];
  const clock: Clock = {
    timer(fn, ms) {
      waits.push(ms);
      let cleared = false;
      if (due(ms)) setImmediate(() => cleared || fn());
      const handle = { clear: () => void (cleared = true), unref: () => handle };
      return handle;
    },
  };
  return { clock, waits };
}
