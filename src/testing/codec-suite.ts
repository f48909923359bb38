// describeCodec: the conformance suite every codec passes, first-party ones included.
import assert from 'node:assert/strict';
import { PassThrough, Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { ArtifactLayer, Codec, DecodeKeys } from '../plugins/types.js';
import { testContext } from './context.js';
import { digest, randomStream, readAll } from './streams.js';
import { describeError, isKind, prepare, type Setup } from './support.js';

/** An encoded stream and the layer its encoder records in the manifest. */
export interface Encoded {
  stream: Readable;
  layer: ArtifactLayer;
}

/** What an author's setup gives the codec suite, for one test. */
export interface CodecSetup {
  codec: Codec;
  /** Encodes `input` the way the step that writes this codec's layer does (see `encodeWith`). */
  encode(input: Readable): Promise<Encoded>;
  /** The keys decoding needs (the restore's `passphrase` / `privateKey`); omit for a codec without keys. */
  keys?: DecodeKeys;
  /** Keys that must be refused, besides no keys at all (which is tried whenever `keys` is given). */
  wrongKeys?: DecodeKeys[];
  cleanup?(): void | Promise<void>;
}

/** Which cases apply, and their sizes. */
export interface CodecSuiteOptions {
  /** Size of the big random stream of the round trip (default 16 MiB). */
  bigBytes?: number;
  /** Size of the stream whose decoding must not buffer it; 0 leaves the memory case out (default 128 MiB). */
  memoryBytes?: number;
  /** How much the process's RSS may grow while that stream is encoded and decoded (default half of memoryBytes). */
  memoryLimit?: number;
  /** Timeout of each test in ms (default 120 000). */
  timeout?: number;
}

type Settings = Required<CodecSuiteOptions>;
const MiB = 1024 * 1024;

/**
 * Registers the codec conformance suite with `node:test`: round trips, damage detection, wrong keys and
 * streaming memory (see "Testing your plugin" in docs/plugins.md). `setup` runs at the start of every test.
 */
export function describeCodec(name: string, setup: Setup<CodecSetup>, options: CodecSuiteOptions = {}): void {
  const memoryBytes = options.memoryBytes ?? 128 * MiB;
  const o: Settings = { bigBytes: 16 * MiB, memoryBytes, memoryLimit: memoryBytes / 2, timeout: 120_000, ...options };
  const codecTest = (title: string, body: (c: CodecSetup, o: Settings, t: NodeTestContext) => Promise<void>): void => {
    test(title, { timeout: o.timeout }, async (t) => {
      const c = await prepare(t, setup);
      if (c) await body(c, o, t);
    });
  };
  describe(name, () => {
    codecTest('encode then decode gives back the bytes exactly: empty, small, and a multi-MiB random stream', roundTrips);
    codecTest('a flipped byte in the middle of the encoded data is detected: decoding fails with an IntegrityError', flippedByte);
    codecTest('a truncated tail is detected: decoding fails with an IntegrityError', truncated);
    codecTest('keys: decoding without them, or with wrong ones, is refused with a DbflowError; a codec that takes none needs none', keys);
    // memoryBytes: 0 leaves the measurement out (a codec whose memory another suite measures).
    if (o.memoryBytes > 0)
      codecTest(
        `decoding streams: RSS grows by less than ${(o.memoryLimit / MiB).toFixed(0)} MiB while ${(o.memoryBytes / MiB).toFixed(0)} MiB pass`,
        memory,
      );
  });
}

// The decoder of `layer`, with a run's exec (as a restore passes it); the context is disposed after the test.
async function decoder(
  c: CodecSetup,
  layer: ArtifactLayer,
  keys: DecodeKeys | undefined,
  t: { after(fn: () => void): void },
): Promise<Duplex> {
  const { ctx, dispose } = testContext();
  t.after(dispose);
  return c.codec.decode({ keys: keys ?? {}, layer, exec: (file, args, options) => ctx.exec(file, args, options) });
}

async function roundTrips(c: CodecSetup, o: Settings, t: NodeTestContext): Promise<void> {
  for (const bytes of [0, 1000, o.bigBytes]) {
    const input = randomStream(bytes);
    const encoded = await c.encode(input.stream);
    assert.equal(encoded.layer.codec, c.codec.name, `the encoder's layer names the codec "${c.codec.name}"`);
    const out = new PassThrough();
    const got = digest(out);
    await pipeline(encoded.stream, await decoder(c, encoded.layer, c.keys, t), out);
    assert.equal((await got).bytes, bytes, `decoding gives back as many bytes as were encoded (${bytes})`);
    assert.equal((await got).sha256, await input.sha256, `decoding gives back exactly the bytes that were encoded (${bytes})`);
  }
}

// The whole encoding of `bytes` random bytes, and the layer.
async function encodedBytes(c: CodecSetup, bytes: number): Promise<{ data: Buffer; layer: ArtifactLayer }> {
  const encoded = await c.encode(randomStream(bytes).stream);
  return { data: await readAll(encoded.stream), layer: encoded.layer };
}

// Decoding `data` fails with an IntegrityError.
async function assertDamageDetected(c: CodecSetup, data: Buffer, layer: ArtifactLayer, what: string, t: NodeTestContext): Promise<void> {
  const sink = new PassThrough();
  sink.resume();
  await assert.rejects(
    async () => pipeline(Readable.from([data]), await decoder(c, layer, c.keys, t), sink),
    (err) => {
      assert.ok(
        isKind(err, 'IntegrityError'),
        `${what}: decoding must fail with an IntegrityError (the data is damaged), not ${describeError(err)}`,
      );
      return true;
    },
    `${what}: decoding must fail`,
  );
}

async function flippedByte(c: CodecSetup, _o: Settings, t: NodeTestContext): Promise<void> {
  const { data, layer } = await encodedBytes(c, MiB);
  const flipped = Buffer.from(data);
  flipped[flipped.length >> 1]! ^= 0x40;
  await assertDamageDetected(c, flipped, layer, 'a flipped byte in the middle', t);
}

async function truncated(c: CodecSetup, _o: Settings, t: NodeTestContext): Promise<void> {
  const { data, layer } = await encodedBytes(c, MiB);
  // Trailing whitespace goes with the last byte: a text encoding (ASCII armor) may ignore a missing final newline.
  let end = data.length;
  while (end > 0 && [0x0a, 0x0d, 0x20, 0x09].includes(data[end - 1]!)) end--;
  await assertDamageDetected(c, data.subarray(0, end - 1), layer, 'the last byte cut off', t);
  await assertDamageDetected(c, data.subarray(0, data.length >> 1), layer, 'the second half cut off', t);
}

async function keys(c: CodecSetup, _o: Settings, t: NodeTestContext): Promise<void> {
  const { data, layer } = await encodedBytes(c, 100_000);
  if (!c.keys) {
    const out = new PassThrough();
    const got = readAll(out);
    await pipeline(Readable.from([data]), await decoder(c, layer, {}, t), out);
    assert.equal((await got).length, 100_000, 'a codec that takes no keys decodes without any');
    return;
  }
  for (const keys of [{}, ...(c.wrongKeys ?? [])]) {
    const shown = JSON.stringify(Object.keys(keys));
    const out = new PassThrough();
    const got = readAll(out);
    got.catch(() => undefined);
    await assert.rejects(
      async () => pipeline(Readable.from([data]), await decoder(c, layer, keys, t), out),
      (err) => {
        assert.ok(
          isKind(err, 'DbflowError'),
          `keys ${shown}: decoding must be refused with a DbflowError (a KeyError says which key), not ${describeError(err)}`,
        );
        return true;
      },
      `keys ${shown}: decoding must be refused`,
    );
  }
}

async function memory(c: CodecSetup, o: Settings, t: NodeTestContext): Promise<void> {
  const input = randomStream(o.memoryBytes);
  const base = process.memoryUsage.rss();
  let peak = base;
  const encoded = await c.encode(input.stream);
  const sampled = new PassThrough();
  sampled.on('data', () => (peak = Math.max(peak, process.memoryUsage.rss())));
  const got = digest(sampled);
  await pipeline(encoded.stream, await decoder(c, encoded.layer, c.keys, t), sampled);
  assert.equal((await got).sha256, await input.sha256, 'the big stream round-trips');
  const growth = peak - base;
  t.diagnostic(`RSS grew by ${(growth / MiB).toFixed(0)} MiB while ${(o.memoryBytes / MiB).toFixed(0)} MiB were encoded and decoded`);
  assert.ok(
    growth < o.memoryLimit,
    `RSS grew by ${(growth / MiB).toFixed(0)} MiB (limit ${(o.memoryLimit / MiB).toFixed(0)} MiB): the decoder (or the encoder) holds the stream in memory`,
  );
}
