// The installed plugins, indexed by step name, driver, storage scheme and codec.
import { DbflowError, PluginError, UsageError } from '../errors.js';
import path from 'node:path';
import { compile, PATH_FORMAT } from '../schema/validator.js';
import { didYouMean } from '../spec/suggest.js';
import { checkContract } from './contract.js';
import { codecFrom1, driverFrom1 } from './contract-1.js';
import type { Codec, DatabaseDriver, JsonSchema, Plugin, StepDefinition, Storage, StorageCallOptions } from './types.js';

const KINDS = ['task', 'source', 'transform', 'sink'];

/** The scheme of a URL, lower-cased (`s3` of `s3://b/k`), or undefined. */
export function urlScheme(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
}
const DRIVER_FNS = ['snapshot', 'dump', 'scratch', 'restore', 'rowCounts'] as const;
const STORAGE_FNS = ['put', 'get', 'list', 'delete'] as const;

/** What is wrong with `config` as the settings of `storage` (" has …", ".key …"), or undefined. */
export function storageConfigProblem(storage: Storage, config: unknown): string | undefined {
  if (!storage.configSchema) return ' is not accepted: this storage has no settings.';
  const validate = compile(storage.configSchema);
  if (validate(config)) return undefined;
  const e = validate.errors![0]!;
  const at = e.instancePath.replaceAll('/', '.');
  const extra = e.keyword === 'additionalProperties' ? (e.params as { additionalProperty: string }).additionalProperty : undefined;
  const known = Object.keys(storage.configSchema.properties ?? {});
  return extra !== undefined
    ? ` has no setting "${extra}".${didYouMean(extra, known)} Settings: ${known.join(', ')}.`
    : `${at} ${e.message ?? 'is invalid'}.`;
}

// `config` with each relative value of a "path" setting resolved from `baseDir`.
function withAbsolutePaths(schema: JsonSchema, config: Record<string, unknown>, baseDir: string): Record<string, unknown> {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, props[k]?.format === PATH_FORMAT && typeof v === 'string' ? path.resolve(baseDir, v) : v]),
  );
}

/** `storage` with `defaults` under the options of every call (a call's own options win). */
export function withCallOptions(storage: Storage, defaults: StorageCallOptions & { signal?: AbortSignal }): Storage {
  return {
    scheme: storage.scheme,
    ...(storage.configSchema && { configSchema: storage.configSchema }),
    put: (url, body, options) => storage.put(url, body, { ...defaults, ...options }),
    get: (url, options) => storage.get(url, { ...defaults, ...options }),
    list: (prefix, options) => storage.list(prefix, { ...defaults, ...options }),
    delete: (url, options) => storage.delete(url, { ...defaults, ...options }),
    ...(storage.stockRead && { stockRead: (url, options) => storage.stockRead!(url, { ...defaults, ...options }) }),
  };
}

/** Every step type, driver, storage and codec that a run can use. */
export class Registry {
  /** Each plugin, where it came from (`dbflow`, or the specifier as written) and the file it was imported from. */
  readonly plugins: { plugin: Plugin; from: string; resolved?: string }[] = [];
  readonly steps = new Map<string, StepDefinition>();
  readonly drivers = new Map<string, DatabaseDriver>();
  readonly storages = new Map<string, Storage>();
  readonly codecs = new Map<string, Codec>();
  private readonly owner = new Map<string, string>();
  private readonly storageConfig = new Map<string, Record<string, unknown>>();

  /**
   * The storage that serves `url` by its scheme, passing the settings of its scheme (`configure`) to every call;
   * otherwise an error (made by `fail`, a DbflowError by default) that names the nearest scheme.
   */
  storageFor(url: string, fail: (message: string) => Error = (m) => new DbflowError(m)): Storage {
    const scheme = urlScheme(url);
    const storage = scheme ? this.storages.get(scheme) : undefined;
    if (!storage) throw fail(`no storage for "${scheme ?? ''}:" URLs ("${url}").${didYouMean(scheme ?? '', this.storages.keys())}`);
    const config = this.storageConfig.get(storage.scheme);
    return config ? withCallOptions(storage, { config }) : storage;
  }

  /**
   * Sets the storages' settings, by scheme (the pipeline's `storage:`, the config file's), after checking each
   * against its storage's `configSchema`; `where` names where they are written, for the error. A relative file
   * path (a setting of format "path") is taken relative to `baseDir`, the folder of the file they are written in.
   */
  configureStorages(settings: Record<string, unknown>, where: string, baseDir: string): void {
    for (const [scheme, config] of Object.entries(settings)) {
      const storage = this.storages.get(scheme);
      if (!storage) {
        throw new UsageError(
          `${where}: storage.${scheme}: no storage serves "${scheme}:" URLs.${didYouMean(scheme, this.storages.keys())}`,
        );
      }
      const problem = storageConfigProblem(storage, config);
      if (problem) throw new UsageError(`${where}: storage.${scheme}${problem}`);
      this.storageConfig.set(scheme, withAbsolutePaths(storage.configSchema!, config as Record<string, unknown>, baseDir));
    }
  }

