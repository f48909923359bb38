// Versions of dbflow, Node and the loaded plugins, recorded in every manifest.
import { readFileSync } from 'node:fs';
import type { Registry } from '../plugins/registry.js';
import type { PluginRecord } from '../repo/manifest.js';

/** dbflow's own version, from its package.json. */
export function dbflowVersion(): string {
  return dbflowPackage()?.version ?? 'unknown';
}

/** The folder dbflow is installed in (a clone, or the package under node_modules), where its package.json is. */
export function dbflowRoot(): URL {
  return dbflowPackage()?.root ?? new URL('../../', import.meta.url);
}

let found: { root: URL; version: string } | undefined;
function dbflowPackage(): { root: URL; version: string } | undefined {
  // Run from source (src/engine) or built (dist/src/engine): the package is two or three folders up.
  for (const rel of ['../../', '../../../']) {
    if (found) break;
    const root = new URL(rel, import.meta.url);
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dbflow' && pkg.version) found = { root, version: pkg.version };
    } catch {
      // try the next layout
    }
  }
  return found;
}

/** Tool versions for the manifest. */
export async function toolVersions(registry: Registry): Promise<Record<string, string>> {
  const out: Record<string, string> = { dbflow: dbflowVersion(), node: process.version };
  for (const { plugin } of registry.plugins) if (plugin.version) out[`plugin:${plugin.name}`] = plugin.version;
  return Promise.resolve(out);
}

/** The plugins a run imported (not the first-party ones, nor those given in code): what a restore must load again. */
export function pluginRecords(registry: Registry): PluginRecord[] {
  return registry.plugins
    .filter((p): p is typeof p & { resolved: string } => p.resolved !== undefined)
    .map(({ plugin, from, resolved }) => {
      const names = (list: string[]): string[] | undefined => (list.length ? list : undefined);
      const provides = {
        steps: names((plugin.steps ?? []).map((s) => s.uses)),
        drivers: names((plugin.drivers ?? []).map((d) => d.name)),
        storages: names((plugin.storages ?? []).map((s) => s.scheme)),
        codecs: names((plugin.codecs ?? []).map((c) => c.name)),
      };
      return {
        name: plugin.name,
        ...(plugin.version !== undefined && { version: plugin.version }),
        contract: plugin.contract,
        specifier: from,
        resolved,
        ...Object.fromEntries(Object.entries(provides).filter(([, v]) => v !== undefined)),
      };
    });
}
