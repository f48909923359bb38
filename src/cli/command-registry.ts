// The plugins a command works with: the first-party ones, those given with --plugin, in DBFLOW_PLUGINS and
// in the config file, and, for a backup, those its manifest records that provide what it needs.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';
import { PluginError, UsageError } from '../errors.js';
import { importPlugin, isPathSpecifier, PluginImportError } from '../plugins/import-plugin.js';
import { builtinRegistry } from '../plugins/loader.js';
import type { Registry } from '../plugins/registry.js';
import type { Plugin } from '../plugins/types.js';
import type { Manifest, PluginRecord } from '../repo/manifest.js';

/** The environment variable that lists plugins for every command, comma-separated. */
export const PLUGINS_ENV = 'DBFLOW_PLUGINS';

/** `$XDG_CONFIG_HOME/dbflow/config.yaml`, else `~/.config/dbflow/config.yaml`. */
export function configFile(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec ignores a relative XDG_CONFIG_HOME.
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'dbflow', 'config.yaml');
}

/** Where a plugin specifier came from: its folder (what it is resolved from) and how to name it in a message. */
interface PluginSource {
  spec: string;
  baseDir: string;
  /** e.g. `--plugin`, `DBFLOW_PLUGINS`, the config file's path. */
  origin: string;
  /** The folder, in words. */
  folder: string;
}

/**
 * The registry of a command that runs no pipeline: the first-party plugins, then the plugins given with
 * `--plugin` (`flags`), then `DBFLOW_PLUGINS`, then the config file's `plugins:`; its storages get the config
 * file's `storage:` settings. A path or package name on
 * the command line or in the environment is resolved from the current folder, one in the config file from
 * the config file's folder. A plugin whose name is already loaded is skipped: the first source wins.
 */
