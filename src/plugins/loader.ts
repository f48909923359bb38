// Loads plugins: the first-party ones, then those a pipeline lists under `plugins:`.
import path from 'node:path';
import builtinPlugins from '../../plugins/index.js';
import { PluginError } from '../errors.js';
import { importPlugin, PluginImportError } from './import-plugin.js';
import { Registry } from './registry.js';
import type { Plugin } from './types.js';

/** A plugin entry of a pipeline that could not be loaded. */
export interface PluginLoadProblem {
  index: number;
  message: string;
}

/** A registry with the first-party plugins. */
export function builtinRegistry(): Promise<Registry> {
  const registry = new Registry();
  for (const p of builtinPlugins) registry.add(p, 'dbflow', true);
  return Promise.resolve(registry);
}

/**
 * Load each `plugins:` entry: a path (./x.ts, ./x.js, relative to the pipeline file) or an npm
 * package name resolved from the pipeline's folder. JavaScript loads with plain import(), TypeScript
 * without a build step; `dbflow` imported by a plugin is the running dbflow.
 */
export async function loadPlugins(registry: Registry, specifiers: readonly string[], pipelineFile: string): Promise<PluginLoadProblem[]> {
  const baseDir = path.dirname(pipelineFile);
  const problems: PluginLoadProblem[] = [];
  for (const [index, spec] of specifiers.entries()) {
    try {
      const { value, resolved } = await importPlugin(spec, baseDir, "the pipeline's folder");
      registry.add(value as Plugin, spec, false, resolved);
    } catch (err) {
      if (err instanceof PluginImportError) problems.push({ index, message: err.message });
      else if (err instanceof PluginError) problems.push({ index, message: err.message });
      else throw err;
    }
  }
  return problems;
}
