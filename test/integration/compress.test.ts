// The compress plugin against the real zstd binary and node:zlib: the step's outputs and settings, errors, cancel.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { execa } from 'execa';
import compress from '../../plugins/compress/index.js';
import { DbflowError, IntegrityError, Registry, type Codec, type StepDefinition } from '../../src/index.js';
import { descendants, waitFor } from '../helpers/processes.js';
import { requireTool, runTransform, stepContext } from '../helpers/step-context.js';

const step = compress.steps!.find((s) => s.uses === 'compress')! as StepDefinition;
const codec = (name: string): Codec => compress.codecs!.find((c) => c.name === name)!;

// Compressible text and random bytes, interleaved.
function mixedData(bytes: number): Buffer {
  const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `${i},customer-${i % 97},"some repeated text"\n`).join(''));
  const parts: Buffer[] = [];
  for (let n = 0; n < bytes; n += text.length + 4096) parts.push(text, randomBytes(4096));
  return Buffer.concat(parts).subarray(0, bytes);
}

// Run the step on `input`; returns the compressed bytes and the outputs.
function compressAll(withValue: Record<string, unknown>, input: Buffer): Promise<{ data: Buffer; outputs: Record<string, unknown> }> {
  return runTransform(step, withValue, input);
}

// Decode `data` with a codec and return the plaintext.
async function decodeAll(name: string, data: Buffer): Promise<Buffer> {
  const decoder = await codec(name).decode({ keys: {}, layer: { codec: name } });
  const parts: Buffer[] = [];
  await pipeline(Readable.from([data]), decoder, new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) }));
  return Buffer.concat(parts);
}

const sink = (): Writable => new Writable({ write: (_c, _e, done) => setImmediate(done) });

// The zstd processes that are children of this test process.
async function zstdChildren(): Promise<string[]> {
  const { stdout } = await execa('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { reject: false });
  return stdout
    .split('\n')
    .filter((l) => /\bzstd\b/.test(l))
    .map((l) => l.trim().split(/\s+/)[0]!);
}

void test('zstd: compress then decode gives back the input; outputs name the layer', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const input = mixedData(8_000_000);
  const { data, outputs } = await compressAll({}, input);
  assert.deepEqual(outputs, { algorithm: 'zstd', level: 3, layer: { codec: 'zstd', level: 3 } });
  assert.deepEqual([...data.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'a standard zstd frame');
  assert.ok(data.length < input.length);
  assert.ok((await decodeAll('zstd', data)).equals(input));
});

void test('zstd: level and threads reach the binary', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const input = mixedData(4_000_000);
  const fast = await compressAll({ level: 1, threads: 1 }, input);
  const strong = await compressAll({ algorithm: 'zstd', level: 19, threads: 2 }, input);
  assert.equal(strong.outputs.level, 19);
  assert.ok(strong.data.length < fast.data.length, `level 19 (${strong.data.length} B) beats level 1 (${fast.data.length} B)`);
  assert.ok((await decodeAll('zstd', strong.data)).equals(input));
});

void test('gzip: compress then decode gives back the input, and stock gzip reads it', async (t) => {
  if (!(await requireTool(t, 'gzip', 'gzip'))) return;
  const input = mixedData(4_000_000);
  const { data, outputs } = await compressAll({ algorithm: 'gzip' }, input);
  assert.deepEqual(outputs, { algorithm: 'gzip', level: 6, layer: { codec: 'gzip', level: 6 } });
  assert.ok((await decodeAll('gzip', data)).equals(input));
  const stock = await execa('gzip', ['-dc'], { input: data, encoding: 'buffer', stripFinalNewline: false });
  assert.ok(Buffer.from(stock.stdout).equals(input));
});

void test('zstd: a missing binary errors the output with how to install it', async (t) => {
  const empty = await mkdtemp(path.join(os.tmpdir(), 'dbflow-nopath-'));
  t.after(() => rm(empty, { recursive: true, force: true }));
  const { ctx, dispose } = await stepContext({ with: {}, input: Readable.from([Buffer.from('data')]), env: { PATH: empty } });
  t.after(dispose);
  const res = await step.run(ctx);
  await assert.rejects(pipeline(res.output!, sink()), (err: Error) => {
    assert.ok(err instanceof DbflowError);
    assert.match(err.message, /"zstd" program was not found/);
    assert.match(err.message, /install zstd \(apt-get install zstd\)/);
    return true;
  });
});

