// Build step: compiles the pipeline, manifest and first-party plugin schemas into standalone Ajv
// validators next to the built validator module, so a run compiles only third-party schemas.
import { writeFileSync } from 'node:fs';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { builtinRegistry, manifestSchema, pipelineSchema, type JsonSchema } from '../src/index.js';
import { createAjv, META_SCHEMA, PRECOMPILED_FILE } from '../src/schema/validator.js';

const registry = await builtinRegistry();
const schemas: JsonSchema[] = [pipelineSchema, manifestSchema];
for (const step of registry.steps.values()) schemas.push(step.with, ...(step.outputs ? [step.outputs] : []));
for (const driver of registry.drivers.values()) schemas.push(driver.options ?? {});

// The runtime looks a schema up by its JSON: one entry per distinct schema.
const byJson = new Map<string, JsonSchema>();
for (const s of schemas) byJson.set(JSON.stringify(s), s);
const ajv = createAjv({ source: true });
const refs: Record<string, string> = {};
[...byJson.values()].forEach((schema, i) => {
  ajv.addSchema(schema, `s${i}`);
  refs[`s${i}`] = `s${i}`;
});
const names = Object.keys(refs);
// And the meta-schema's validator: a third-party schema is checked against it before it is compiled at run time.
const code = `${standaloneCode.default(ajv, { ...refs, meta: META_SCHEMA })}
exports.schemas = ${JSON.stringify([...byJson.keys()])};
exports.validators = [${names.map((n) => `exports.${n}`).join(', ')}];
`;
const out = process.argv[2] ?? new URL(`../dist/src/schema/${PRECOMPILED_FILE}`, import.meta.url).pathname;
writeFileSync(out, code);
console.log(`wrote ${byJson.size} precompiled validators to ${out}`);
