// The encrypt plugin's native OpenPGP writer and reader against stock gpg and openpgp.js: sizes at every
// chunk boundary, old artifacts, other message kinds, tampering, truncation, wrong keys, back-pressure.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import * as openpgp from 'openpgp';
import encrypt from '../../plugins/encrypt/index.js';
import { EncryptStream } from '../../plugins/encrypt/encrypt-stream.js';
import { openpgpEncrypt } from '../../plugins/encrypt/legacy-encrypt.js';
import { readHeader } from '../../plugins/encrypt/packet-header.js';
import { encryptConfig, type EncryptKeys } from '../../plugins/encrypt/pgp-settings.js';
import { DbflowError, IntegrityError, type ArtifactLayer, type Codec, type StepDefinition } from '../../src/index.js';
import { gpgHome, gpgKeyPair, passphraseFile } from '../helpers/gpg.js';
import { requireTool, stepContext } from '../helpers/step-context.js';

const step = encrypt.steps!.find((s) => s.uses === 'encrypt')! as StepDefinition;
const codec: Codec = encrypt.codecs!.find((c) => c.name === 'openpgp')!;
const PASSPHRASE = 'correct horse battery staple';
const LAYER: ArtifactLayer = { codec: 'openpgp', mode: 'passphrase', cipher: 'aes256', armor: false };
const MiB = 1024 * 1024;

// `data` cut into pieces of varying, odd sizes (a stream rarely hands over round numbers).
function pieces(data: Buffer): Buffer[] {
  const sizes = [1, 7, 500, 4096, 65_536, 100_003, 262_144];
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

// The encrypt step's whole output for `data`, given in pieces.
async function encryptAll(withValue: Record<string, unknown>, data: Buffer): Promise<{ data: Buffer; layer: ArtifactLayer }> {
  const { ctx, dispose } = await stepContext({ with: withValue, input: Readable.from(pieces(data)) });
  try {
    const res = await step.run(ctx);
    const parts: Buffer[] = [];
    for await (const chunk of res.output!) parts.push(chunk as Buffer);
    return { data: Buffer.concat(parts), layer: (res.outputs as { layer: ArtifactLayer }).layer };
  } finally {
    await dispose();
  }
}

// Decode with the codec (fed in pieces); resolves with the plaintext and which decoder read it.
async function decodeAll(
  data: Buffer,
  keys: { passphrase?: string; privateKey?: string } = { passphrase: PASSPHRASE },
  layer: ArtifactLayer = LAYER,
): Promise<{ plain: Buffer; decodedBy: string | undefined }> {
  const decoder = await codec.decode({ keys, layer });
  const parts: Buffer[] = [];
  await pipeline(Readable.from(pieces(data)), decoder, new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) }));
  return { plain: Buffer.concat(parts), decodedBy: (decoder as Duplex & { decodedBy?: string }).decodedBy };
}

// Decrypt with openpgp.js on its own (the whole message at once: its MDC is checked before anything is returned).
async function openpgpDecrypt(data: Buffer, unlock: { passwords: string[] } | { decryptionKeys: openpgp.PrivateKey }): Promise<Buffer> {
  const message = await openpgp.readMessage({ binaryMessage: new Uint8Array(data) });
  const { data: plain } = await openpgp.decrypt({ message, ...unlock, format: 'binary' });
  return Buffer.from(plain);
}

// Offset of the first ciphertext byte (after the key packets, the SEIPD header and its version byte).
function cipherStart(data: Buffer): number {
  let at = 0;
  for (;;) {
    const header = readHeader(data, at)!;
    if (header.tag === 18) return at + header.size + 1;
    at += header.size + header.length;
  }
}

// The offset of the first byte where `a` and `b` differ (the shorter length when one is a prefix of the other).
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

// The literal packet holds 6 header bytes before the data; both packets stream in 1 MiB chunks.
const SIZES = [0, 1, 511, 512, 513, 65_536, MiB - 6, MiB - 5, MiB, MiB + 1, 5 * MiB + 12_345];

