// Stage ceilings: each stage of the chain alone, to see which one limits throughput.
// Stock tools alone (zstd, gpg), and dbflow's own stages run in-process through the engine with a
// file source and a discarding sink (both defined here, passed as plugins).
import { createReadStream, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { definePlugin, defineStep, loadPipelineText, runPipeline } from '../../src/index.js';
import { GPG_ENCRYPT } from './chain-runs.js';
import { figure, type Figure } from './report.js';
import { BenchError, MiB, ROOT, runOk, scratchDir } from './util.js';

const probe = definePlugin({
  name: 'bench-probe',
  contract: '2.0',
  steps: [
    defineStep<{ path: string }>({
      uses: 'bench-file',
      kind: 'source',
      description: 'Stream a file (benchmark).',
      with: { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string' } } },
      run: (ctx) => Promise.resolve({ output: createReadStream(ctx.with.path, { highWaterMark: MiB }) }),
    }),
    defineStep<Record<string, never>, { bytes: number }>({
      uses: 'bench-discard',
      kind: 'sink',
      description: 'Read the input to the end and drop it (benchmark).',
      with: { type: 'object', additionalProperties: false },
      async run(ctx) {
        for await (const _ of ctx.input) void _;
        return { outputs: { bytes: (await ctx.inputStats()).bytes } };
      },
    }),
  ],
});

/** Runs file → [stage] → discard in-process; returns MiB/s of the file. */
async function inProcess(file: string, stage: string | undefined, passFile: string): Promise<number> {
  const lines = ['version: 1', 'name: bench_stage', 'secrets:', `  passphrase: { file: ${JSON.stringify(passFile)} }`, 'steps:'];
  lines.push(`  - { id: read, uses: bench-file, with: { path: ${JSON.stringify(file)} } }`);
  if (stage) lines.push(`  - { id: stage, ${stage}, input: read }`);
  lines.push(`  - { id: sink, uses: bench-discard, input: ${stage ? 'stage' : 'read'} }`);
  const stateDir = scratchDir('stage');
  try {
    const loaded = await loadPipelineText('bench-stage.yaml', `${lines.join('\n')}\n`, ROOT, { plugins: [probe] });
    const t0 = performance.now();
    const r = await runPipeline(loaded, { stateDir });
    const ms = performance.now() - t0;
    if (r.status !== 'success') throw new BenchError(`stage probe ${stage ?? 'read'} ended ${r.status}: ${r.error ?? ''}`);
    return statSync(file).size / MiB / (ms / 1000);
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Stage throughputs in MiB/s of each stage's own input. `snapshotMiBs` comes from the timed runs. */
export async function stageCeilings(o: {
  db: string;
  work: string;
  passFile: string;
  gnupgHome: string;
  snapshotMiBs: number;
  log: (s: string) => void;
}): Promise<{ figures: Figure[]; details: Record<string, number> }> {
  const zst = path.join(o.work, 'stage.sqlite3.zst');
  const gpgOut = path.join(o.work, 'stage.gpg');
  const dbMiB = statSync(o.db).size / MiB;
  try {
    const z = await runOk('bash', ['-c', 'zstd -3 -T0 -q -f -o "$ZST" "$SRC"'], { env: { ...process.env, SRC: o.db, ZST: zst } });
    const zstMiB = statSync(zst).size / MiB;
    const g = await runOk('bash', ['-c', `${GPG_ENCRYPT} "$ZST"`], {
      env: { ...process.env, ZST: zst, OUT: gpgOut, PASS: o.passFile, GNUPGHOME: o.gnupgHome },
    });
    const d: Record<string, number> = {
      snapshotStep: o.snapshotMiBs,
      zstdCli: dbMiB / (z.wallMs / 1000),
      gpgCli: zstMiB / (g.wallMs / 1000),
      engineEdge: await inProcess(o.db, undefined, o.passFile),
      compressStep: await inProcess(o.db, 'uses: compress, with: { algorithm: zstd, level: 3, threads: 0 }', o.passFile),
      encryptStep: await inProcess(zst, 'uses: encrypt, with: { passphrase: "{{ secrets.passphrase }}" }', o.passFile),
    };
    // The chain's speed in source MiB/s is bounded by each stage's speed scaled to source bytes.
    const ratio = dbMiB / zstMiB;
    const S = '3 stages';
    const mibs = (v: number): string => `${v.toFixed(0)} MiB/s of its input`;
    const figures = [
      figure(S, 'dbflow snapshot step (copy + counts)', d.snapshotStep!, 'MiB/s', {
        note: 'source MiB / snapshot step time (timed runs); runs before the stream starts',
      }),
      figure(S, 'dbflow engine edge: file → discard', d.engineEdge!, 'MiB/s', { note: 'read + byte count + sha256 of one edge' }),
      figure(S, 'dbflow compress step (zstd -3 -T0)', d.compressStep!, 'MiB/s', { note: `zstd CLI alone ${mibs(d.zstdCli!)}` }),
      figure(S, 'dbflow encrypt step (openpgp.js)', d.encryptStep! * ratio, 'MiB/s', {
        note: `${mibs(d.encryptStep!)} (zstd output); gpg alone ${mibs(d.gpgCli!)}; scaled ×${ratio.toFixed(2)} to source MiB`,
      }),
    ];
    o.log(
      `  stages (MiB/s of own input): ${Object.entries(d)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(', ')}`,
    );
    return { figures, details: { ...d, zstdRatio: ratio } };
  } finally {
    rmSync(zst, { force: true });
    rmSync(gpgOut, { force: true });
  }
}