// (Round trips, a flipped byte, a cut tail and streaming memory of both codecs: the conformance suite in
// test/conformance/codecs.test.ts. Here: what the errors say.)
void test('zstd and gzip: input that is not theirs errors the decoder, saying the data is corrupt, truncated or not theirs', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const garbage = Buffer.from('not compressed at all');
  await assert.rejects(decodeAll('zstd', garbage), (err: Error) => {
    assert.ok(err instanceof IntegrityError, String(err));
    assert.match(err.message, /^zstd -d exited with code 1: .+ The data is corrupt, truncated or not zstd\.$/);
    return true;
  });
  await assert.rejects(decodeAll('gzip', garbage), (err: Error) => {
    assert.ok(err instanceof IntegrityError, String(err));
    assert.match(err.message, /^gzip cannot decompress: .+\. The data is corrupt, truncated or not gzip\.$/);
    return true;
  });
});

void test('zstd: destroying the decoder kills the process', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const before = await zstdChildren();
  const decoder = await codec('zstd').decode({ keys: {}, layer: { codec: 'zstd' } });
  decoder.on('error', () => undefined);
  decoder.write(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
  await sleep(100);
  const running = (await zstdChildren()).filter((p) => !before.includes(p));
  assert.equal(running.length, 1, 'zstd -d runs');
  decoder.destroy();
  for (let i = 0; i < 50 && (await zstdChildren()).includes(running[0]!); i++) await sleep(20);
  assert.ok(!(await zstdChildren()).includes(running[0]!), 'zstd -d was killed');
});

void test('zstd: aborting the step signal kills zstd and errors the output', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const abort = new AbortController();
  const endless = new Readable({
    read() {
      this.push(Buffer.alloc(65536, 1));
    },
  });
  const { ctx, dispose } = await stepContext({ with: {}, input: endless, signal: abort.signal });
  t.after(dispose);
  const res = await step.run(ctx);
  setTimeout(() => abort.abort(), 200);
  await assert.rejects(pipeline(res.output!, sink()), (err: Error) => err instanceof DbflowError && /cancelled/.test(err.message));
  endless.destroy();
});

void test('compress: the with schema compiles strictly and bounds the level per algorithm', () => {
  new Registry().add(compress, 'test'); // throws when a schema fails Ajv strict mode
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  const valid = ajv.compile(step.with);
  assert.ok(valid({}));
  assert.ok(valid({ algorithm: 'zstd', level: 19, threads: 0 }));
  assert.ok(valid({ algorithm: 'gzip', level: 9 }));
  assert.ok(!valid({ algorithm: 'gzip', level: 12 }));
  assert.ok(!valid({ algorithm: 'zstd', level: 20 }));
  assert.ok(!valid({ algorithm: 'brotli' }));
  assert.ok(!valid({ threads: -1 }));
  assert.ok(!valid({ levle: 3 }));
});

void test('compress: settings the schema cannot catch are refused with a fix', async () => {
  const { ctx, dispose } = await stepContext({ with: { algorithm: 'gzip', threads: 4 }, id: 'compress[app]' });
  try {
    await assert.rejects(step.run(ctx), /step "compress\[app\]": "threads: 4" applies to zstd only; remove it or set "algorithm: zstd"/);
  } finally {
    await dispose();
  }
  const bad = await stepContext({ with: { algorithm: 'gzip', level: 12 } });
  try {
    await assert.rejects(step.run(bad.ctx), /level 12 is out of range for gzip; use 1\.\.9 \(default 6\)/);
  } finally {
    await bad.dispose();
  }
});

void test('an input error errors the output of zstd and gzip', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  for (const algorithm of ['zstd', 'gzip']) {
    let n = 0;
    const broken = new Readable({
      read() {
        if (++n === 20) this.destroy(new Error('upstream broke'));
        else this.push(Buffer.alloc(65536, n));
      },
    });
    const { ctx, dispose } = await stepContext({ with: { algorithm }, input: broken });
    const res = await step.run(ctx);
    await assert.rejects(pipeline(res.output!, sink()), /upstream broke/, algorithm);
    await dispose();
  }
});

void test('zstd: a decoder started outside a run (no exec) gets only the minimal environment', async (t) => {
  if (!(await requireTool(t, 'zstd', 'zstd'))) return;
  const value = `outside-${randomBytes(8).toString('hex')}`;
  process.env.DBFLOW_TEST_DECODE_SECRET = value;
  t.after(() => delete process.env.DBFLOW_TEST_DECODE_SECRET);
  const decoder = await codec('zstd').decode({ keys: {}, layer: { codec: 'zstd' } });
  decoder.on('error', () => undefined);
  t.after(() => decoder.destroy());
  // zstd waits for its input: it can be read at leisure.
  const zstd = await waitFor('zstd -d below this process', () =>
    descendants(process.pid).find((p) => p.comm === 'zstd' && p.cmdline.includes('-d') && p.environ !== ''),
  );
  assert.match(zstd.environ, /^PATH=/m);
  assert.ok(!zstd.environ.includes(value), 'zstd does not inherit a variable it does not need');
});
