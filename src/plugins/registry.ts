// The installed plugins, indexed by step name, driver, storage scheme and codec.
import { PluginError } from '../errors.js';
import { checkSchema, compile } from '../schema/validator.js';
import type { Codec, DatabaseDriver, JsonSchema, Plugin, StepDefinition, Storage } from './types.js';

const KINDS = ['task', 'source', 'transform', 'sink'];

/** Every step type, driver, storage and codec that a run can use. */
export class Registry {
  readonly plugins: { plugin: Plugin; from: string }[] = [];
  readonly steps = new Map<string, StepDefinition>();
  readonly drivers = new Map<string, DatabaseDriver>();
  readonly storages = new Map<string, Storage>();
  readonly codecs = new Map<string, Codec>();
  private readonly owner = new Map<string, string>();

  /**
   * Add a plugin after checking that it keeps the contract; `from` names where it came from.
   * Schemas are compiled in Ajv strict mode unless `trusted` (first-party plugins, whose schemas a
   * test compiles; a pipeline compiles the schemas of the steps it uses anyway).
   */
  add(plugin: Plugin, from: string, trusted = false): void {
    const check = trusted ? checkSchema : (s: JsonSchema) => void compile(s);
    const where = `plugin "${plugin?.name ?? '?'}" (${from})`;
    if (!plugin || typeof plugin.name !== 'string' || !plugin.name) {
      throw new PluginError(`${from} does not export a plugin: default-export definePlugin({ name, steps }).`);
    }
    if (this.plugins.some((p) => p.plugin.name === plugin.name)) {
      throw new PluginError(`${where} is loaded twice; a plugin name must be unique.`);
    }
    for (const step of plugin.steps ?? []) {
      const what = `step "${String(step?.uses)}" of ${where}`;
      if (typeof step?.uses !== 'string' || !/^[a-z][a-z0-9-]*$/.test(step.uses)) {
        throw new PluginError(`${what} needs a "uses" name of lowercase letters, digits and -.`);
      }
      if (!KINDS.includes(step.kind)) throw new PluginError(`${what} has kind "${String(step.kind)}"; use one of ${KINDS.join(', ')}.`);
      if (typeof step.run !== 'function') throw new PluginError(`${what} has no run(ctx) function.`);
      if (!step.with || typeof step.with !== 'object') {
        throw new PluginError(`${what} declares no "with" schema; every step type must (use { type: 'object', additionalProperties: false } for none).`);
      }
      for (const [name, schema] of [['with', step.with], ['outputs', step.outputs]] as const) {
        if (!schema) continue;
        try {
          check(schema);
        } catch (err) {
          throw new PluginError(`${what}: its "${name}" schema is invalid: ${(err as Error).message}`);
        }
      }
      this.claim(this.steps, step.uses, step, `step "${step.uses}"`, where);
    }
    for (const d of plugin.drivers ?? []) {
      for (const fn of ['snapshot', 'dump', 'scratch', 'restore', 'rowCounts'] as const) {
        if (typeof d[fn] !== 'function') throw new PluginError(`driver "${d.name}" of ${where} has no ${fn}() function.`);
      }
      check(d.options ?? {});
      this.claim(this.drivers, d.name, d, `driver "${d.name}"`, where);
    }
    for (const s of plugin.storages ?? []) this.claim(this.storages, s.scheme, s, `storage "${s.scheme}:"`, where);
    for (const c of plugin.codecs ?? []) this.claim(this.codecs, c.name, c, `codec "${c.name}"`, where);
    this.plugins.push({ plugin, from });
  }

  private claim<T>(map: Map<string, T>, name: string, value: T, what: string, where: string): void {
    const key = `${what}`;
    const prev = this.owner.get(key);
    if (prev) throw new PluginError(`${where} declares ${what}, which ${prev} already declares.`);
    this.owner.set(key, where);
    map.set(name, value);
  }
}
