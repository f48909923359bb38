// The encrypt plugin against stock gpg and its own openpgp codec: formats, keys, what errors say. (Round trips, damage,
// wrong keys and streaming memory of the codec: the conformance suite in test/conformance/codecs.test.ts.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { generateKey } from 'openpgp';
import encrypt from '../../plugins/encrypt/index.js';
import { DbflowError, IntegrityError, Registry, type ArtifactLayer, type Codec, type StepDefinition } from '../../src/index.js';
import { gpgHome, passphraseFile } from '../helpers/gpg.js';
import { requireTool, runTransform, stepContext } from '../helpers/step-context.js';

const step = encrypt.steps!.find((s) => s.uses === 'encrypt')! as StepDefinition;
const codec: Codec = encrypt.codecs!.find((c) => c.name === 'openpgp')!;
const PASSPHRASE = 'correct horse battery staple';

// Run the step on `input`; returns the ciphertext and the outputs.
function encryptAll(withValue: Record<string, unknown>, input: Buffer): Promise<{ data: Buffer; outputs: Record<string, unknown> }> {
  return runTransform(step, withValue, input);
}

// Decode with the openpgp codec; rejects when the stream errors, also at its end.
async function decodeAll(data: Buffer, keys: { passphrase?: string; privateKey?: string }, layer: ArtifactLayer): Promise<Buffer> {
  const decoder = await codec.decode({ keys, layer });
  const parts: Buffer[] = [];
  await pipeline(Readable.from([data]), decoder, new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) }));
  return Buffer.concat(parts);
}

const plain = randomBytes(3_000_000);

void test('passphrase: stock gpg decrypts the output (SEIPDv1, AES-256, no compression)', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg'))) return;
  const { data, outputs } = await encryptAll({ passphrase: PASSPHRASE }, plain);
  assert.deepEqual(outputs, { mode: 'passphrase', layer: { codec: 'openpgp', mode: 'passphrase', cipher: 'aes256', armor: false } });
  assert.ok(!JSON.stringify(outputs).includes(PASSPHRASE), 'the outputs never hold the passphrase');
  const { home, gpg } = await gpgHome(t);
  const file = await passphraseFile(home, PASSPHRASE);
  const decrypted = await gpg(['--pinentry-mode', 'loopback', '--passphrase-file', file, '--decrypt'], data);
  assert.ok(decrypted.equals(plain));
  const packets = (await gpg(['--pinentry-mode', 'loopback', '--passphrase-file', file, '--list-packets'], data)).toString();
  assert.match(packets, /symkey enc packet: version 4, cipher 9, aead 0/, 'v4 SKESK with AES-256');
  assert.match(packets, /encrypted data packet:[\s\S]*mdc_method: 2/, 'SEIPDv1 with MDC');
  assert.doesNotMatch(packets, /compressed packet|aead encrypted/);
});

void test('armor: the output is ASCII-armored; gpg and the codec read it', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg'))) return;
  const { data, outputs } = await encryptAll({ passphrase: PASSPHRASE, armor: true }, plain);
  assert.ok(data.toString('latin1', 0, 40).startsWith('-----BEGIN PGP MESSAGE-----'));
  assert.equal((outputs.layer as ArtifactLayer).armor, true);
  assert.ok((await decodeAll(data, { passphrase: PASSPHRASE }, outputs.layer as ArtifactLayer)).equals(plain));
  const { home, gpg } = await gpgHome(t);
  const file = await passphraseFile(home, PASSPHRASE);
  assert.ok((await gpg(['--pinentry-mode', 'loopback', '--passphrase-file', file, '--decrypt'], data)).equals(plain));
});

void test('a tampered ciphertext errors the decoder, naming the integrity check', async () => {
  const { data, outputs } = await encryptAll({ passphrase: PASSPHRASE }, plain);
  const tampered = Buffer.from(data);
  tampered[tampered.length >> 1]! ^= 0x01;
  await assert.rejects(decodeAll(tampered, { passphrase: PASSPHRASE }, outputs.layer as ArtifactLayer), (err: Error) => {
    assert.ok(err instanceof IntegrityError, String(err));
    assert.match(err.message, /integrity check \(MDC\) failed/);
    return true;
  });
});

void test('a wrong passphrase errors clearly, without an openpgp stack', async () => {
  const { data, outputs } = await encryptAll({ passphrase: PASSPHRASE }, plain);
  await assert.rejects(decodeAll(data, { passphrase: 'not the passphrase' }, outputs.layer as ArtifactLayer), (err: Error) => {
    assert.ok(err instanceof DbflowError, String(err));
    // About 1 in 100 wrong passphrases gets past the session-key check; the integrity check then names it.
    assert.match(err.message, /^openpgp: .*wrong passphrase/);
    assert.doesNotMatch(err.message, /\n\s+at /);
    return true;
  });
});

void test('a missing key names what to pass', async () => {
  await assert.rejects(async () => codec.decode({ keys: {}, layer: { codec: 'openpgp', mode: 'passphrase' } }), /pass it as "passphrase"/);
  const publicKeyLayer = { codec: 'openpgp', mode: 'public-key', recipients: ['ABCD'] };
  await assert.rejects(async () => codec.decode({ keys: {}, layer: publicKeyLayer }), /private key \(one of ABCD\) as "private_key"/);
  await assert.rejects(
    async () => codec.decode({ keys: { passphrase: PASSPHRASE }, layer: publicKeyLayer }),
    /encrypted to public keys; pass the recipient's/,
  );
});

