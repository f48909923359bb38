// A module resolve hook: `import … from 'dbflow'` in a plugin means the dbflow that is running, whatever
// the plugin's folder holds; and the resolution of a plugin package from a pipeline's folder.
import nodeModule from 'node:module';
import { PluginError } from '../errors.js';

// Runs in Node's loader thread: plain JavaScript, no imports. `index` is the running dbflow's entry,
// `self` a file inside its package (a self-reference there resolves `dbflow/<subpath>` by its exports),
// `source` true when dbflow runs from its TypeScript source (then a subpath maps to its source file).
const HOOK = `
let index, self, source;
export function initialize(data) { ({ index, self, source } = data); }
const MARK = 'dbflow-plugin-resolve:';
export async function resolve(specifier, context, next) {
  if (specifier.startsWith(MARK)) {
    const { specifier: s, parentURL } = JSON.parse(decodeURIComponent(specifier.slice(MARK.length)));
    return { ...(await next(s, { ...context, parentURL })), shortCircuit: true };
  }
  if (specifier === 'dbflow') return { url: index, shortCircuit: true };
  if (specifier.startsWith('dbflow/')) {
    const r = await next(specifier, { ...context, parentURL: self });
    const url = source ? r.url.replace(/\\/dist\\/src\\/(.*)\\.js$/, '/src/$1.ts') : r.url;
    return { ...r, url, ...(source && { format: undefined }), shortCircuit: true };
  }
  return next(specifier, context);
}
`;

const MARK = 'dbflow-plugin-resolve:';
let registered = false;

/** Registers the hook once, before the first plugin is imported. */
export function ensureSelfResolution(): void {
  if (registered) return;
  // module.register came with Node 20.6; older ones cannot load a plugin that imports dbflow.
  const register = (nodeModule as Partial<typeof nodeModule>).register;
  if (!register) throw new PluginError(`loading plugins needs Node.js 20.6 or later; this is ${process.version}.`);
  registered = true;
  const source = import.meta.url.endsWith('.ts');
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, {
    data: { index: new URL(`../index.${source ? 'ts' : 'js'}`, import.meta.url).href, self: import.meta.url, source },
  });
}

/** The URL that `specifier` (a package name) resolves to when imported from `parentURL`, as Node's import resolves it. */
export function resolveFrom(specifier: string, parentURL: string): string {
  ensureSelfResolution();
  return import.meta.resolve(`${MARK}${encodeURIComponent(JSON.stringify({ specifier, parentURL }))}`);
}
