// The validators the build precompiles give exactly the runtime compiler's verdicts and errors.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import { builtinRegistry, pipelineSchema } from '../../src/index.js';
import type { PrecompiledValidators } from '../../src/schema/validator.js';
import { createAjv } from '../../src/schema/validator.js';
import { repoRoot } from '../helpers/cli.js';

test('build-validators output agrees with Ajv on every fixture pipeline', async (t) => {
  // Inside the project, so that the generated code's require('ajv/…') resolves as it does in dist.
  const cache = path.join(repoRoot, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(path.join(cache, 'dbflow-validators-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'validators.gen.cjs');
  await execa(process.execPath, ['--import', 'tsx', 'scripts/build-validators.ts', out], { cwd: repoRoot });
  const gen = createRequire(import.meta.url)(out) as PrecompiledValidators;
  const byJson = new Map(gen.schemas.map((json, i) => [json, gen.validators[i]!]));
  const registry = await builtinRegistry();
  assert.ok(byJson.has(JSON.stringify(pipelineSchema)));
  for (const step of registry.steps.values()) assert.ok(byJson.has(JSON.stringify(step.with)), `with of ${step.uses}`);

  const ajv = createAjv();
  const runtime = ajv.compile(pipelineSchema);
  const precompiled = byJson.get(JSON.stringify(pipelineSchema))!;
  const dirs = ['test/fixtures/invalid', 'pipelines'].map((d) => path.join(repoRoot, d));
  let compared = 0;
  for (const dir of dirs) {
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
      let data: unknown;
      try {
        data = parse(readFileSync(path.join(dir, name), 'utf8'));
      } catch {
        continue; // YAML syntax fixtures never reach the schema
      }
      assert.equal(precompiled(data), runtime(data), name);
      assert.deepEqual(precompiled.errors ?? null, runtime.errors ?? null, name);
      compared++;
    }
  }
  assert.ok(compared >= 50, `compared ${compared} pipelines`);

  // The meta-schema's validator (a third-party plugin's schemas are checked with it before they are compiled) agrees too.
  assert.ok(gen.meta, 'the meta-schema validator is precompiled');
  const schemas: unknown[] = [
    { type: 'object', additionalProperties: false, properties: { label: { type: 'string' } } },
    { type: 'strng' },
    { type: 'object', properties: { a: { type: 'integer', minimum: 'x' } }, required: 'a' },
    { anyOf: [] },
    ...[...registry.steps.values()].map((s) => s.with),
  ];
  for (const schema of schemas) {
    assert.equal(gen.meta(schema), ajv.validateSchema(schema as object), JSON.stringify(schema));
    assert.equal(ajv.errorsText(gen.meta.errors), ajv.errorsText(ajv.errors), JSON.stringify(schema));
  }
});