void test('public key: gpg and the codec decrypt with the private key; outputs carry fingerprints', async (t) => {
  if (!(await requireTool(t, 'gpg', 'gnupg'))) return;
  const { privateKey, publicKey } = await generateKey({ userIDs: [{ name: 'dbflow test', email: 'test@example.org' }], format: 'armored' });
  const keyFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'dbflow-key-')), 'backup.asc');
  t.after(() => rm(path.dirname(keyFile), { recursive: true, force: true }));
  await writeFile(keyFile, publicKey);
  const { data, outputs } = await encryptAll({ recipients: [keyFile] }, plain);
  const layer = outputs.layer as ArtifactLayer;
  assert.equal(outputs.mode, 'public-key');
  assert.equal(layer.mode, 'public-key');
  assert.equal((layer.recipients as string[]).length, 1);
  assert.match((layer.recipients as string[])[0]!, /^[0-9A-F]{40}$/);
  assert.ok((await decodeAll(data, { privateKey }, layer)).equals(plain));

  const { gpg } = await gpgHome(t);
  await gpg(['--import'], Buffer.from(privateKey));
  const listed = (await gpg(['--with-colons', '--list-secret-keys'], Buffer.alloc(0))).toString();
  assert.ok(listed.includes(`fpr:::::::::${(layer.recipients as string[])[0]}:`), 'the recorded fingerprint is the key gpg knows');
  assert.ok((await gpg(['--decrypt'], data)).equals(plain));
});

void test('public key: an armored key inline, a passphrase-protected private key, and a stranger', async () => {
  const owner = await generateKey({ userIDs: [{ email: 'owner@example.org' }], passphrase: 'key secret', format: 'armored' });
  const stranger = await generateKey({ userIDs: [{ email: 'stranger@example.org' }], format: 'armored' });
  const { data, outputs } = await encryptAll({ recipients: [owner.publicKey] }, plain);
  const layer = outputs.layer as ArtifactLayer;
  assert.ok((await decodeAll(data, { privateKey: owner.privateKey, passphrase: 'key secret' }, layer)).equals(plain));
  await assert.rejects(
    async () => codec.decode({ keys: { privateKey: owner.privateKey }, layer }),
    /protected by a passphrase; pass it as "passphrase" too/,
  );
  await assert.rejects(
    async () => codec.decode({ keys: { privateKey: owner.privateKey, passphrase: 'nope' }, layer }),
    /wrong passphrase for the private key/,
  );
  await assert.rejects(decodeAll(data, { privateKey: stranger.privateKey }, layer), /wrong passphrase or not encrypted for this key/);
});

void test('recipients: an unreadable key file is named, with how to export one', async () => {
  const { ctx, dispose } = await stepContext({
    with: { recipients: ['./keys/missing.asc'] },
    id: 'encrypt[app]',
    input: Readable.from([plain]),
  });
  try {
    await assert.rejects(
      step.run(ctx),
      /step "encrypt\[app\]": recipients\[0\] "\.\/keys\/missing\.asc" is neither an armored public key nor a readable key file \(ENOENT\); pass the output of "gpg --export --armor <key id>"/,
    );
  } finally {
    await dispose();
  }
});

void test('exactly one of passphrase and recipients', async () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  const valid = ajv.compile(step.with);
  assert.ok(valid({ passphrase: 'x' }));
  assert.ok(valid({ recipients: ['./key.asc'], armor: true }));
  assert.ok(!valid({}));
  assert.ok(!valid({ passphrase: 'x', recipients: ['./key.asc'] }));
  assert.ok(!valid({ passphrase: 'x', armour: true }));
  assert.equal((step.with.properties as Record<string, Record<string, unknown>>).passphrase!['x-secret'], true);
  new Registry().add(encrypt, 'test'); // throws when a schema fails Ajv strict mode
  for (const [value, message] of [
    [{ passphrase: 'x', recipients: ['k'] }, /set "passphrase" or "recipients", not both/],
    [{}, /set "passphrase" \(e\.g\. "\{\{ secrets\.passphrase \}\}"\) or "recipients"/],
  ] as const) {
    const { ctx, dispose } = await stepContext({ with: value });
    await assert.rejects(step.run(ctx), message);
    await dispose();
  }
});

void test('an input error errors the output; destroying the output stops the input', async () => {
  let n = 0;
  const broken = new Readable({
    read() {
      if (++n === 20) this.destroy(new Error('upstream broke'));
      else this.push(Buffer.alloc(65536, n));
    },
  });
  const failing = await stepContext({ with: { passphrase: PASSPHRASE }, input: broken });
  const res = await step.run(failing.ctx);
  await assert.rejects(pipeline(res.output!, new Writable({ write: (_c, _e, done) => done() })), /upstream broke/);
  await failing.dispose();

  const endless = new Readable({
    read() {
      this.push(Buffer.alloc(65536, 7));
    },
  });
  const cancelled = await stepContext({ with: { passphrase: PASSPHRASE }, input: endless });
  const out = (await step.run(cancelled.ctx)).output!;
  await new Promise((resolve) => out.once('data', resolve));
  out.destroy();
  await new Promise((resolve) => endless.once('close', resolve));
  assert.ok(endless.destroyed);
  await cancelled.dispose();
});

void test('destroying the decoder midway stops it without an error', async () => {
  const { data, outputs } = await encryptAll({ passphrase: PASSPHRASE }, plain);
  const decoder = await codec.decode({ keys: { passphrase: PASSPHRASE }, layer: outputs.layer as ArtifactLayer });
  const errors: Error[] = [];
  decoder.on('error', (err) => errors.push(err));
  const first = new Promise((resolve) => decoder.once('data', resolve));
  decoder.write(data.subarray(0, 1_000_000));
  await first;
  decoder.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(decoder.destroyed);
  assert.deepEqual(errors, []);
});
