// Imports one plugin module: JavaScript with plain import(), TypeScript through tsx; `dbflow` in it is the running dbflow.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureSelfResolution, resolveFrom } from './self-resolve.js';

/** A plugin module, imported, and the absolute file (or URL) it was imported from. */
export interface ImportedPlugin {
  value: unknown;
  resolved: string;
}

/** Why a plugin could not be imported, in the user's terms. */
export class PluginImportError extends Error {}

const JAVASCRIPT = /\.(c|m)?js$/i;

/** True when `spec` names a file rather than a package. */
export function isPathSpecifier(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || path.isAbsolute(spec) || spec.startsWith('file:');
}

/**
 * Imports the plugin `spec`: a path (relative to `baseDir`) or a package name resolved from `baseDir`,
 * as Node resolves an import there. `where` names `baseDir` in errors (e.g. "the pipeline's folder").
 */
export async function importPlugin(spec: string, baseDir: string, where: string): Promise<ImportedPlugin> {
  ensureSelfResolution();
  let url: string;
  if (isPathSpecifier(spec)) {
    url = spec.startsWith('file:') ? spec : pathToFileURL(path.resolve(baseDir, spec)).href;
  } else {
    try {
      url = resolveFrom(spec, pathToFileURL(path.join(baseDir, 'plugin-parent')).href);
    } catch (err) {
      throw new PluginImportError(`cannot load plugin "${spec}": ${reasonOf(err)}`);
    }
  }
  // Plain import() for JavaScript: no TypeScript loader to start. Anything else may be TypeScript.
  if (!JAVASCRIPT.test(new URL(url).pathname)) await ensureTypeScript();
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    const file = url.startsWith('file:') ? fileURLToPath(url) : url;
    if (isPathSpecifier(spec) && reasonOf(err).includes(`'${file}'`)) {
      throw new PluginImportError(`plugin file "${spec}" does not exist (a relative path is resolved from ${where}).`);
    }
    throw new PluginImportError(`cannot load plugin "${spec}": ${reasonOf(err)}`);
  }
  return { value: unwrapDefault(mod), resolved: url.startsWith('file:') ? fileURLToPath(url) : url };
}

let typescript: Promise<void> | undefined;

// Run from source, dbflow itself is loaded through tsx: TypeScript imports work already. Built, tsx is
// registered for the rest of the process the first time a TypeScript plugin is imported (esbuild starts then).
function ensureTypeScript(): Promise<void> {
  if (import.meta.url.endsWith('.ts')) return Promise.resolve();
  return (typescript ??= import('tsx/esm/api').then(({ register }) => void register({ tsconfig: false })));
}

// Node's message names files by absolute path and says who imported them; the first line is enough.
function reasonOf(err: unknown): string {
  const line = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? String(err);
  return line.replace(/ imported from \S+$/, '');
}

// A CommonJS-compiled module may wrap the default export once more.
function unwrapDefault(mod: { default?: unknown }): unknown {
  let value: unknown = mod.default ?? mod;
  while (value && typeof value === 'object' && 'default' in value && !('name' in value)) value = value.default;
  return value;
}
