// The `encrypt` step: a transform that encrypts its input stream as an OpenPGP message.
import { pipeline, type Readable } from 'node:stream';
import { DbflowError, defineStep, type JsonSchema, type StepContext } from '../../src/plugin-api.js';
import { encryptWithSchema, resolveMode, type EncryptMode, type EncryptWith } from './options.js';
import { EncryptStream } from './encrypt-stream.js';
import { openpgpEncrypt } from './legacy-encrypt.js';
import { openpgp } from './openpgp-lib.js';
import { CHUNK_BYTES, CIPHER, encryptConfig, sessionKey, type EncryptKeys } from './pgp-settings.js';
import { loadRecipients, type Recipient } from './recipients.js';

/** The layer recorded in the manifest: how to decrypt, never a secret. */
export interface OpenpgpLayer {
  codec: 'openpgp';
  mode: EncryptMode;
  cipher: typeof CIPHER;
  armor: boolean;
  recipients?: string[];
}

/** What the step outputs. */
export interface EncryptOutputs {
  mode: EncryptMode;
  layer: OpenpgpLayer;
}

const outputsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: { enum: ['passphrase', 'public-key'] },
    layer: {
      type: 'object',
      additionalProperties: false,
      required: ['codec', 'mode', 'cipher', 'armor'],
      properties: {
        codec: { const: 'openpgp' },
        mode: { enum: ['passphrase', 'public-key'] },
        cipher: { const: CIPHER },
        armor: { type: 'boolean' },
        recipients: { type: 'array', items: { type: 'string' }, description: 'Primary key fingerprints.' },
      },
    },
  },
};

// Encrypts `input:` with AES-256 to a passphrase or to public keys; the output decrypts with `gpg --decrypt`.
export const encryptStep = defineStep<EncryptWith, EncryptOutputs>({
  uses: 'encrypt',
  kind: 'transform',
  description: 'Encrypt a stream with OpenPGP (AES-256) to a passphrase or public keys; gpg decrypts it.',
  with: encryptWithSchema,
  outputs: outputsSchema,
  async run(ctx) {
    const mode = resolveMode(ctx.with, ctx.id);
    const armor = ctx.with.armor ?? false;
    const recipients =
      mode === 'public-key' ? await loadRecipients(ctx.with.recipients ?? [], ctx.id, ctx.run.pipelineDir, (m) => ctx.log.warn(m)) : [];
    const output = await encryptStream(ctx, mode, recipients, armor);
    const layer: OpenpgpLayer = {
      codec: 'openpgp',
      mode,
      cipher: CIPHER,
      armor,
      ...(mode === 'public-key' && { recipients: recipients.map((r) => r.fingerprint) }),
    };
    return { output, outputs: { mode, layer } };
  },
});

// Armored output goes through openpgp.js; binary output is written natively (see EncryptStream).
async function encryptStream(ctx: StepContext<EncryptWith>, mode: EncryptMode, recipients: Recipient[], armor: boolean): Promise<Readable> {
  const keys: EncryptKeys =
    mode === 'passphrase' ? { passwords: [ctx.with.passphrase!] } : { encryptionKeys: recipients.map((r) => r.key) };
  const cannotStart = (err: unknown): DbflowError =>
    new DbflowError(`step "${ctx.id}": cannot start OpenPGP encryption: ${(err as Error).message}`, { cause: err });
  if (armor) return openpgpEncrypt(ctx.input, keys, true).catch((err: unknown) => Promise.reject(cannotStart(err)));
  // The key packets (a key derivation for a passphrase) are made while the data is already being encrypted.
  const key = sessionKey();
  const packets = openpgp()
    .then((pgp) => pgp.encryptSessionKey({ ...key, ...keys, format: 'binary', config: encryptConfig(pgp) }))
    .catch((err: unknown) => Promise.reject(cannotStart(err)));
  const output = new EncryptStream(packets, key.data, CHUNK_BYTES);
  pipeline(ctx.input, output, () => undefined); // an input error errors the output; destroying the output stops the input
  return output;
}