void test('the native output decrypts with stock gpg, openpgp.js and the codec, at every size and chunk boundary', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg'))) return;
  const { home, gpg } = await gpgHome(t);
  const file = await passphraseFile(home, PASSPHRASE);
  for (const size of [...SIZES, 50 * MiB]) {
    const plain = randomBytes(size);
    // A last byte that is a line feed must come back too (a reader that strips a final newline loses it).
    if (size > 0) plain[size - 1] = 0x0a;
    const { data, layer } = await encryptAll({ passphrase: PASSPHRASE }, plain);
    assert.deepEqual(layer, LAYER, 'the manifest layer is unchanged');
    const byGpg = await gpg(['--pinentry-mode', 'loopback', '--passphrase-file', file, '--decrypt'], data);
    const byOpenpgp = await openpgpDecrypt(data, { passwords: [PASSPHRASE] });
    const decoded = await decodeAll(data);
    assert.equal(decoded.decodedBy, 'native');
    const wrong = Object.entries({ gpg: byGpg, 'openpgp.js': byOpenpgp, codec: decoded.plain })
      .filter(([, got]) => !got.equals(plain))
      .map(([who, got]) => `${who}: ${got.length} bytes, first difference at ${firstDifference(got, plain)}`);
    assert.deepEqual(wrong, [], `${size} bytes (encrypted: ${data.length} bytes)`);
  }
  const packets = (
    await gpg(
      ['--pinentry-mode', 'loopback', '--passphrase-file', file, '--list-packets'],
      (await encryptAll({ passphrase: PASSPHRASE }, randomBytes(3 * MiB))).data,
    )
  ).toString();
  assert.match(packets, /symkey enc packet: version 4, cipher 9, aead 0, ?s2k 3/, 'v4 SKESK, AES-256, iterated and salted S2K');
  assert.match(packets, /encrypted data packet:[\s\S]*mdc_method: 2/, 'SEIPD v1 with MDC');
  assert.match(packets, /literal data packet:\s+mode b \(62\), created \d+, name=""/);
  assert.doesNotMatch(packets, /compressed packet|aead encrypted/);
});

void test('public key: a key pair made by gpg; gpg decrypts the native output, and so does the codec with its exported private key', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg'))) return;
  const home = await gpgHome(t);
  const pair = await gpgKeyPair(home, 'backup@example.org');
  for (const size of [0, 513, 3 * MiB + 5]) {
    const plain = randomBytes(size);
    const { data, layer } = await encryptAll({ recipients: [pair.publicKey] }, plain);
    assert.deepEqual(layer.recipients, [pair.fingerprint]);
    assert.ok((await home.gpg(['--decrypt'], data)).equals(plain), `gpg, ${size} bytes`);
    const decoded = await decodeAll(data, { privateKey: pair.privateKey }, layer);
    assert.equal(decoded.decodedBy, 'native');
    assert.ok(decoded.plain.equals(plain), `codec, ${size} bytes`);
    const privateKey = await openpgp.readPrivateKey({ armoredKey: pair.privateKey });
    assert.ok((await openpgpDecrypt(data, { decryptionKeys: privateKey })).equals(plain), `openpgp.js, ${size} bytes`);
  }
});

void test('artifacts written by openpgp.js (the earlier encrypt step) decrypt natively', async () => {
  const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ email: 'old@example.org' }], format: 'object' });
  for (const size of [0, 1, 513, MiB, 3 * MiB + 77]) {
    const plain = randomBytes(size);
    const cases: [EncryptKeys, { passphrase?: string; privateKey?: string }, ArtifactLayer][] = [
      [{ passwords: [PASSPHRASE] }, { passphrase: PASSPHRASE }, LAYER],
      [{ encryptionKeys: [publicKey] }, { privateKey: privateKey.armor() }, { ...LAYER, mode: 'public-key' }],
    ];
    for (const [keys, decodeKeys, layer] of cases) {
      const parts: Buffer[] = [];
      for await (const chunk of await openpgpEncrypt(Readable.from(pieces(plain)), keys, false)) parts.push(chunk as Buffer);
      const decoded = await decodeAll(Buffer.concat(parts), decodeKeys, layer);
      assert.equal(decoded.decodedBy, 'native', `${size} bytes, ${String(layer.mode)}`);
      assert.ok(decoded.plain.equals(plain), `${size} bytes, ${String(layer.mode)}`);
    }
  }
});

void test('messages made by gpg decrypt too: natively when uncompressed, through openpgp.js when compressed', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg'))) return;
  const { home, gpg } = await gpgHome(t);
  const file = await passphraseFile(home, PASSPHRASE);
  const plain: Buffer = Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(MiB, 'a')]);
  const symmetric = ['--pinentry-mode', 'loopback', '--passphrase-file', file, '--symmetric', '--cipher-algo', 'AES256'];
  const uncompressed = await decodeAll(await gpg([...symmetric, '-z0'], plain));
  assert.equal(uncompressed.decodedBy, 'native');
  assert.ok(uncompressed.plain.equals(plain));
  const compressed = await decodeAll(await gpg(symmetric, plain));
  assert.equal(compressed.decodedBy, 'openpgp.js');
  assert.ok(compressed.plain.equals(plain));
});

void test('an AEAD (SEIPD v2) message goes to openpgp.js', async () => {
  const plain = randomBytes(200_000);
  const message = await openpgp.createMessage({ binary: new Uint8Array(plain) });
  const config = { ...encryptConfig(openpgp), aeadProtect: true };
  const encrypted: Uint8Array = await openpgp.encrypt({ message, passwords: [PASSPHRASE], format: 'binary', config });
  const data = Buffer.from(encrypted);
  const decoded = await decodeAll(data);
  assert.equal(decoded.decodedBy, 'openpgp.js');
  assert.ok(decoded.plain.equals(plain));
});

