// Loads plugins: the first-party ones, then those a pipeline lists under `plugins:`.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginError } from '../errors.js';
import { Registry } from './registry.js';
import type { Plugin } from './types.js';

/** A plugin entry of a pipeline that could not be loaded. */
export interface PluginLoadProblem {
  index: number;
  message: string;
}

/** The first-party plugins shipped with dbflow. */
export async function builtinPlugins(): Promise<Plugin[]> {
  const mod = (await import(new URL('../../plugins/index.js', import.meta.url).href)) as { default: Plugin[] };
  return mod.default;
}

/** A registry with the first-party plugins. */
export async function builtinRegistry(): Promise<Registry> {
  const registry = new Registry();
  for (const p of await builtinPlugins()) registry.add(p, 'dbflow', true);
  return registry;
}

/**
 * Load each `plugins:` entry: a path (./x.ts, ./x.js, relative to the pipeline file) or an npm
 * package name resolved from the pipeline's folder. TypeScript plugins load without a build step.
 */
export async function loadPlugins(registry: Registry, specifiers: readonly string[], pipelineFile: string): Promise<PluginLoadProblem[]> {
  const baseDir = path.dirname(pipelineFile);
  const problems: PluginLoadProblem[] = [];
  if (specifiers.length === 0) return problems;
  const { tsImport } = await import('tsx/esm/api'); // only when needed: it starts esbuild
  const parentURL = pathToFileURL(pipelineFile).href;
  for (const [index, spec] of specifiers.entries()) {
    const isPath = spec.startsWith('.') || spec.startsWith('/');
    const target = isPath ? pathToFileURL(path.resolve(baseDir, spec)).href : spec;
    let mod: { default?: unknown };
    try {
      mod = (await tsImport(target, { parentURL, tsconfig: false })) as { default?: unknown };
    } catch (err) {
      // Node's message names files by absolute path: say it in the user's terms instead.
      const reason = (err as Error).message.split('\n')[0] ?? String(err);
      const missing = isPath && reason.includes(`'${path.resolve(baseDir, spec)}'`);
      problems.push({
        index,
        message: missing
          ? `plugin file "${spec}" does not exist (a relative path is resolved from the pipeline's folder).`
          : `cannot load plugin "${spec}": ${reason.replace(/ imported from \S+$/, '')}`,
      });
      continue;
    }
    const plugin = unwrapDefault(mod);
    try {
      registry.add(plugin as Plugin, spec);
    } catch (err) {
      if (!(err instanceof PluginError)) throw err;
      problems.push({ index, message: err.message.replace(/^dbflow: /, '') });
    }
  }
  return problems;
}

// tsImport of a CommonJS-compiled or ESM module may wrap the default export once more.
function unwrapDefault(mod: { default?: unknown }): unknown {
  let value: unknown = mod.default ?? mod;
  while (value && typeof value === 'object' && 'default' in value && !('name' in value)) value = (value).default;
  return value;
}
