// CPU and wall time of OpenPGP encryption and decryption of random data: the encrypt plugin's native path,
// its openpgp.js path, and stock gpg, each in its own process, interleaved, repeated. A report, not a test.
//
//   node --import tsx scripts/bench/openpgp-cpu.ts [MiB=1024] [rounds=3]
//
// Node cases run compiled (tsc, into bench-data/; no tsx loader in the process) and measure their own
// process from before the step starts (openpgp.js loading and key derivation included) to the last byte.
// Two ways: "memory" feeds the stream 64 KiB chunks read into memory beforehand and discards its output
// (what the step itself costs inside a chain, whose edges exist anyway); "file" reads the file and writes
// /dev/null through node:fs streams (what a process costs, node's stream I/O included). "passthrough"
// is that I/O alone. gpg reads the file on its stdin and writes /dev/null, measured with GNU time.
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import encrypt from '../../plugins/encrypt/index.js';
import { legacyDecoder } from '../../plugins/encrypt/legacy-decoder.js';
import { openpgpEncrypt } from '../../plugins/encrypt/legacy-encrypt.js';
import type { ArtifactLayer, StepContext, StepDefinition } from '../../src/index.js';

const PASSPHRASE = 'bench passphrase';
const LAYER: ArtifactLayer = { codec: 'openpgp', mode: 'passphrase', cipher: 'aes256', armor: false };
const CHUNK = 64 * 1024; // a pipe's chunk size
const NODE_CASES = ['passthrough', 'encrypt native', 'encrypt openpgp.js', 'decrypt native', 'decrypt openpgp.js'] as const;
type NodeCase = (typeof NODE_CASES)[number];
type Io = 'memory' | 'file';

interface Sample {
  cpuS: number;
  wallS: number;
  firstByteMs?: number;
}

if (process.argv[2] === '--child') await child(process.argv[3] as NodeCase, process.argv[4] as Io, process.argv[5]!, process.argv[6]!);
else main(Number(process.argv[2] ?? 1024), Number(process.argv[3] ?? 3));

function main(mib: number, rounds: number): void {
  const script = build();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbflow-openpgp-bench-'));
  const gnupg = path.join(dir, 'gnupg');
  try {
    mkdirSync(gnupg, { mode: 0o700 });
    const plain = path.join(dir, 'plain');
    const cipher = path.join(dir, 'cipher.pgp');
    const passFile = path.join(dir, 'pass');
    writeFileSync(passFile, PASSPHRASE, { mode: 0o600 });
    spawnSync('sh', ['-c', `head -c ${mib * 1024 * 1024} /dev/urandom > ${plain}`]);
    // The file every decryption reads: written by the native path, so gpg decrypting it is a check too.
    runNode(script, 'encrypt native', 'file', plain, cipher);
    const runs: { name: string; run: () => Sample }[] = [];
    for (const io of ['memory', 'file'] as const) {
      for (const c of NODE_CASES) {
        const input = c.startsWith('decrypt') ? cipher : plain;
        runs.push({ name: `${c} (${io})`, run: () => runNode(script, c, io, input, '/dev/null') });
      }
    }
    runs.push({
      name: 'encrypt gpg',
      run: () => runGpg(['--symmetric', '--cipher-algo', 'AES256', '-z0', '-o', '-'], plain, gnupg, passFile),
    });
    runs.push({ name: 'decrypt gpg', run: () => runGpg(['--decrypt'], cipher, gnupg, passFile) });
    const samples = new Map<string, Sample[]>(runs.map((r) => [r.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const r of runs) {
        const sample = r.run();
        samples.get(r.name)!.push(sample);
        process.stderr.write(`${r.name}: ${sample.cpuS.toFixed(2)} CPU-s, ${sample.wallS.toFixed(2)} s\n`);
      }
    }
    console.log(`\n${mib} MiB of random data, ${rounds} rounds, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}`);
    console.log('case                             CPU-s min  CPU-s median  wall-s min  wall-s median  first byte ms');
    for (const [name, s] of samples) {
      const cpu = s.map((x) => x.cpuS);
      const wall = s.map((x) => x.wallS);
      const first = s.flatMap((x) => (x.firstByteMs === undefined ? [] : [x.firstByteMs]));
      const cols = [fmt(Math.min(...cpu)), fmt(median(cpu), 13), fmt(Math.min(...wall), 11), fmt(median(wall), 14)];
      console.log(`${name.padEnd(32)} ${cols.join(' ')} ${first.length ? median(first).toFixed(0).padStart(13) : ''}`);
    }
  } finally {
    spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: gnupg } });
    rmSync(dir, { recursive: true, force: true });
  }
}