void test('a flipped bit anywhere in the encrypted body errors the stream', async () => {
  const plain = randomBytes(3 * MiB + 1000);
  const { data } = await encryptAll({ passphrase: PASSPHRASE }, plain);
  const start = cipherStart(data);
  const positions = [
    start + 40,
    start + MiB - 2,
    start + MiB - 1,
    start + MiB + 7,
    start + 2 * MiB,
    data.length - 30,
    data.length - 21,
    data.length - 1,
  ];
  for (let k = 1; k < 8; k++) positions.push(start + Math.floor(((data.length - start) * k) / 8));
  for (const at of positions) {
    const tampered = Buffer.from(data);
    tampered[at]! ^= 0x10;
    await assert.rejects(decodeAll(tampered), (err: Error) => {
      assert.ok(err instanceof IntegrityError, `byte ${at}: ${String(err)}`);
      return true;
    });
  }
  const first = Buffer.from(data);
  first[start + 16]! ^= 0x01; // the prefix's repeated bytes: the quick check of the key fails
  await assert.rejects(decodeAll(first), (err: Error) => {
    assert.equal(err.name, 'KeyError');
    assert.match(err.message, /wrong passphrase or not encrypted for this key; check the passphrase secret/);
    return true;
  });
  const mdc = Buffer.from(data);
  mdc[data.length - 5]! ^= 0x01;
  await assert.rejects(decodeAll(mdc), /integrity check \(MDC\) failed: the encrypted data was modified or corrupted/);
});

void test('a truncated message errors the stream', async () => {
  const plain = randomBytes(3 * MiB + 1000);
  const { data } = await encryptAll({ passphrase: PASSPHRASE }, plain);
  const start = cipherStart(data);
  for (const length of [
    start - 1,
    start + 17,
    start + 5000,
    start + MiB,
    data.length >> 1,
    data.length - 22,
    data.length - 21,
    data.length - 1,
  ]) {
    await assert.rejects(decodeAll(data.subarray(0, length)), (err: Error) => {
      assert.ok(err instanceof IntegrityError, `${length} of ${data.length} bytes: ${String(err)}`);
      assert.match(err.message, /^openpgp: cannot decrypt \(.*\): the data is corrupt, truncated or not OpenPGP/);
      return true;
    });
  }
  await assert.rejects(decodeAll(data.subarray(0, 20)), DbflowError, 'inside the key packets');
});

void test("wrong passphrases and strangers' keys are KeyErrors without a stack", async () => {
  const { data } = await encryptAll({ passphrase: PASSPHRASE }, randomBytes(100_000));
  for (let i = 0; i < 12; i++) {
    await assert.rejects(decodeAll(data, { passphrase: `not the passphrase ${i}` }), (err: Error) => {
      assert.ok(err instanceof DbflowError, String(err));
      // About 1 in 100 wrong passphrases gets past the session-key check into another cipher; the MDC then names it.
      assert.match(err.message, /^openpgp: .*wrong passphrase/);
      assert.doesNotMatch(err.message, /\n\s+at /);
      return true;
    });
  }
  const owner = await openpgp.generateKey({ userIDs: [{ email: 'owner@example.org' }], format: 'armored' });
  const stranger = await openpgp.generateKey({ userIDs: [{ email: 'stranger@example.org' }], format: 'armored' });
  const sealed = await encryptAll({ recipients: [owner.publicKey] }, randomBytes(1000));
  await assert.rejects(decodeAll(sealed.data, { privateKey: stranger.privateKey }, sealed.layer), (err: Error) => {
    assert.equal(err.name, 'KeyError');
    assert.match(err.message, /wrong passphrase or not encrypted for this key; pass the private key of a recipient/);
    return true;
  });
});

void test('while the key packets are made, input is encrypted ahead but only so far; then everything follows them', async () => {
  const pgp = openpgp;
  const sessionKey = randomBytes(32);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const packets = gate.then(() =>
    pgp.encryptSessionKey({
      data: new Uint8Array(sessionKey),
      algorithm: 'aes256',
      passwords: [PASSPHRASE],
      format: 'binary',
      config: encryptConfig(pgp),
    }),
  );
  const plain = randomBytes(40 * MiB);
  let read = 0;
  const source = Readable.from(
    (function* () {
      for (const piece of pieces(plain)) {
        read += piece.length;
        yield piece;
      }
    })(),
  );
  const stream = new EncryptStream(packets, sessionKey, 256 * 1024);
  const parts: Buffer[] = [];
  stream.on('data', (c: Buffer) => parts.push(c));
  source.pipe(stream);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(parts.length, 0, 'nothing before the key packets');
  assert.ok(read > 4 * MiB, `input is encrypted ahead (${read} bytes read)`);
  assert.ok(read < 12 * MiB, `but only so far (${read} bytes read)`);
  release();
  await new Promise((resolve) => stream.on('end', resolve));
  const decoded = await decodeAll(Buffer.concat(parts));
  assert.ok(decoded.plain.equals(plain));

  const failing = new EncryptStream(Promise.reject(new DbflowError('no key packets today')), sessionKey, 256 * 1024);
  await assert.rejects(
    pipeline(Readable.from([plain.subarray(0, 1000)]), failing, new Writable({ write: (_c, _e, done) => done() })),
    /no key packets today/,
  );
});
