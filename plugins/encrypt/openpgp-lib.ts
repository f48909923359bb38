// openpgp.js, loaded on first use: it is large, and validating a pipeline never needs it.
export type Openpgp = typeof import('openpgp');

let lib: Promise<Openpgp> | undefined;

/** The openpgp module (imported once). */
export function openpgp(): Promise<Openpgp> {
  return (lib ??= import('openpgp'));
}
