// The plugin contract's version: what a plugin declares it was written for, and what this dbflow accepts.
import { PluginError } from '../errors.js';

/**
 * The version of the plugin contract this dbflow implements, "MAJOR.MINOR". A minor version adds
 * to the contract (a plugin written for 2.0 works with a dbflow of 2.3); a major one changes it.
 */
export const PLUGIN_CONTRACT = '2.0';

/** The newest minor version of each major one this dbflow loads, its own first; an older major goes through an adapter. */
const LOADED: readonly [string, ...string[]] = [PLUGIN_CONTRACT, '1.1'];

const FORM = /^(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

const parse = (version: string): [number, number] => version.split('.').map(Number) as [number, number];
const range = (version: string): string => (version.endsWith('.0') ? version : `${parse(version)[0]}.0 to ${version}`);

/**
 * Refuses a plugin that declares no contract, or one this dbflow does not load (`loaded`: the newest minor version of
 * each major one it loads, its own first); `where` names it. Returns the major version the plugin was written for.
 */
export function checkContract(contract: unknown, where: string, loaded: readonly [string, ...string[]] = LOADED): number {
  const [current, ...older] = loaded;
  const [major, minor] = parse(current);
  const fix = `declare the contract version the plugin was written for, e.g. contract: "${current}" (the version in the docs/plugins.md it follows)`;
  if (contract === undefined) throw new PluginError(`${where} declares no plugin contract; ${fix}.`);
  const m = typeof contract === 'string' ? FORM.exec(contract) : null;
  if (typeof contract !== 'string' || !m)
    throw new PluginError(`${where} declares contract ${JSON.stringify(contract)}, which is not "MAJOR.MINOR"; ${fix}.`);
  const [theirMajor, theirMinor] = [Number(m[1]), Number(m[2])];
  if (loaded.map(parse).some(([M, n]) => theirMajor === M && theirMinor <= n)) return theirMajor;
  const accepts = range(current) + (older.length ? `, and ${older.map(range).join(', ')} through an adapter` : '');
  const advice =
    theirMajor > major || (theirMajor === major && theirMinor > minor)
      ? `upgrade dbflow to one that implements contract ${contract}, or use a version of the plugin written for contract ${current} or older`
      : `use a version of the plugin written for contract ${major}.x (this dbflow accepts ${accepts})`;
  throw new PluginError(`${where} was written for plugin contract ${contract}, but this dbflow implements contract ${current}: ${advice}.`);
}
