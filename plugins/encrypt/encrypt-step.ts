// The `encrypt` step: a transform that encrypts its input stream as an OpenPGP message.
import { pipeline, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DbflowError, defineStep, type JsonSchema, type StepContext } from '../../src/index.js';
import { encryptWithSchema, resolveMode, type EncryptMode, type EncryptWith } from './options.js';
import { openpgp } from './openpgp-lib.js';
import { CHUNK_BYTES, CIPHER, encryptConfig, sessionKey } from './pgp-settings.js';
import { loadRecipients, type Recipient } from './recipients.js';
import { rechunk } from './rechunk.js';
import { toWeb } from './to-web.js';

type WebStream = WebReadableStream<Uint8Array | string>;

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
    const recipients = mode === 'public-key' ? await loadRecipients(ctx.with.recipients ?? [], ctx.id, ctx.run.pipelineDir, (m) => ctx.log.warn(m)) : [];
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

// The input, in large chunks, through openpgp.js; errors of the input surface on the output.
async function encryptStream(ctx: StepContext<EncryptWith>, mode: EncryptMode, recipients: Recipient[], armor: boolean): Promise<Readable> {
  const chunks = rechunk(CHUNK_BYTES);
  pipeline(ctx.input, chunks, () => undefined); // errors reach the output through `chunks`
  const plain = toWeb(chunks);
  try {
    const pgp = await openpgp();
    const { createMessage, encrypt } = pgp;
    const message = await createMessage({ binary: plain, format: 'binary' });
    const keys = mode === 'passphrase' ? { passwords: [ctx.with.passphrase!] } : { encryptionKeys: recipients.map((r) => r.key) };
    const options = { message, ...keys, sessionKey: sessionKey(), config: encryptConfig(pgp) };
    // openpgp's stream types name a package it does not ship; the value is a web ReadableStream.
    const encrypted = (armor
      ? await encrypt({ ...options, format: 'armored' })
      : await encrypt({ ...options, format: 'binary' })) as unknown as WebStream;
    return Readable.fromWeb(encrypted, { highWaterMark: CHUNK_BYTES });
  } catch (err) {
    chunks.destroy();
    throw new DbflowError(`step "${ctx.id}": cannot start OpenPGP encryption: ${(err as Error).message}`, { cause: err });
  }
}
