// Writes schemas/*.json from their one source (the TypeScript schema modules).
import { writeFileSync } from 'node:fs';
import { builtinRegistry, manifestSchema, publishedPipelineSchema } from '../src/index.js';

const registry = await builtinRegistry();
writeFileSync('schemas/pipeline.schema.json', `${JSON.stringify(publishedPipelineSchema([...registry.steps.values()]), null, 2)}\n`);
writeFileSync('schemas/manifest.schema.json', `${JSON.stringify(manifestSchema, null, 2)}\n`);
console.log('wrote schemas/pipeline.schema.json and schemas/manifest.schema.json');
