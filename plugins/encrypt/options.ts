// The `with` of the encrypt step: its schema, and the check that exactly one key source is given.
import { DbflowError, type JsonSchema } from '../../src/plugin-api.js';

/** `with` as the user wrote it. */
export interface EncryptWith {
  passphrase?: string;
  recipients?: string[];
  armor?: boolean;
}

/** How the data is encrypted: to a passphrase, or to recipients' public keys. */
export type EncryptMode = 'passphrase' | 'public-key';

// The JSON Schema of the step's `with`: `passphrase` or `recipients`, exactly one.
export const encryptWithSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    passphrase: { type: 'string', minLength: 1, 'x-secret': true, description: 'Symmetric encryption (AES-256) to this passphrase.' },
    recipients: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'Armored OpenPGP public keys, or paths to key files (armored or binary).',
    },
    armor: { type: 'boolean', default: false, description: 'ASCII-armored output instead of binary.' },
  },
  oneOf: [
    { properties: { passphrase: true }, required: ['passphrase'] },
    { properties: { recipients: true }, required: ['recipients'] },
  ],
};

// The mode, after checking that exactly one of `passphrase` and `recipients` is set and not empty.
export function resolveMode(value: EncryptWith, step: string): EncryptMode {
  const hasPass = value.passphrase !== undefined;
  const hasKeys = value.recipients !== undefined;
  if (hasPass && hasKeys) {
    throw new DbflowError(`step "${step}": set "passphrase" or "recipients", not both; remove one of them.`);
  }
  if (!hasPass && !hasKeys) {
    throw new DbflowError(
      `step "${step}": set "passphrase" (e.g. "{{ secrets.passphrase }}") or "recipients" (armored public keys or key files).`,
    );
  }
  if (hasPass && typeof value.passphrase === 'string' && value.passphrase.length === 0) {
    throw new DbflowError(`step "${step}": "passphrase" is empty; check the secret it comes from.`);
  }
  if (hasKeys && (!Array.isArray(value.recipients) || value.recipients.length === 0)) {
    throw new DbflowError(`step "${step}": "recipients" is empty; list at least one public key or key file.`);
  }
  return hasPass ? 'passphrase' : 'public-key';
}
