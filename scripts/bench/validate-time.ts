// 2. `dbflow validate` wall time on a generated 200-step pipeline of real built-in steps, and with a plugin package.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, CLI, median, ROOT, round, run, runOk, scratchDir } from './util.js';
import { validatePlugins } from './validate-plugin.js';

const DATABASES = 40;
const RUNS = 5;

/** 40 SQLite databases × snapshot → dump → compress → encrypt → upload = 200 explicit steps. */
export function validateYaml(passphraseFile: string): string {
  const db = (i: number): string => `db${String(i).padStart(2, '0')}`;
  const lines = [
    'version: 1',
    'name: bench_validate',
    'secrets:',
    `  passphrase: { file: ${JSON.stringify(passphraseFile)} }`,
    'vars:',
    '  repo: "file://./bench-data/validate-out/{{ pipeline.name }}"',
    'databases:',
  ];
  for (let i = 0; i < DATABASES; i++) lines.push(`  ${db(i)}: { driver: sqlite, url: "sqlite:./bench-data/validate/${db(i)}.sqlite3" }`);
  lines.push('steps:');
  for (let i = 0; i < DATABASES; i++) {
    const d = db(i);
    lines.push(
      `  - { id: snapshot_${d}, uses: snapshot, with: { databases: [${d}] } }`,
      `  - { id: dump_${d}, uses: dump, with: { database: ${d}, snapshot: snapshot_${d} } }`,
      `  - { id: compress_${d}, uses: compress, input: dump_${d}, with: { algorithm: zstd, level: 3 } }`,
      `  - { id: encrypt_${d}, uses: encrypt, input: compress_${d}, with: { passphrase: "{{ secrets.passphrase }}" } }`,
      `  - { id: upload_${d}, uses: upload, input: encrypt_${d}, with: { to: "{{ vars.repo }}/{{ run.id }}/${d}.sqlite3.zst.pgp" } }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function medianWall(file: string, args: string[], check?: (stdout: string) => void): Promise<{ median: number; all: number[] }> {
  const all: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await runOk(file, args);
    check?.(r.stdout);
    all.push(r.wallMs);
  }
  return { median: median(all), all: all.map((x) => round(x, 1)) };
}

export async function validateTime(passphraseFile: string, log: (s: string) => void): Promise<{ figures: Figure[]; details: unknown }> {
  const dir = scratchDir('validate');
  try {
    const file = path.join(dir, 'bench-validate.yaml');
    writeFileSync(file, validateYaml(passphraseFile));
    // The generated pipeline must be valid, or the timing means nothing.
    const first = await run(process.execPath, [CLI, 'validate', file]);
    if (first.code !== 0) throw new BenchError(`the generated 200-step pipeline does not validate:\n${first.stderr.slice(-3000)}`);
    const expectOk = (stdout: string): void => {
      if (!/ok \(200 steps\)/.test(stdout)) throw new BenchError(`validate did not report 200 steps: ${stdout.trim()}`);
    };
    const big = await medianWall(process.execPath, [CLI, 'validate', file], expectOk);
    log(`  validate 200 steps: ${big.all.join(', ')} ms`);
    const quick = await medianWall(process.execPath, [CLI, 'validate', path.join(ROOT, 'pipelines', 'quickstart.yaml')]);
    log(`  validate quickstart (8 steps): ${quick.all.join(', ')} ms`);
    const plugins = await validatePlugins(dir, log);
    const bare = await medianWall(process.execPath, ['-e', '0']);
    log(`  node -e 0: ${bare.all.join(', ')} ms`);
    const S = '2 validate';
    const figures = [
      bounded(
        S,
        'validate 200-step pipeline (median of 5)',
        big.median,
        'ms',
        500,
        false,
        `${round(big.median / bare.median, 1)}× bare node startup`,
      ),
      figure(S, 'validate quickstart.yaml (median of 5)', quick.median, 'ms', { note: 'fixed cost: node + CLI + plugins + schemas' }),
      ...plugins.figures,
      figure(S, 'bare `node -e 0` (median of 5)', bare.median, 'ms', { note: 'context: the floor of any CLI run' }),
    ];
    return { figures, details: { validate200: big, validateQuickstart: quick, ...(plugins.details as object), nodeBare: bare } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
