// 1. Engine overhead: a 1,000-step no-op DAG, loaded, planned and run in-process.
import { rmSync } from 'node:fs';
import { definePlugin, defineStep, loadPipelineText, runPipeline } from '../../src/index.js';
import { bounded, figure, type Figure } from './report.js';
import { BenchError, median, ROOT, round, scratchDir } from './util.js';

const LAYERS = 10;
const WIDTH = 100;
const RUNS = 3;
const CONCURRENCY = 16;

const noop = definePlugin({
  name: 'bench-noop',
  contract: '2.0',
  steps: [
    defineStep({
      uses: 'noop',
      kind: 'task',
      description: 'Do nothing (engine overhead benchmark).',
      with: { type: 'object', additionalProperties: false },
      run: () => Promise.resolve({}),
    }),
  ],
});

const id = (layer: number, j: number): string => `l${layer}_s${String(j).padStart(3, '0')}`;

/**
 * 10 layers × 100 steps. Step j of layer i needs steps j and j+1 of layer i-1 (a mesh), and step 0
 * of every layer also needs the whole previous layer (fan-in of 100): 1,000 steps, ~2,900 edges.
 */
export function noopDagYaml(): { yaml: string; steps: number; edges: number } {
  const lines = ['version: 1', 'name: bench-noop-dag', 'steps:'];
  let edges = 0;
  for (let i = 0; i < LAYERS; i++) {
    for (let j = 0; j < WIDTH; j++) {
      const needs = new Set<string>();
      if (i > 0) {
        needs.add(id(i - 1, j));
        needs.add(id(i - 1, (j + 1) % WIDTH));
        if (j === 0) for (let k = 0; k < WIDTH; k++) needs.add(id(i - 1, k));
      }
      edges += needs.size;
      lines.push(`  - id: ${id(i, j)}`, '    uses: noop');
      if (needs.size) lines.push(`    needs: [${[...needs].join(', ')}]`);
    }
  }
  return { yaml: `${lines.join('\n')}\n`, steps: LAYERS * WIDTH, edges };
}

interface Trial {
  loadMs: number;
  runMs: number;
  engineMs: number;
}

export async function engineOverhead(log: (s: string) => void): Promise<{ figures: Figure[]; details: unknown }> {
  const { yaml, steps, edges } = noopDagYaml();
  // The first-party plugins are imported with dbflow's API (statically, at the start of the process): their cost
  // is part of every CLI start, which section 2 measures on the built CLI.
  const trials: Trial[] = [];
  for (let r = 0; r < RUNS; r++) {
    const stateDir = scratchDir('engine');
    try {
      const t0 = performance.now();
      const loaded = await loadPipelineText('bench-noop-dag.yaml', yaml, ROOT, { plugins: [noop] });
      const t1 = performance.now();
      const result = await runPipeline(loaded, { stateDir, concurrency: CONCURRENCY });
      const t2 = performance.now();
      if (result.status !== 'success') throw new BenchError(`the no-op DAG ended ${result.status}: ${result.error ?? ''}`);
      const ok = [...result.steps.values()].filter((s) => s.status === 'success').length;
      if (ok !== steps) throw new BenchError(`the no-op DAG ran ${ok} of ${steps} steps`);
      trials.push({ loadMs: t1 - t0, runMs: t2 - t1, engineMs: result.durationMs });
      log(`  run ${r + 1}/${RUNS}: load+plan ${(t1 - t0).toFixed(0)} ms, runPipeline ${(t2 - t1).toFixed(0)} ms`);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  const cold = trials[0]!;
  const warmRun = median(trials.slice(1).map((t) => t.runMs));
  const warmLoad = median(trials.slice(1).map((t) => t.loadMs));
  const S = '1 engine';
  const figures = [
    bounded(
      S,
      'runPipeline ms/step (first run)',
      cold.runMs / steps,
      'ms',
      1,
      false,
      `${round(cold.runMs, 0)} ms for ${steps} steps, ${edges} edges, concurrency ${CONCURRENCY}`,
    ),
    figure(S, 'runPipeline ms/step (warm, median)', warmRun / steps, 'ms', { note: `${round(warmRun, 0)} ms; median of runs 2..${RUNS}` }),
    figure(S, 'load+plan of the 1,000-step DAG (first)', cold.loadMs, 'ms', {
      note: `warm median ${round(warmLoad, 0)} ms; parse, schema check, plan (plugins already imported)`,
    }),
    figure(S, 'load+plan+run ms/step (first run)', (cold.loadMs + cold.runMs) / steps, 'ms'),
  ];
  return { figures, details: { steps, edges, layers: LAYERS, width: WIDTH, concurrency: CONCURRENCY, trials } };
}
