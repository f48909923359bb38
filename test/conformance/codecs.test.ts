// The first-party codecs on the codec conformance suite: zstd (the stock binary), gzip (node:zlib) and OpenPGP
// (passphrase and public key), each encoded by the step that writes its layer.
import { generateKey } from 'openpgp';
import compress from '../../plugins/compress/index.js';
import encrypt from '../../plugins/encrypt/index.js';
import type { Codec, StepDefinition } from '../../src/index.js';
import { describeCodec, encodeWith } from '../../src/testing/index.js';
import { requireTool } from '../helpers/step-context.js';

const compressStep = compress.steps!.find((s) => s.uses === 'compress')! as StepDefinition;
const encryptStep = encrypt.steps!.find((s) => s.uses === 'encrypt')! as StepDefinition;
const codec = (name: string): Codec => [...compress.codecs!, ...encrypt.codecs!].find((c) => c.name === name)!;
const PASSPHRASE = 'correct horse battery staple';

describeCodec('zstd (compress, algorithm: zstd)', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return undefined;
  return { codec: codec('zstd'), encode: encodeWith(compressStep, { algorithm: 'zstd', level: 1 }) };
});

// (Deflate of random data is slow: 64 MiB prove the streaming as well.)
describeCodec(
  'gzip (compress, algorithm: gzip)',
  () => ({ codec: codec('gzip'), encode: encodeWith(compressStep, { algorithm: 'gzip', level: 1 }) }),
  { memoryBytes: 64 * 2 ** 20 },
);

describeCodec('openpgp (encrypt, passphrase)', () => ({
  codec: codec('openpgp'),
  encode: encodeWith(encryptStep, { passphrase: PASSPHRASE }),
  keys: { passphrase: PASSPHRASE },
  wrongKeys: [{ passphrase: 'not the passphrase' }],
}));

// Armored messages go through openpgp.js, which holds 130 to 160 MiB whatever the size (32 MiB: +127 MiB, 256 MiB:
// +158 MiB RSS) at about 10 MB/s: a bound the memory case can check would take minutes. Left out.
describeCodec(
  'openpgp (encrypt, passphrase, armor: true)',
  () => ({
    codec: codec('openpgp'),
    encode: encodeWith(encryptStep, { passphrase: PASSPHRASE, armor: true }),
    keys: { passphrase: PASSPHRASE },
    wrongKeys: [{ passphrase: 'not the passphrase' }],
  }),
  { memoryBytes: 0, bigBytes: 4 * 2 ** 20 },
);

// Keys made once for the file: generating them is slow.
const owner = generateKey({ userIDs: [{ email: 'owner@example.org' }], format: 'armored' });
const stranger = generateKey({ userIDs: [{ email: 'stranger@example.org' }], format: 'armored' });

describeCodec(
  'openpgp (encrypt, recipients)',
  async () => {
    const [mine, theirs] = await Promise.all([owner, stranger]);
    return {
      codec: codec('openpgp'),
      encode: encodeWith(encryptStep, { recipients: [mine.publicKey] }),
      keys: { privateKey: mine.privateKey },
      wrongKeys: [{ privateKey: theirs.privateKey }, { passphrase: PASSPHRASE }],
    };
  },
  { memoryBytes: 0 },
);
