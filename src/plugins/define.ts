// defineStep / definePlugin: typed identity helpers for plugin authors.
import type { DatabaseDriver, Plugin, StepDefinition } from './types.js';

/** Declare a step type; `W` types `ctx.with`, `O` the outputs. */
export function defineStep<W = Record<string, unknown>, O = Record<string, unknown>>(step: StepDefinition<W, O>): StepDefinition<W, O> {
  return step;
}

/** Declare a plugin: its steps, database drivers, storages and codecs. */
export function definePlugin(plugin: Plugin): Plugin {
  return plugin;
}

/** Declare a database driver for the generic snapshot/dump/restore-test/rowcount-check steps. */
export function defineDriver(driver: DatabaseDriver): DatabaseDriver {
  return driver;
}