  /**
   * Add a plugin after checking that it keeps the contract; `from` names where it came from. The drivers
   * and codecs of a plugin written for contract 1.x are registered behind an adapter to 2.0.
   * All or nothing: a plugin with one bad part registers nothing. Schemas are compiled in Ajv
   * strict mode unless `trusted` (first-party plugins, whose schemas a test compiles strictly; a
   * pipeline compiles the schemas of the steps it uses anyway). `resolved` is the file it was imported from.
   */
  add(plugin: Plugin, from: string, trusted = false, resolved?: string): void {
    const where = `plugin "${plugin?.name ?? '?'}" (${from})`;
    if (!plugin || typeof plugin.name !== 'string' || !plugin.name) {
      throw new PluginError(`${from} does not export a plugin: default-export definePlugin({ name, contract, steps }).`);
    }
    const contract1 = checkContract(plugin.contract, where) === 1;
    if (this.plugins.some((p) => p.plugin.name === plugin.name)) {
      throw new PluginError(`${where} is loaded twice; a plugin name must be unique.`);
    }
    const schemaOk = (schema: JsonSchema, what: string, name: string): void => {
      try {
        if (!trusted) compile(schema);
      } catch (err) {
        throw new PluginError(`${what}: its "${name}" schema is invalid: ${(err as Error).message}`);
      }
    };
    const claims: { key: string; set: () => void }[] = [];
    const claim = <T>(map: Map<string, T>, name: string, value: T, what: string): void => {
      const prev = this.owner.get(what);
      if (prev) throw new PluginError(`${where} declares ${what}, which ${prev} already declares.`);
      if (claims.some((c) => c.key === what)) throw new PluginError(`${where} declares ${what} twice.`);
      claims.push({ key: what, set: () => map.set(name, value) });
    };
    for (const step of plugin.steps ?? []) {
      const what = `step "${String(step?.uses)}" of ${where}`;
      if (typeof step?.uses !== 'string' || !/^[a-z][a-z0-9-]*$/.test(step.uses)) {
        throw new PluginError(`${what} needs a "uses" name of lowercase letters, digits and -.`);
      }
      if (!KINDS.includes(step.kind)) throw new PluginError(`${what} has kind "${String(step.kind)}"; use one of ${KINDS.join(', ')}.`);
      if (typeof step.run !== 'function') throw new PluginError(`${what} has no run(ctx) function.`);
      if (!step.with || typeof step.with !== 'object') {
        throw new PluginError(
          `${what} declares no "with" schema; every step type must (use { type: 'object', additionalProperties: false } for none).`,
        );
      }
      schemaOk(step.with, what, 'with');
      if (step.outputs) schemaOk(step.outputs, what, 'outputs');
      claim(this.steps, step.uses, step, `step "${step.uses}"`);
    }
    for (const d of plugin.drivers ?? []) {
      const what = `driver "${String(d?.name)}" of ${where}`;
      for (const fn of DRIVER_FNS) if (typeof d?.[fn] !== 'function') throw new PluginError(`${what} has no ${fn}() function.`);
      schemaOk(d.options ?? {}, what, 'options');
      claim(this.drivers, d.name, contract1 ? driverFrom1(d) : d, `driver "${d.name}"`);
    }
    for (const s of plugin.storages ?? []) {
      const what = `storage "${String(s?.scheme)}:" of ${where}`;
      for (const fn of STORAGE_FNS) if (typeof s?.[fn] !== 'function') throw new PluginError(`${what} has no ${fn}() function.`);
      if (s.configSchema) schemaOk(s.configSchema, what, 'configSchema');
      claim(this.storages, s.scheme, s, `storage "${s.scheme}:"`);
    }
    for (const c of plugin.codecs ?? []) {
      if (typeof c?.decode !== 'function') throw new PluginError(`codec "${String(c?.name)}" of ${where} has no decode() function.`);
      claim(this.codecs, c.name, contract1 ? codecFrom1(c) : c, `codec "${c.name}"`);
    }
    for (const c of claims) {
      c.set();
      this.owner.set(c.key, where);
    }
    this.plugins.push({ plugin, from, ...(resolved !== undefined && { resolved }) });
  }
}
