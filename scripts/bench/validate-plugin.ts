// `dbflow validate` of a pipeline that loads a third-party plugin package: JavaScript (plain import()) and
// TypeScript (through tsx). Both import values from `dbflow`, which resolves to the running dbflow.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, CLI, median, round, run, runOk } from './util.js';

const RUNS = 5;

const source = (typed: boolean): string => `import { DbflowError, definePlugin, defineStep } from 'dbflow';
const stamp = defineStep({
  uses: 'bench-stamp-${typed ? 'ts' : 'js'}',
  kind: 'task',
  description: 'Outputs a stamp.',
  with: { type: 'object', additionalProperties: false, required: ['label'], properties: { label: { type: 'string' } } },
  outputs: { type: 'object', properties: { stamp: { type: 'string' } } },
  async run(ctx${typed ? ': { with: { label: string } }' : ''}) {
    if (!ctx.with.label) throw new DbflowError('no label');
    return { outputs: { stamp: ctx.with.label } };
  },
});
export default definePlugin({ name: 'bench-${typed ? 'ts' : 'js'}', contract: '2.0', version: '1.0.0', steps: [stamp] });
`;

/** Writes the package `dbflow-plugin-bench-<js|ts>` under `dir/node_modules` and a pipeline that uses it; returns the pipeline file. */
function plugin(dir: string, typed: boolean): string {
  const kind = typed ? 'ts' : 'js';
  const pkg = path.join(dir, 'node_modules', `dbflow-plugin-bench-${kind}`);
  mkdirSync(pkg, { recursive: true });
  const entry = `./index.${kind}`;
  writeFileSync(
    path.join(pkg, 'package.json'),
    JSON.stringify({
      name: `dbflow-plugin-bench-${kind}`,
      version: '1.0.0',
      type: 'module',
      exports: entry,
      peerDependencies: { dbflow: '*' },
    }),
  );
  writeFileSync(path.join(pkg, `index.${kind}`), source(typed));
  const file = path.join(dir, `plugin-${kind}.yaml`);
  writeFileSync(
    file,
    `version: 1\nname: bench_plugin_${kind}\nplugins: [dbflow-plugin-bench-${kind}]\nsteps:\n  - { id: stamp, uses: bench-stamp-${kind}, with: { label: nightly } }\n`,
  );
  return file;
}

/** Median wall time of `dbflow validate` with a JavaScript and with a TypeScript plugin package. */
export async function validatePlugins(dir: string, log: (s: string) => void): Promise<{ figures: Figure[]; details: unknown }> {
  const S = '2 validate';
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  for (const typed of [false, true]) {
    const file = plugin(dir, typed);
    const first = await run(process.execPath, [CLI, 'validate', file], { cwd: dir });
    if (first.code !== 0)
      throw new BenchError(`the ${typed ? 'TypeScript' : 'JavaScript'} plugin's pipeline does not validate:\n${first.stderr.slice(-3000)}`);
    const all: number[] = [];
    for (let i = 0; i < RUNS; i++) all.push((await runOk(process.execPath, [CLI, 'validate', file], { cwd: dir })).wallMs);
    const value = median(all);
    log(`  validate with a ${typed ? 'TypeScript' : 'JavaScript'} plugin package: ${all.map((x) => round(x, 1)).join(', ')} ms`);
    details[typed ? 'validateTsPlugin' : 'validateJsPlugin'] = { median: value, all: all.map((x) => round(x, 1)) };
    figures.push(
      typed
        ? figure(S, 'validate with a TypeScript plugin package (median of 5)', value, 'ms', { note: 'tsx (esbuild) starts for it' })
        : bounded(
            S,
            'validate with a JavaScript plugin package (median of 5)',
            value,
            'ms',
            500,
            false,
            'plain import(); `dbflow` resolves to the running dbflow',
          ),
    );
  }
  return { figures, details };
}
