// Versions of dbflow, Node and the loaded plugins, recorded in every manifest.
import { readFileSync } from 'node:fs';
import type { Registry } from '../plugins/registry.js';

/** dbflow's own version, from its package.json. */
export function dbflowVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dbflow' && pkg.version) return pkg.version;
    } catch {
      // try the next layout (source or built)
    }
  }
  return 'unknown';
}

/** Tool versions for the manifest. */
export async function toolVersions(registry: Registry): Promise<Record<string, string>> {
  const out: Record<string, string> = { dbflow: dbflowVersion(), node: process.version };
  for (const { plugin } of registry.plugins) if (plugin.version) out[`plugin:${plugin.name}`] = plugin.version;
  return Promise.resolve(out);
}
