// A third-party plugin installed as an npm package, listed by name in a pipeline's `plugins:`.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadPipeline, runPipeline } from '../../src/index.js';
import { tmpDir } from '../helpers/tmp.js';

test("loads a plugin package from the pipeline folder's node_modules and runs its step", async (t) => {
  const dir = tmpDir(t);
  const pkg = path.join(dir, 'node_modules', 'dbflow-plugin-stamp');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    path.join(pkg, 'package.json'),
    JSON.stringify({ name: 'dbflow-plugin-stamp', version: '1.2.3', type: 'module', exports: './index.js' }),
  );
  writeFileSync(
    path.join(pkg, 'index.js'),
    `export default {
  name: 'stamp',
  contract: '2.0',
  version: '1.2.3',
  steps: [{
    uses: 'stamp',
    kind: 'task',
    description: 'Outputs a stamp.',
    with: { type: 'object', additionalProperties: false, required: ['label'], properties: { label: { type: 'string' } } },
    outputs: { type: 'object', properties: { stamp: { type: 'string' } } },
    run: async (ctx) => ({ outputs: { stamp: ctx.with.label + '@' + ctx.run.id } }),
  }],
};
`,
  );
  const file = path.join(dir, 'p.yaml');
  writeFileSync(
    file,
    'version: 1\nname: npm-plugin\nplugins: [dbflow-plugin-stamp]\nsteps:\n  - { id: s, uses: stamp, with: { label: nightly } }\n',
  );
  const loaded = await loadPipeline(file);
  assert.ok(loaded.registry.plugins.some((p) => p.plugin.name === 'stamp' && p.from === 'dbflow-plugin-stamp'));
  const result = await runPipeline(loaded, { stateDir: path.join(dir, 'state') });
  assert.equal(result.status, 'success');
  assert.equal(result.steps.get('s')?.outputs?.stamp, `nightly@${result.runId}`);
});