// This script and what it imports, compiled to JavaScript; returns the compiled script.
function build(): string {
  const root = path.resolve(import.meta.dirname, '..', '..');
  const out = path.join(root, 'bench-data', 'openpgp-build');
  mkdirSync(out, { recursive: true });
  const tsconfig = path.join(out, 'tsconfig.json');
  const compilerOptions = { noEmit: false, outDir: '.', rootDir: '../..', declaration: false, sourceMap: false };
  const include = ['../../src', '../../plugins', '../../scripts/bench/openpgp-cpu.ts'];
  writeFileSync(tsconfig, JSON.stringify({ extends: '../../tsconfig.json', compilerOptions, include }));
  process.stderr.write('compiling…\n');
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', tsconfig], { cwd: root, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`tsc failed:\n${res.stdout}${res.stderr}`);
  return path.join(out, 'scripts', 'bench', 'openpgp-cpu.js');
}

function runNode(script: string, c: NodeCase, io: Io, input: string, output: string): Sample {
  const res = spawnSync(process.execPath, [script, '--child', c, io, input, output], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (res.status !== 0) throw new Error(`${c} failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as Sample;
}

function runGpg(op: string[], input: string, gnupg: string, passFile: string): Sample {
  const args = ['--batch', '--quiet', '--pinentry-mode', 'loopback', '--passphrase-file', passFile, ...op];
  const cmd = `/usr/bin/time -f '%U %S %e' gpg ${args.join(' ')} < ${input} > /dev/null`;
  const res = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, GNUPGHOME: gnupg } });
  if (res.status !== 0) throw new Error(`gpg ${op.join(' ')} failed: ${res.stderr}`);
  const [user, sys, wall] = res.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { cpuS: user! + sys!, wallS: wall! };
}

// One case in this process, timed from before the stream is made to its last byte.
async function child(c: NodeCase, io: Io, input: string, output: string): Promise<void> {
  let source: Readable;
  let sink: Writable;
  if (io === 'memory') {
    const data = readFileSync(input);
    const chunks: Buffer[] = [];
    for (let at = 0; at < data.length; at += CHUNK) chunks.push(data.subarray(at, at + CHUNK));
    source = Readable.from(chunks, { objectMode: false });
    sink = new Writable({ highWaterMark: 1 << 20, write: (_chunk, _encoding, done) => done() });
  } else {
    source = createReadStream(input, { highWaterMark: CHUNK });
    sink = createWriteStream(output);
  }
  const cpu = process.cpuUsage();
  const started = performance.now();
  let firstByteMs: number | undefined;
  const stream = await open(c, source);
  stream.once('data', () => (firstByteMs = performance.now() - started));
  await pipeline(stream, sink);
  const used = process.cpuUsage(cpu);
  const sample: Sample = { cpuS: (used.user + used.system) / 1e6, wallS: (performance.now() - started) / 1000, firstByteMs };
  process.stdout.write(JSON.stringify(sample));
}

async function open(c: NodeCase, source: Readable): Promise<Readable> {
  switch (c) {
    case 'passthrough':
      return through(source, new PassThrough());
    case 'encrypt native': {
      const step = encrypt.steps!.find((s) => s.uses === 'encrypt') as StepDefinition;
      const ctx = {
        id: 'encrypt',
        with: { passphrase: PASSPHRASE },
        input: source,
        log: { debug: () => undefined, info: () => undefined, warn: () => undefined },
        run: { pipelineDir: process.cwd() },
      } as unknown as StepContext;
      return (await step.run(ctx)).output!;
    }
    case 'encrypt openpgp.js':
      return openpgpEncrypt(source, { passwords: [PASSPHRASE] }, false);
    case 'decrypt native': {
      const codec = encrypt.codecs!.find((x) => x.name === 'openpgp')!;
      return through(source, await codec.decode({ keys: { passphrase: PASSPHRASE }, layer: LAYER }));
    }
    case 'decrypt openpgp.js':
      return through(source, legacyDecoder({ passwords: [PASSPHRASE] }, LAYER, false));
  }
}

function through(source: Readable, decoder: Duplex): Readable {
  source.pipe(decoder);
  source.on('error', (err) => decoder.destroy(err));
  return decoder;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(x: number, width = 10): string {
  return x.toFixed(2).padStart(width);
}