export async function commandRegistry(
  flags: readonly string[] = [],
  env: Record<string, string | undefined> = process.env,
): Promise<Registry> {
  const registry = await builtinRegistry();
  const file = configFile(env);
  const config = userConfig(file);
  const cwd = process.cwd();
  const here = { baseDir: cwd, folder: 'the current folder' };
  const sources: PluginSource[] = [
    ...flags.map((spec) => ({ spec, origin: '--plugin', ...here })),
    ...(env[PLUGINS_ENV] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((spec) => ({ spec, origin: PLUGINS_ENV, ...here })),
    ...config.plugins,
  ];
  for (const s of sources) await addPlugin(registry, s);
  registry.configureStorages(config.storage, `the config file ${file}`, path.dirname(file));
  return registry;
}

/** What the config file holds: plugins for every command, and the storages' settings by scheme. */
interface UserConfig {
  plugins: PluginSource[];
  storage: Record<string, unknown>;
}

// The config file's `plugins:` and `storage:`; nothing when there is no config file.
function userConfig(file: string): UserConfig {
  const none: UserConfig = { plugins: [], storage: {} };
  if (!existsSync(file)) return none;
  let data: unknown;
  try {
    data = load(readFileSync(file, 'utf8'), { schema: CORE_SCHEMA, filename: file });
  } catch (err) {
    throw new UsageError(`the config file ${file} cannot be read: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) return none;
  const config = data as Record<string, unknown>;
  const unknown =
    typeof data === 'object' && !Array.isArray(data)
      ? Object.keys(config).filter((k) => k !== 'plugins' && k !== 'storage')
      : ['(not a mapping)'];
  if (unknown.length)
    throw new UsageError(
      `the config file ${file} holds ${unknown.map((k) => `"${k}"`).join(', ')}; it may hold only plugins: [<path or package>, …] and storage: { <scheme>: { <setting>: … } }.`,
    );
  const list = config.plugins ?? [];
  if (!Array.isArray(list) || !list.every((p): p is string => typeof p === 'string' && p !== '')) {
    throw new UsageError(`the config file ${file}: plugins must be a list of paths or package names.`);
  }
  const storage = config.storage ?? {};
  if (typeof storage !== 'object' || storage === null || Array.isArray(storage)) {
    throw new UsageError(
      `the config file ${file}: storage must map URL schemes to their settings, e.g. storage: { s3: { region: eu-west-1 } }.`,
    );
  }
  return {
    plugins: list.map((spec) => ({ spec, baseDir: path.dirname(file), origin: file, folder: "the config file's folder" })),
    storage: storage as Record<string, unknown>,
  };
}

async function addPlugin(registry: Registry, s: PluginSource): Promise<void> {
  let imported: { value: unknown; resolved: string };
  try {
    imported = await importPlugin(s.spec, s.baseDir, s.folder);
  } catch (err) {
    if (err instanceof PluginImportError) throw new UsageError(`${err.message} (given in ${s.origin})`);
    throw err;
  }
  const name = (imported.value as Partial<Plugin> | undefined)?.name;
  if (typeof name === 'string' && registry.plugins.some((p) => p.plugin.name === name && p.from !== 'dbflow')) return;
  try {
    registry.add(imported.value as Plugin, s.spec, false, imported.resolved);
  } catch (err) {
    if (err instanceof PluginError) throw new PluginError(`${err.message} (given in ${s.origin})`);
    throw err;
  }
}

/** What of a backup a command needs to read it: codecs of its layers, drivers of its databases. */
export interface BackupNeeds {
  codecs?: readonly string[];
  drivers?: readonly string[];
}

/**
 * Loads, from the manifest's `plugins`, each plugin that provides a codec or driver the backup needs and the
 * registry lacks: from the file the run imported it from, else (a package) from the current folder. One that
 * cannot be loaded is an error made by `fail` that names it and says how to pass it.
 */
export async function loadManifestPlugins(
  registry: Registry,
  manifest: Manifest,
  needs: BackupNeeds,
  fail: (message: string) => Error,
): Promise<void> {
  const wanted = [
    ...[...new Set(needs.codecs ?? [])].map((name) => ({ kind: 'codecs' as const, name, have: registry.codecs })),
    ...[...new Set(needs.drivers ?? [])].map((name) => ({ kind: 'drivers' as const, name, have: registry.drivers })),
  ];
  for (const { kind, name, have } of wanted) {
    if (have.has(name)) continue;
    const record = manifest.plugins?.find((p) => p[kind]?.includes(name));
    // Not recorded (an older manifest), or a loaded plugin of that name lacks it: the command's own error says what is missing.
    if (!record || registry.plugins.some((p) => p.plugin.name === record.name)) continue;
    await loadRecorded(registry, record, `${kind === 'codecs' ? 'codec' : 'driver'} "${name}"`, fail);
  }
}

async function loadRecorded(registry: Registry, record: PluginRecord, what: string, fail: (message: string) => Error): Promise<void> {
  const tries = [record.resolved, ...(isPathSpecifier(record.specifier) ? [] : [record.specifier])];
  const reasons: string[] = [];
  for (const spec of tries) {
    try {
      const { value, resolved } = await importPlugin(spec, process.cwd(), 'the current folder');
      registry.add(value as Plugin, record.specifier, false, resolved);
      return;
    } catch (err) {
      if (!(err instanceof PluginImportError) && !(err instanceof PluginError)) throw err;
      reasons.push(err.message);
    }
  }
  throw fail(
    `this backup needs ${what} of plugin "${record.name}"${record.version ? ` ${record.version}` : ''}, which the run that made it loaded from ${record.resolved} ("${record.specifier}" under its pipeline's plugins:); it cannot be loaded here: ${reasons.join('; ')}. Pass the plugin with --plugin <path or package> (or list it in ${PLUGINS_ENV}, or under plugins: in ${configFile()}).`,
  );
}

/** The codecs of every layer of the backup's artifacts (of `database` only, when given). */
export function backupCodecs(manifest: Manifest, database?: string): string[] {
  return [
    ...new Set(
      manifest.artifacts.filter((a) => database === undefined || a.database === database).flatMap((a) => a.layers.map((l) => l.codec)),
    ),
  ];
}
