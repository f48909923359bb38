// openpgp.js, loaded on first use: it is large, and validating a pipeline never needs it.
import type * as OpenpgpModule from 'openpgp';

export type Openpgp = typeof OpenpgpModule;

let lib: Promise<Openpgp> | undefined;

/** The openpgp module (imported once). */
export function openpgp(): Promise<Openpgp> {
  return (lib ??= import('openpgp'));
}
