// The plugin contract's version: what a plugin declares it was written for, and what this dbflow accepts.
import { PluginError } from '../errors.js';

/**
 * The version of the plugin contract this dbflow implements, "MAJOR.MINOR". A minor version adds
 * to the contract (a plugin written for 1.0 works with a dbflow of 1.3); a major one changes it.
 */
export const PLUGIN_CONTRACT = '1.1';

const FORM = /^(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** Refuses a plugin that declares no contract, or one this dbflow (`current`) does not implement; `where` names it. */
export function checkContract(contract: unknown, where: string, current = PLUGIN_CONTRACT): void {
  const [major, minor] = current.split('.').map(Number) as [number, number];
  const fix = `declare the contract version the plugin was written for, e.g. contract: "${current}" (the version in the docs/plugins.md it follows)`;
  if (contract === undefined) throw new PluginError(`${where} declares no plugin contract; ${fix}.`);
  const m = typeof contract === 'string' ? FORM.exec(contract) : null;
  if (typeof contract !== 'string' || !m)
    throw new PluginError(`${where} declares contract ${JSON.stringify(contract)}, which is not "MAJOR.MINOR"; ${fix}.`);
  const [theirMajor, theirMinor] = [Number(m[1]), Number(m[2])];
  if (theirMajor === major && theirMinor <= minor) return;
  const advice =
    theirMajor > major || (theirMajor === major && theirMinor > minor)
      ? `upgrade dbflow to one that implements contract ${contract}, or use a version of the plugin written for contract ${major}.${minor} or older`
      : `use a version of the plugin written for contract ${major}.x (this dbflow accepts ${major}.0 to ${major}.${minor})`;
  throw new PluginError(`${where} was written for plugin contract ${contract}, but this dbflow implements contract ${current}: ${advice}.`);
}
